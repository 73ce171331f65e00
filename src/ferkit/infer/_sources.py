"""Video sources (file, stream URL, camera index) as iterators of RGB frames, and an MP4 writer.

OpenCV's own warnings (e.g. ``can't open camera by index``) are silenced while a source opens, so a
bad source gives exactly one line: the SourceError ferkit raises.
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import numpy as np

from ferkit.errors import FerkitError

__all__ = ["SourceError", "VideoSource", "VideoWriter", "open_source", "parse_source"]


class SourceError(FerkitError, ValueError):
    """A video file, stream or camera that cannot be opened, read or written."""


@contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's logging (its messages go straight to stderr) for the duration.

    FFmpeg's own messages (``moov atom not found``) bypass OpenCV's logging; OpenCV reads
    ``OPENCV_FFMPEG_LOGLEVEL`` when it first uses FFmpeg, so it is set to quiet (-8) here unless
    the user set it (``OPENCV_FFMPEG_LOGLEVEL=24`` shows FFmpeg's warnings again)."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2

    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:  # pragma: no cover - very old OpenCV
        yield
        return
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(level)


def parse_source(source: str | int | os.PathLike[str]) -> str | int:
    """A camera index (int or a string of digits), a URL (``scheme://...``) or a file path string."""
    if isinstance(source, (int, np.integer)) and not isinstance(source, bool):
        return int(source)
    text = os.fspath(source)
    if re.fullmatch(r"\d+", text.strip()):
        return int(text)
    return text


class VideoSource:
    """Frames of a video file, stream URL or camera, as ``(index, time_s, rgb)`` tuples.

    Attributes: ``name`` (for messages), ``fps`` (the source's, 30 when unknown), ``frame_count``
    (the header's, None for cameras and streams), ``width``, ``height``, ``live`` (camera or stream:
    time is the wall clock since the first frame, not index / fps), ``frames_read`` and
    ``truncated`` (after iterating: how many frames came, and whether that is short of the header).
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, source: str | int | os.PathLike[str]):
        import cv2

        src = parse_source(source)
        self.live = isinstance(src, int) or "://" in str(src)
        if isinstance(src, int):
            self.name = f"camera {src}"
        else:
            self.name = src
            if not self.live:
                p = Path(src)
                if not p.exists():
                    raise SourceError(f"{src}: no such file")
                if p.is_dir():
                    raise SourceError(f"{src}: is a folder, not a video")
        with quiet_opencv():
            cap = cv2.VideoCapture(src)
            opened = cap.isOpened()
            ok, first = cap.read() if opened else (False, None)
        if not opened or not ok or first is None:
            cap.release()
            if isinstance(src, int):
                raise SourceError(f"camera {src}: cannot open it (no such camera, or it is in use)")
            if self.live:
                raise SourceError(f"{src}: cannot open the stream (unreachable, or not a video stream)")
            raise SourceError(f"{src}: not a readable video (no frame could be decoded)")
        self._cap = cap
        self._first: np.ndarray | None = first
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0)
        self.fps = fps if 0 < fps < 1000 else 30.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 and not self.live else None
        self.height, self.width = first.shape[:2]
        #: frames delivered so far by iteration (grabbed ones included)
        self.frames_read = 0

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        return self.frames()

    def frames(self, stride: int = 1) -> Iterator[tuple[int, float, np.ndarray]]:
        """Every ``stride``-th frame (0, stride, 2*stride...) as ``(index, time_s, rgb)``; the frames
        in between are only grabbed, not decoded to pixels (cheaper than reading them).
        ``frames_read`` counts every frame the source delivered, skipped ones included."""
        import cv2

        if self._cap is None:
            raise SourceError(f"{self.name}: source is closed")
        if stride < 1:
            raise SourceError(f"{self.name}: stride must be >= 1, not {stride}")
        index, t0 = 0, time.monotonic()
        frame, self._first = self._first, None
        if frame is None:
            raise SourceError(f"{self.name}: a VideoSource can be iterated only once")
        self.frames_read = 1
        while True:
            if index % stride == 0:
                t = time.monotonic() - t0 if self.live else index / self.fps
                yield index, t, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
            if index % stride == 0:
                ok, frame = self._cap.read()
            else:
                ok = self._cap.grab()
            if not ok:
                return
            self.frames_read += 1

    @property
    def truncated(self) -> str | None:
        """After iterating a file to its end: why it looks cut short (fewer frames decoded than its
        header announces, beyond a 1 % tolerance for containers that round), else None."""
        if self.frame_count is None or self.frames_read == 0:
            return None
        missing = self.frame_count - self.frames_read
        if missing > max(1, self.frame_count // 100):
            return f"truncated video: decoded {self.frames_read} of the {self.frame_count} frames its header announces"
        return None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover
        try:
            self.close()
        except Exception:  # noqa: BLE001, S110 - interpreter shutdown: nothing left to report to
            pass


def open_source(source: str | int | os.PathLike[str]) -> VideoSource:
    """Open a video file, a stream URL or a camera index; SourceError (one line) if it cannot be read."""
    return VideoSource(source)


class VideoWriter:
    """Write RGB frames to an MP4 (``mp4v``) file atomically: frames go to a temporary file in the
    same folder, which replaces ``path`` on :meth:`close` (``commit=False`` discards it).

    Used as a context manager, the file is kept only when the block ends without an exception."""

    def __init__(self, path: str | os.PathLike[str], fps: float, size: tuple[int, int], fourcc: str = "mp4v"):
        import cv2

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.tmp{self.path.suffix or '.mp4'}")
        self.size = (int(size[0]), int(size[1]))
        with quiet_opencv():
            self._w = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*fourcc), float(fps), self.size)
        if not self._w.isOpened():
            self._tmp.unlink(missing_ok=True)
            raise SourceError(f"{self.path}: cannot write video (codec {fourcc!r} unavailable in this OpenCV build)")
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        import cv2

        if (rgb.shape[1], rgb.shape[0]) != self.size:
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        self._w.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self, commit: bool = True) -> None:
        if self._w is None:
            return
        self._w.release()
        self._w = None
        if commit:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(commit=exc_type is None)
