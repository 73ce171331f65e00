"""`FaceSet`: the one in-memory description of a labelled face dataset that every loader returns.

A FaceSet holds per-sample arrays aligned on the first axis: labels, split names, ids (a file
path relative to the dataset root, or ``"fer2013.csv:row 17"``), optional soft targets (FER+
vote distributions), optional subject ids (groups), and either decoded images (small sets such
as FER2013, kept as one uint8 array) or file paths (read lazily, one image at a time).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ferkit.errors import DataError
from ferkit.images import ImageReadError, decode


@dataclass
class FaceSet:
    classes: list[str]
    labels: np.ndarray                 # (N,) int64 index into `classes`
    splits: np.ndarray                 # (N,) str split name per sample ("Training", "PublicTest", "all", ...)
    ids: np.ndarray                    # (N,) str file path relative to `root`, or "<file>:row N"
    images: np.ndarray | None = None   # (N, H, W) or (N, H, W, 3) uint8, when decoded in memory
    paths: np.ndarray | None = None    # (N,) str absolute paths, when read lazily
    soft: np.ndarray | None = None     # (N, C) float32 target distribution over `classes`
    groups: np.ndarray | None = None   # (N,) str subject id, when known
    root: str = ""
    name: str = ""                     # loader format: fer2013-csv, fer2013-folder, ferplus, folder
    notes: list[str] = field(default_factory=list)  # things the loader skipped or changed, for reports

    def __post_init__(self) -> None:
        n = len(self.labels)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.splits = np.asarray(self.splits, dtype=str)
        self.ids = np.asarray(self.ids, dtype=str)
        for key in ("splits", "ids", "images", "paths", "soft", "groups"):
            arr = getattr(self, key)
            if arr is not None and len(arr) != n:
                raise ValueError(f"FaceSet.{key} has {len(arr)} rows, labels has {n}")
        if self.images is None and self.paths is None:
            raise ValueError("FaceSet needs images or paths")
        if self.soft is not None and self.soft.shape[1] != len(self.classes):
            raise ValueError(f"FaceSet.soft has {self.soft.shape[1]} columns for {len(self.classes)} classes")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split_names(self) -> list[str]:
        """Split names in order of first appearance."""
        _, first = np.unique(self.splits, return_index=True)
        return [str(self.splits[i]) for i in sorted(first)]

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(k) for c, k in zip(self.classes, counts)}

    def select(self, index: np.ndarray) -> FaceSet:
        """A new FaceSet with the rows of ``index`` (a boolean mask or integer indices)."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)

        def take(a):
            return None if a is None else a[index]

        return replace(
            self, labels=self.labels[index], splits=self.splits[index], ids=self.ids[index],
            images=take(self.images), paths=take(self.paths), soft=take(self.soft), groups=take(self.groups),
            notes=list(self.notes),
        )

    def split(self, name: str) -> FaceSet:
        """The samples of one split; ``"all"`` returns everything; ``"PublicTest+PrivateTest"`` the
        union of splits (in dataset order). Unknown split -> DataError."""
        if name == "all":
            return self
        names = self.split_names()
        wanted = name.split("+")
        for part in wanted:
            if part not in names:
                raise DataError(f"{self.root or self.name}: no split {part!r}; this dataset has: "
                                f"{', '.join(names) + ', all'} (or several joined by +)")
        return self.select(np.isin(self.splits, wanted))

    def with_classes(self, classes: list[str]) -> FaceSet:
        """Keep only samples whose label is in ``classes`` and re-index labels to that order.

        Soft targets are restricted to those columns and renormalised; rows left without votes are dropped.
        """
        unknown = [c for c in classes if c not in self.classes]
        if unknown:
            raise DataError(f"{self.root or self.name}: class {', '.join(unknown)} not in this dataset "
                            f"({', '.join(self.classes)})")
        old = np.array([self.classes.index(c) for c in classes])
        remap = np.full(len(self.classes), -1, dtype=np.int64)
        remap[old] = np.arange(len(classes))
        keep = remap[self.labels] >= 0
        soft = None
        if self.soft is not None:
            soft = self.soft[:, old]
            total = soft.sum(axis=1)
            keep &= total > 0
            soft = soft / np.where(total > 0, total, 1)[:, None]
        out = self.select(keep)
        out.classes = list(classes)
        out.labels = remap[out.labels]
        if soft is not None:
            out.soft = soft[keep].astype(np.float32)
        if len(out) == 0:
            raise DataError(f"{self.root or self.name}: no images left after keeping classes {', '.join(classes)}")
        return out

    def load_image(self, i: int) -> np.ndarray:
        """Image ``i`` as uint8: (H, W) grayscale or (H, W, 3) RGB, decoded as every image of ferkit is
        (``ferkit.images.decode``: EXIF orientation, 16-bit scaled). A file that cannot be decoded
        raises DataError naming it (callers that must go on, such as training, catch it)."""
        if self.images is not None:
            return self.images[i]
        path = str(self.paths[i])
        try:
            return decode(path, keep_grey=True)[0]
        except ImageReadError as e:
            if e.reason == "missing":
                raise DataError(f"{path}: file not found") from None
            raise DataError(f"{path}: cannot decode image ({e.detail})") from None

    def decoded(self) -> FaceSet:
        """This FaceSet with every image decoded into one uint8 array (``images``), when all images
        have one shape (FER2013, FER+); otherwise itself. Images that cannot be decoded raise DataError."""
        if self.images is not None or len(self) == 0:
            return self
        first = self.load_image(0)
        images = np.empty((len(self), *first.shape), dtype=np.uint8)
        for i in range(len(self)):
            img = first if i == 0 else self.load_image(i)
            if img.shape != first.shape:
                return self
            images[i] = img
        return replace(self, images=images, paths=None, notes=list(self.notes))

    def describe(self) -> str:
        """A short multi-line summary: splits x classes counts."""
        lines = [f"{self.name} at {self.root}: {len(self)} images, {len(self.classes)} classes"]
        for s in self.split_names():
            sub = self.split(s)
            counts = ", ".join(f"{c} {k}" for c, k in sub.class_counts().items())
            lines.append(f"  {s}: {len(sub)} ({counts})")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def resolve_root(path: str | Path) -> Path:
    """Check a dataset path exists; the error names it."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: no such file or directory")
    return p
