"""ferkit's front door for Python users: ``ferkit.predict`` and its :class:`Results`.

What ``ferkit predict`` does, as one call: inputs (files, folders, globs) expanded, missing files
reported before any model loads, every face found and classified, unreadable inputs collected
instead of raised. The CLI is this function plus argument parsing and printing.

>>> import ferkit
>>> results = ferkit.predict(["photos/", "more/*.jpg"], model="default")
>>> results.to_json()       # the JSON of `ferkit predict --format json`
>>> results.to_csv()        # one row per face
>>> results.to_pandas()     # a DataFrame, one row per face (needs pandas: pip install 'ferkit[batch]')
>>> results.failures        # one line per input that could not be read
"""
from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ferkit.errors import FerkitError
from ferkit.types import ImageResult

__all__ = ["Results", "expand_inputs", "predict"]


class Results(list):
    """The :class:`~ferkit.types.ImageResult` of each image read, in input order, with the model's
    ``classes`` and the ``failures`` (one line per input that could not be read)."""

    def __init__(self, results: Iterable[ImageResult] = (), classes: Sequence[str] = (),
                 failures: Sequence[str] = ()):
        super().__init__(results)
        self.classes = list(classes)
        self.failures = list(failures)

    @property
    def n_faces(self) -> int:
        return sum(len(r.faces) for r in self)

    def to_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self]

    def to_json(self) -> str:
        """A JSON list, one object per image: ``{"path", "faces": [{"box", "emotion", ...}], "width", "height"}``."""
        return json.dumps(self.to_dicts(), indent=2) + "\n"

    def rows(self) -> list[dict[str, Any]]:
        """One dict per face: path, face index, box, emotion, confidence and one column per class."""
        out = []
        for r in self:
            for i, f in enumerate(r.faces):
                x, y, w, h = (int(v) for v in f.box)
                out.append({"path": r.path, "face": i, "x": x, "y": y, "w": w, "h": h, "emotion": f.emotion,
                            "confidence": float(f.confidence),
                            **{c: float(f.probabilities.get(c, 0.0)) for c in self.classes}})
        return out

    def to_csv(self) -> str:
        """CSV, one row per face (probabilities with 6 decimals)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["path", "face", "x", "y", "w", "h", "emotion", "confidence", *self.classes])
        for row in self.rows():
            w.writerow([*(row[k] for k in ("path", "face", "x", "y", "w", "h", "emotion")), f"{row['confidence']:.6f}",
                        *(f"{row[c]:.6f}" for c in self.classes)])
        return buf.getvalue()

    def to_pandas(self) -> Any:
        """A pandas DataFrame, one row per face (the columns of :meth:`to_csv`)."""
        try:
            import pandas as pd
        except ImportError:
            raise FerkitError("Results.to_pandas needs pandas: pip install 'ferkit[batch]'") from None
        columns = ["path", "face", "x", "y", "w", "h", "emotion", "confidence", *self.classes]
        return pd.DataFrame(self.rows(), columns=columns)


def expand_inputs(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *,
                  recursive: bool = False) -> tuple[list[str], list[str]]:
    """``(image paths, failures)``: folders and globs expanded (sub-folders too with ``recursive``),
    missing files and empty folders or globs as one-line failures. No model is loaded."""
    from ferkit.infer import expand_paths

    args = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    paths, failures = expand_paths(args, recursive=recursive)
    missing = {p for p in paths if not Path(p).exists()}
    failures += [f"{p}: no such file" for p in paths if p in missing]
    return [p for p in paths if p not in missing], failures


def predict(
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    model: Any = "default",
    *,
    recursive: bool = False,
    recognizer: Any = None,
    on_result: Callable[[ImageResult], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    **options: Any,
) -> Results:
    """Every face in ``inputs`` (image files, folders, globs) with its emotion.

    Args:
        model: shipped model name or saved model path (ignored when ``recognizer`` is given).
        recursive: look for images in sub-folders of the folders too.
        recognizer: an already loaded ``ferkit.infer.Recognizer`` to use.
        on_result, on_error: called with each result, and with each failure's one-line message, as
            they come (for progress bars and logs).
        options: ``Recognizer`` options (``detector``, ``backend``, ``max_pixels``, ``prior`` ...).

    Inputs are checked before the model loads: a missing file is a failure at once. Raises
    FerkitError (one line) when no input could be read; otherwise the failures are in
    ``Results.failures``.
    """
    paths, failures = expand_inputs(inputs, recursive=recursive)
    for msg in failures:
        if on_error:
            on_error(msg)
    if not paths:
        raise FerkitError(failures[0] if len(failures) == 1 else f"predict: nothing to read ({'; '.join(failures)})")
    if recognizer is None:
        from ferkit.infer import Recognizer

        recognizer = Recognizer(model, **options)

    def failed(_item: Any, e: FerkitError) -> None:
        failures.append(str(e))
        if on_error:
            on_error(str(e))

    results = Results(classes=recognizer.classes)
    for r in recognizer.iter_predict(paths, on_error=failed):
        results.append(r)
        if on_result:
            on_result(r)
    results.failures = failures
    if not results:
        raise FerkitError(failures[0] if len(paths) == 1 and len(failures) == 1
                          else f"predict: none of the {len(paths)} inputs could be read")
    return results
