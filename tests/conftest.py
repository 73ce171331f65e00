"""Shared test fixtures, and the rule that a CI run never passes by skipping the real-data tests."""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from _paths import FER, FERPLUS, SAMPLES


def pytest_sessionstart(session: pytest.Session) -> None:
    """With ``CI`` set, missing real data fails the run at once: most modules would otherwise skip
    (on a developer's machine without ``../shared/data`` they still do)."""
    if os.environ.get("CI"):
        missing = [str(p) for p in (FER, FERPLUS, SAMPLES) if not p.is_dir()]
        if missing:
            pytest.exit(f"CI is set but the real data is missing: {', '.join(missing)} (set FERKIT_DATA to the "
                        "shared data folder)", returncode=1)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Small-batch inference runs faster and steadier on one thread of a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def rec(one_thread):
    """The default Recognizer (shipped model, default detector) on the torch backend, whose module the
    tests inspect (``Recognizer()`` itself runs the shipped ONNX file: tests/test_light.py,
    tests/test_export.py), shared by a test module."""
    from ferkit.infer import Recognizer

    return Recognizer(backend="torch")
