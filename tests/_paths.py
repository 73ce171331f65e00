"""Where the tests find the shared real data: ``$FERKIT_DATA`` or ``<repo>/../shared/data``."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FERKIT_DATA") or REPO.parent / "shared" / "data")
FER = DATA / "fer2013"
FERPLUS = DATA / "ferplus"
SAMPLES = DATA / "samples"


def require(path: Path) -> None:
    """Skip the calling test module when the real data at ``path`` is missing."""
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set FERKIT_DATA to the shared data folder)",
                    allow_module_level=True)
