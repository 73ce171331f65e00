"""Shared test fixtures."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Small-batch inference runs faster and steadier on one thread of a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def rec(one_thread):
    """The default Recognizer (shipped model, default detector), shared by a test module."""
    from ferkit.infer import Recognizer

    return Recognizer()
