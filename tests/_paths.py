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


def cut_clip(path: Path, frames: int = 60) -> None:
    """Write an MJPG AVI of the sample clip's first ``frames`` frames, cut to half its bytes:
    readable, but short of the frame count its header announces."""
    import cv2

    from ferkit.infer._sources import quiet_opencv

    with quiet_opencv():  # FFmpeg's log level is fixed at its first use in a process: keep it quiet
        cap = cv2.VideoCapture(str(SAMPLES / "short_hamilton_clip.mp4"))
        full = path.with_name(path.stem + "_full.avi")
        w = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 29.97, (640, 360))
        for _ in range(frames):
            ok, frame = cap.read()
            assert ok
            w.write(frame)
        w.release()
        cap.release()
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    full.unlink()
