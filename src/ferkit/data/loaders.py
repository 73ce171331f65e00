"""Dataset loaders: every supported layout becomes one :class:`~ferkit.data.faceset.FaceSet`.

Formats (``FORMATS``):

``fer2013-csv``
    The original ICML file ``emotion,pixels,Usage`` (columns in any order): one row per image, ``emotion`` a
    code 0..6 in ``FER2013_CLASSES`` order, ``pixels`` 2304 space-separated integers 0..255 (a 48x48 grayscale
    image, row-major), ``Usage`` Training / PublicTest / PrivateTest (the split name). Decoded into
    memory and cached as ``.npz`` (see :func:`load_fer2013_csv`).
``fer2013-folder``
    Kaggle's folders ``train/<class>/Training_*.jpg``, ``test/<class>/PublicTest_*.jpg`` and
    ``test/<class>/PrivateTest_*.jpg``; the split is the file-name prefix. Read lazily.
``ferplus``
    Microsoft's FER+ votes, either ``FER2013Train/``, ``FER2013Valid/``, ``FER2013Test/`` (PNGs and a
    header-less ``label.csv``) or ``fer2013.csv`` next to ``fer2013new.csv``.
``folder``
    Any class-per-folder set: ``root/<class>/*`` or ``root/<split>/<class>/*``.
"""
from __future__ import annotations

import csv
import hashlib
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ferkit._fileio import atomic_path
from ferkit.data.faceset import FaceSet, resolve_root
from ferkit.data.labels import (
    ALL_CLASSES,
    FER2013_CLASSES,
    FERPLUS_CLASSES,
    normalize_class_name,
    parse_class_list,
)
from ferkit.data.splits import subject_ids
from ferkit.errors import DataError, shorten

FORMATS: tuple[str, ...] = ("fer2013-csv", "fer2013-folder", "ferplus", "folder")
LABEL_MODES: tuple[str, ...] = ("majority", "plurality", "probability")
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})
#: split-folder names recognised by the ``folder`` format, with their sort rank (train, val, test)
SPLIT_FOLDERS = {"train": 0, "training": 0, "val": 1, "valid": 1, "validation": 1, "test": 2, "testing": 2}
FER2013_SPLITS: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
#: FER2013 ``Usage`` -> FER+ folder (also the FER+ split name)
FERPLUS_SPLITS = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
#: label.csv / fer2013new.csv vote columns: the 8 emotions of FERPLUS_CLASSES, then unknown and NF
FERPLUS_VOTE_COLUMNS = 10

_CSV_HEADER = ("emotion", "pixels", "usage")
_USAGE_CODE = {name.encode(): i for i, name in enumerate(FER2013_SPLITS)}
_PIXELS = 48 * 48
_CACHE_VERSION = "1"
_CSV_BLOCK_BYTES = 4 << 20          # ~500 rows per block: big enough for numpy, small enough for CPU caches


# ------------------------------------------------------------------------------------------ dispatch
def load_dataset(
    path: str | os.PathLike, format: str = "auto", *, classes: str | Sequence[str] | None = None,
    label_mode: str = "majority", ferplus_classes: int = 8, group_regex: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> FaceSet:
    """Load a dataset in any of ``FORMATS`` (``"auto"`` detects it, see :func:`detect_format`).

    ``classes`` ("angry,happy" or a list, aliases allowed) keeps only those classes, in that order.
    ``label_mode`` and ``ferplus_classes`` apply to FER+, ``group_regex`` to the folder format,
    ``cache_dir`` to FER2013 CSV files.
    """
    root = resolve_root(path)
    fmt = detect_format(root) if format == "auto" else format
    if fmt not in FORMATS:
        raise DataError(f"{root}: unknown dataset format {format!r} (known: auto, {', '.join(FORMATS)})")
    if group_regex is not None and fmt != "folder":
        raise DataError(f"{root}: group_regex applies to the folder format only, not {fmt}")
    wanted = parse_class_list(classes)
    if fmt == "fer2013-csv":
        faces = load_fer2013_csv(root, cache_dir=cache_dir)
    elif fmt == "fer2013-folder":
        faces = load_fer2013_folder(root)
    elif fmt == "ferplus":
        faces = load_ferplus(root, label_mode=label_mode, ferplus_classes=ferplus_classes, cache_dir=cache_dir)
    else:
        faces = load_image_folder(root, group_regex=group_regex)
    return faces.with_classes(wanted) if wanted else faces


def detect_format(path: str | os.PathLike) -> str:
    """The format of ``path``: a ``.csv`` file is fer2013-csv; a folder holding ``FER2013Train/`` or
    ``fer2013new.csv`` is ferplus; one whose ``train/`` and ``test/`` class folders hold
    ``Training_*`` / ``PublicTest_*`` / ``PrivateTest_*`` images is fer2013-folder; any other folder
    is a class-per-folder set."""
    p = resolve_root(path)
    if p.is_file():
        if p.suffix.lower() == ".csv":
            return "fer2013-csv"
        raise DataError(f"{p}: cannot detect the dataset format of this file (expected a .csv file or a folder)")
    if (p / "FER2013Train").is_dir() or (p / "fer2013new.csv").is_file():
        return "ferplus"
    prefixes = {"train": ("Training_",), "test": ("PublicTest_", "PrivateTest_")}
    if all(_first_image_name(p / top).startswith(pre) for top, pre in prefixes.items()):
        return "fer2013-folder"
    return "folder"


# ------------------------------------------------------------------------------------------ shared helpers
def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _subdirs(folder: Path) -> list[Path]:
    """Visible sub-folders, sorted by name."""
    with os.scandir(folder) as it:
        return sorted((Path(e.path) for e in it if e.is_dir() and not e.name.startswith(".")), key=lambda p: p.name)


def _image_names(folder: Path) -> list[str]:
    """File names of the images directly in ``folder`` (by extension), sorted."""
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if _is_image(e.name) and e.is_file())


def _first_image_name(folder: Path) -> str:
    """Name of some image in a class folder of ``folder``, or "" (cheap layout sniffing)."""
    if not folder.is_dir():
        return ""
    for sub in _subdirs(folder):
        with os.scandir(sub) as it:
            for e in it:
                if _is_image(e.name):
                    return e.name
    return ""


def _folder_class(folder: Path, allowed: Sequence[str]) -> str:
    """Canonical class of a class folder; DataError naming the folder if unknown or not in ``allowed``."""
    cls = normalize_class_name(folder.name, source=str(folder))
    if cls not in allowed:
        raise DataError(f"{folder}: class {cls!r} is not one of this format's classes ({', '.join(allowed)})")
    return cls


def _index_of(values: Sequence[str], order: Sequence[str]) -> np.ndarray:
    pos = {c: i for i, c in enumerate(order)}
    return np.fromiter((pos[v] for v in values), dtype=np.int64, count=len(values))


def _require_rows(n: int, where: Path | str, what: str = "images") -> None:
    if n == 0:
        raise DataError(f"{where}: no {what} found")


# ------------------------------------------------------------------------------------------ FER2013 CSV
class _BadRow(Exception):
    """A malformed CSV row: ``row`` is 0-based within the rows handed to the parser."""

    def __init__(self, row: int, message: str):
        super().__init__(message)
        self.row = row


def load_fer2013_csv(path: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None) -> FaceSet:
    """Load FER2013's ICML CSV (``emotion,pixels,Usage``) into memory.

    Images are uint8 (N, 48, 48); labels index ``FER2013_CLASSES`` (the CSV emotion codes);
    splits are the Usage values; ids are ``"<file name>:row <n>"`` with n the 1-based data row.
    The decoded arrays are cached in ``cache_dir`` (default ``$FERKIT_CACHE_DIR`` or
    ``~/.cache/ferkit``) under a key of the absolute path, size and mtime, so an unchanged file
    loads from the cache and a changed one is parsed again. A malformed row raises DataError
    naming the file and the row.
    """
    path = resolve_root(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder; the fer2013-csv format expects the CSV file")
    notes: list[str] = []
    cache = _cache_file(path, cache_dir)
    arrays = _read_cache(cache)
    if arrays is None:
        arrays = _parse_fer2013_csv(path)
        err = _write_cache(cache, arrays)
        if err:
            notes.append(f"decoded CSV not cached: {err}")
    images, labels, usage = arrays
    _require_rows(len(labels), path, "data rows")
    ids = [f"{path.name}:row {i}" for i in range(1, len(labels) + 1)]
    return FaceSet(
        classes=list(FER2013_CLASSES), labels=labels, splits=np.array(FER2013_SPLITS)[usage], ids=ids,
        images=images, root=str(path), name="fer2013-csv", notes=notes,
    )


def _parse_fer2013_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> images (N,48,48) uint8, labels (N,) int64, usage (N,) int8 index into FER2013_SPLITS.

    Streams the file in blocks of a few MB (no whole-file copy); blank lines are skipped.
    """
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    done = 0
    try:
        with open(path, "rb") as f:
            header = f.readline()
            fields = tuple(_unquote(x).decode("utf-8", "replace").lower().lstrip("\ufeff") for x in header.split(b","))
            if sorted(fields) != sorted(_CSV_HEADER):
                found = header[:60].decode("utf-8", "replace").strip() if header else "an empty file"
                raise DataError(f"{path}: line 1: expected the header 'emotion,pixels,Usage', found {found!r}")
            columns = tuple(fields.index(name) for name in _CSV_HEADER)
            while lines := f.readlines(_CSV_BLOCK_BYTES):
                rows = [line for line in lines if not line.isspace()]
                try:
                    blocks.append(_parse_csv_rows(rows, columns))
                except _BadRow as e:
                    raise DataError(f"{path}: row {done + e.row + 1}: {e}") from None
                done += len(rows)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    if not blocks:
        return np.empty((0, 48, 48), np.uint8), np.empty(0, np.int64), np.empty(0, np.int8)
    images, labels, usage = (np.concatenate(parts) for parts in zip(*blocks))
    return images.reshape(-1, 48, 48), labels, usage


def _parse_csv_rows(
    rows: list[bytes], columns: tuple[int, int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSV lines -> (images (n, 2304) uint8, labels, usage codes); _BadRow on error.

    ``columns``: the positions of emotion, pixels and Usage (Kaggle's icml_face_data.csv has
    ``emotion, Usage, pixels``)."""
    at_emotion, at_pixels, at_usage = columns
    labels = np.empty(len(rows), dtype=np.int64)
    usage = np.empty(len(rows), dtype=np.int8)
    pixels: list[bytes] = []
    for i, line in enumerate(rows):
        fields = line.split(b",")
        if len(fields) != 3:
            raise _BadRow(i, f"expected 3 fields (emotion, pixels, Usage), found {len(fields)}")
        emotion, use = _unquote(fields[at_emotion]), _unquote(fields[at_usage])
        if not emotion.lstrip(b"-").isdigit():
            raise _BadRow(i, f"emotion {_show(emotion)} is not an integer")
        labels[i] = code = int(emotion)
        if not 0 <= code < len(FER2013_CLASSES):
            raise _BadRow(i, f"emotion {code} is out of range 0..{len(FER2013_CLASSES) - 1}")
        if use not in _USAGE_CODE:
            raise _BadRow(i, f"unknown Usage {_show(use)} (expected {', '.join(FER2013_SPLITS)})")
        usage[i] = _USAGE_CODE[use]
        pix = fields[at_pixels]
        pixels.append(pix.strip()[1:-1] if pix.lstrip().startswith(b'"') else pix)
    return _decode_pixels(pixels), labels, usage


def _unquote(field: bytes) -> bytes:
    field = field.strip()
    return field[1:-1].strip() if len(field) >= 2 and field[:1] == field[-1:] == b'"' else field


def _show(value: bytes) -> str:
    return repr(value[:20].decode("utf-8", "replace"))


def _decode_pixels(fields: list[bytes]) -> np.ndarray:
    """Parse pixel strings ("70 80 82 ...", 2304 integers 0..255 each) in bulk -> (n, 2304) uint8.

    Works on the bytes of all rows at once: tokens are runs of digits, their value is assembled
    from at most 3 digits. Raises _BadRow for a bad character, count or value.
    """
    buf = np.frombuffer(b" " + b" ".join(fields) + b" ", dtype=np.uint8)
    sep = np.zeros(len(fields) + 1, dtype=np.int64)     # sep[k]: the space before row k (sep[n]: the last byte)
    np.cumsum(np.fromiter(map(len, fields), np.int64, len(fields)) + 1, out=sep[1:])

    def row_of(pos: int) -> int:
        return int(np.searchsorted(sep, pos, "right")) - 1

    digit = buf - np.uint8(48)                            # uint8 wrap-around: non-digits become >= 10
    is_digit = digit < 10
    if np.count_nonzero(is_digit) + np.count_nonzero(buf == 32) != len(buf):
        pos = int(np.argmax(~is_digit & (buf != 32)))
        raise _BadRow(row_of(pos), f"pixels: unexpected character {chr(buf[pos])!r} "
                                   "(expected integers 0..255 separated by spaces)")
    starts = np.flatnonzero(is_digit[1:] > is_digit[:-1]) + 1
    ends = np.flatnonzero(is_digit[:-1] > is_digit[1:])  # the buffer ends with a space: every token ends
    counts = np.diff(np.searchsorted(starts, sep))
    if (counts != _PIXELS).any():
        row = int(np.argmax(counts != _PIXELS))
        raise _BadRow(row, f"pixels: expected {_PIXELS} values, found {counts[row]}")
    width = ends - starts
    value = digit[ends].astype(np.int16)
    value += (width >= 1) * (digit[ends - 1].astype(np.int16) * 10)
    value += (width >= 2) * (digit[ends - 2].astype(np.int16) * 100)
    bad = (width > 2) | (value > 255)
    if bad.any():
        tok = int(np.argmax(bad))
        text = bytes(buf[starts[tok]:ends[tok] + 1][:12]).decode()
        raise _BadRow(row_of(starts[tok]), f"pixels: value {text} is out of range 0..255")
    return value.astype(np.uint8).reshape(len(fields), _PIXELS)


def default_cache_dir() -> Path:
    """``$FERKIT_CACHE_DIR``, else ``~/.cache/ferkit``."""
    env = os.environ.get("FERKIT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ferkit"


def _cache_file(path: Path, cache_dir: str | os.PathLike | None) -> Path:
    """``<cache_dir>/fer2013csv-<hash of real path>-<hash of size, mtime_ns, cache version>.npz``."""
    st = path.stat()
    where = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]   # symlinks share an entry
    state = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}:{_CACHE_VERSION}".encode()).hexdigest()[:16]
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return folder / f"fer2013csv-{where}-{state}.npz"


def _read_cache(cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The cached arrays, or None when absent or unreadable (then the CSV is parsed again)."""
    try:
        with np.load(cache, allow_pickle=False) as z:
            images, labels, usage = z["images"], z["labels"], z["usage"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if images.shape[1:] != (48, 48) or not len(images) == len(labels) == len(usage):
        return None
    return images, labels, usage


def _write_cache(cache: Path, arrays: tuple[np.ndarray, np.ndarray, np.ndarray]) -> str | None:
    """Write atomically, drop older versions of the same CSV's cache.
    Returns an error text instead of raising: a cache that cannot be written only costs time."""
    images, labels, usage = arrays
    try:
        with atomic_path(cache) as tmp, open(tmp, "wb") as f:
            np.savez(f, images=images, labels=labels, usage=usage)
        for old in cache.parent.glob(cache.name.rsplit("-", 1)[0] + "-*.npz"):
            if old != cache:
                old.unlink(missing_ok=True)
    except OSError as e:
        return f"{cache.parent}: {e.strerror or e}"
    return None


# ------------------------------------------------------------------------------------------ FER2013 folders
def load_fer2013_folder(root: str | os.PathLike) -> FaceSet:
    """Load Kaggle's FER2013 folders ``train/<class>/Training_*.jpg`` and
    ``test/<class>/{PublicTest,PrivateTest}_*.jpg`` lazily (paths only).

    Split = file-name prefix; ids = path relative to ``root``; classes = all 7 FER2013 classes.
    Samples are ordered Training, PublicTest, PrivateTest, then by class folder and file name.
    """
    root = resolve_root(root)
    tops = [root / top for top in ("train", "test") if (root / top).is_dir()]
    if not tops:
        raise DataError(f"{root}: no train/ or test/ folder (expected FER2013's Kaggle layout)")
    rows: list[tuple[int, str, str]] = []        # (split index, class, path relative to root)
    for top in tops:
        for folder in _subdirs(top):
            cls = _folder_class(folder, FER2013_CLASSES)
            for name in _image_names(folder):
                prefix = name.split("_", 1)[0]
                if prefix not in FER2013_SPLITS:
                    raise DataError(f"{folder / name}: file name must start with "
                                    f"{', '.join(s + '_' for s in FER2013_SPLITS)}")
                rows.append((FER2013_SPLITS.index(prefix), cls, f"{top.name}/{folder.name}/{name}"))
    _require_rows(len(rows), root)
    rows.sort(key=lambda r: r[0])                 # stable: class folder and name order kept
    split_idx, classes, ids = zip(*rows)
    base = str(root.absolute())
    return FaceSet(
        classes=list(FER2013_CLASSES), labels=_index_of(classes, FER2013_CLASSES),
        splits=np.array(FER2013_SPLITS)[list(split_idx)], ids=list(ids),
        paths=np.array([os.path.join(base, i) for i in ids]), root=str(root), name="fer2013-folder",
    )


# ------------------------------------------------------------------------------------------ FER+
def load_ferplus(
    root: str | os.PathLike, *, label_mode: str = "majority", ferplus_classes: int = 8,
    cache_dir: str | os.PathLike | None = None,
) -> FaceSet:
    """Load FER+ (FER2013 relabelled with 10 crowd votes per image).

    Layouts: (a) ``FER2013Train/``, ``FER2013Valid/``, ``FER2013Test/``, each with PNGs and a
    header-less ``label.csv`` (``image name, face box, neutral, happiness, surprise, sadness, anger,
    disgust, fear, contempt, unknown, NF``), read lazily; (b) ``fer2013.csv`` next to
    ``fer2013new.csv`` (``Usage,Image name,<10 vote columns>``, row i = row i of fer2013.csv; rows
    without an image name are dropped), decoded into memory (``cache_dir`` as in
    :func:`load_fer2013_csv`). Split names are the folder names FER2013Train / FER2013Valid /
    FER2013Test in both layouts; (a) is used when both are present.

    Labels follow the FER+ paper: single votes are dropped first, then ``label_mode`` is
    ``majority`` (top emotion has more than half of the votes), ``plurality`` (unique top vote,
    not unknown/NF) or ``probability`` (``soft`` = emotion votes normalised, label = argmax).
    Images with no emotion vote, or more unknown+NF votes than votes for their top emotion, are
    dropped in every mode. ``ferplus_classes=8`` gives ``FERPLUS_CLASSES``; 7 gives
    ``FER2013_CLASSES`` (contempt images dropped, or the contempt votes in probability mode).
    What was dropped is listed in ``notes``.
    """
    root = resolve_root(root)
    if label_mode not in LABEL_MODES:
        raise DataError(f"{root}: unknown FER+ label mode {label_mode!r} (known: {', '.join(LABEL_MODES)})")
    if ferplus_classes not in (7, 8):
        raise DataError(f"{root}: ferplus_classes must be 8 (with contempt) or 7 (FER2013's classes), "
                        f"not {ferplus_classes!r}")
    folders = [root / d for d in FERPLUS_SPLITS.values() if (root / d).is_dir()]
    if folders:
        faces, votes = _ferplus_folders(root, folders)
    elif (root / "fer2013.csv").is_file() and (root / "fer2013new.csv").is_file():
        faces, votes = _ferplus_csv(root, cache_dir)
    else:
        raise DataError(f"{root}: not a FER+ layout (expected FER2013Train/ FER2013Valid/ FER2013Test/ folders with "
                        "label.csv, or fer2013.csv next to fer2013new.csv)")
    keep, labels, soft, classes, note = _ferplus_targets(votes, label_mode, ferplus_classes)
    faces = faces.select(keep)
    faces.labels, faces.classes, faces.soft = labels[keep], classes, None if soft is None else soft[keep]
    faces.notes.append(note)
    _require_rows(len(faces), root, f"images left with {label_mode} labels")
    return faces


def _ferplus_folders(root: Path, folders: list[Path]) -> tuple[FaceSet, np.ndarray]:
    """Layout (a): the PNGs listed in each folder's label.csv, with their (N, 10) votes."""
    ids: list[str] = []
    splits: list[str] = []
    votes: list[np.ndarray] = []
    for folder in folders:
        label_csv = folder / "label.csv"
        if not label_csv.is_file():
            raise DataError(f"{label_csv}: no such file (every FER+ folder needs its label.csv)")
        keys, v = _read_votes(label_csv, header=None)
        present = set(_image_names(folder))
        for row, (name, _box) in enumerate(keys, 1):
            if name not in present:
                raise DataError(f"{label_csv}: row {row}: image {name!r} is not in {folder}")
        ids += [f"{folder.name}/{name}" for name, _ in keys]
        splits += [folder.name] * len(keys)
        votes.append(v)
    _require_rows(len(ids), root)
    base = str(root.absolute())
    faces = FaceSet(classes=list(FERPLUS_CLASSES), labels=np.zeros(len(ids)), splits=splits, ids=ids,
                    paths=np.array([os.path.join(base, i) for i in ids]), root=str(root), name="ferplus")
    return faces, np.concatenate(votes)


def _ferplus_csv(root: Path, cache_dir: str | os.PathLike | None) -> tuple[FaceSet, np.ndarray]:
    """Layout (b): fer2013.csv's images with fer2013new.csv's votes (rows aligned one to one)."""
    csv_faces = load_fer2013_csv(root / "fer2013.csv", cache_dir=cache_dir)
    new_csv = root / "fer2013new.csv"
    keys, votes = _read_votes(new_csv, header=("usage", "image name"))
    if len(keys) != len(csv_faces):
        raise DataError(f"{new_csv}: has {len(keys)} rows but fer2013.csv has {len(csv_faces)}; "
                        "the two files must be aligned row by row")
    usage = np.array([u for u, _ in keys])
    mismatch = np.flatnonzero(usage != csv_faces.splits)
    if len(mismatch):
        i = int(mismatch[0])
        raise DataError(f"{new_csv}: row {i + 1}: Usage {usage[i]!r} differs from fer2013.csv's "
                        f"{csv_faces.splits[i]!r}; the two files must be aligned row by row")
    named = np.array([bool(name) for _, name in keys])
    faces = csv_faces.select(named)
    faces.splits = np.array([FERPLUS_SPLITS[s] for s in faces.splits])
    faces.name = "ferplus"
    faces.root = str(root)
    if (~named).any():
        faces.notes.append(f"dropped {int((~named).sum())} rows without a FER+ image name in fer2013new.csv")
    return faces, votes[named]


def _csv_rows(path: Path, header: tuple[str, ...] | None, width: int, expected: str) -> list[tuple[int, list[str]]]:
    """The data rows of a small CSV file as ``(1-based data row, fields)``, blank lines skipped.

    ``header``: the expected first column names (checked case-insensitively, with ``width`` columns in
    all), or None for a header-less file; ``expected`` describes the header for the error. DataError
    names the file and the line or row of a bad header, a wrong field count or an unreadable file.
    """
    rows: list[tuple[int, list[str]]] = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            if header is not None:
                first = [c.strip().lower() for c in next(reader, [])]
                if tuple(first[:len(header)]) != header or len(first) != width:
                    raise DataError(f"{path}: line 1: expected {expected}, found {shorten(','.join(first), 80)!r}")
            for row, fields in enumerate(reader, 1):
                if not fields:
                    continue
                if len(fields) != width:
                    raise DataError(f"{path}: row {row}: expected {width} fields, found {len(fields)}")
                rows.append((row, fields))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read ({e.__class__.__name__}: {e})") from None
    return rows


def _read_votes(path: Path, header: tuple[str, ...] | None) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Rows of ``<key 1>,<key 2>,<10 vote counts>`` -> ([(key 1, key 2)], (N, 10) int64 votes).

    ``header``: the expected first two column names (checked case-insensitively), or None for a
    header-less file. DataError names the file and the 1-based data row of a malformed row.
    """
    keys: list[tuple[str, str]] = []
    votes: list[list[int]] = []
    expected = f"a header 'Usage,Image name' and {FERPLUS_VOTE_COLUMNS} vote columns"
    for row, fields in _csv_rows(path, header, 2 + FERPLUS_VOTE_COLUMNS, expected):
        try:
            counts = [int(c) for c in fields[2:]]
        except ValueError:
            raise DataError(f"{path}: row {row}: vote counts must be integers, "
                            f"found {','.join(fields[2:])!r}") from None
        if min(counts) < 0:
            raise DataError(f"{path}: row {row}: negative vote count")
        keys.append((fields[0].strip(), fields[1].strip()))
        votes.append(counts)
    return keys, np.array(votes, dtype=np.int64).reshape(-1, FERPLUS_VOTE_COLUMNS)


def _ferplus_targets(
    votes: np.ndarray, mode: str, num_classes: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[str], str]:
    """FER+ votes (N, 10) -> (keep mask, labels, soft or None, classes, note)."""
    v = np.where(votes == 1, 0, votes).astype(np.float64)   # a single vote is an outlier
    emotion, other = v[:, :8], v[:, 8:]                      # other: unknown, NF
    top = emotion.max(axis=1)
    labels = emotion.argmax(axis=1)
    drops = {                                   # reason -> mask; a sample counts under its first reason
        "no emotion votes": emotion.sum(axis=1) == 0,
        "mostly unknown or not a face": other.sum(axis=1) > top,
    }
    if mode == "majority":
        drops["no majority"] = top <= v.sum(axis=1) / 2
    elif mode == "plurality":                    # unknown/NF on top is covered by "mostly unknown" above
        drops["tie for the top vote"] = (v == v.max(axis=1, keepdims=True)).sum(axis=1) > 1
    classes = list(FERPLUS_CLASSES)
    soft = None
    if num_classes == 7:
        order = [FERPLUS_CLASSES.index(c) for c in FER2013_CLASSES]
        contempt = FERPLUS_CLASSES.index("contempt")
        if mode == "probability":             # drop the contempt votes; ties still break in FER+ order
            emotion = np.where(np.arange(8) == contempt, 0, emotion)
            drops["contempt votes only (7 classes)"] = emotion.sum(axis=1) == 0
            labels = emotion.argmax(axis=1)
            emotion = emotion[:, order]
        else:
            drops["contempt (7 classes)"] = labels == contempt
        remap = np.full(8, -1, dtype=np.int64)
        remap[order] = np.arange(7)
        labels = remap[labels]
        classes = list(FER2013_CLASSES)
    if mode == "probability":
        total = emotion.sum(axis=1, keepdims=True)
        soft = (emotion / np.where(total > 0, total, 1)).astype(np.float32)
    dropped = np.zeros(len(v), dtype=bool)
    parts = []
    for reason, mask in drops.items():
        new = mask & ~dropped
        if new.any():
            parts.append(f"{int(new.sum()):,} {reason}")
        dropped |= mask
    note = (f"FER+ {mode} labels, {num_classes} classes: dropped {int(dropped.sum()):,} of {len(v):,} images"
            + (f" ({', '.join(parts)})" if parts else ""))
    return ~dropped, labels.astype(np.int64), soft, classes, note


# ------------------------------------------------------------------------------------------ class folders
def load_image_folder(
    root: str | os.PathLike, *, classes: str | Sequence[str] | None = None, group_regex: str | None = None,
) -> FaceSet:
    """Load a class-per-folder set lazily: ``root/<class>/*`` (split ``all``) or
    ``root/<split>/<class>/*`` when every sub-folder of ``root`` is a split name (train, training,
    val, valid, validation, test, testing; the folder name is kept as the split name).

    Class folder names go through :func:`normalize_class_name` (anger, Happiness, 3_sad ...);
    folders naming the same class are merged. Classes follow ``ALL_CLASSES`` order, restricted to
    those present (or ``classes``, in its order). Files are images by extension (``IMAGE_EXTENSIONS``,
    any case); they are not decoded here. ``group_regex`` sets ``groups`` (subject ids) from the
    file names, see :func:`ferkit.data.splits.subject_ids`.
    """
    root = resolve_root(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (the folder format expects <class>/ or <split>/<class>/ folders)")
    subdirs = _subdirs(root)
    split_dirs = [d for d in subdirs if d.name.lower() in SPLIT_FOLDERS]
    if split_dirs and len(split_dirs) != len(subdirs):
        other = [d.name for d in subdirs if d not in split_dirs]
        raise DataError(f"{root}: mixes split folders ({', '.join(d.name for d in split_dirs)}) "
                        f"with other folders ({', '.join(other)})")
    layout = [(d.name, d) for d in sorted(split_dirs, key=lambda d: SPLIT_FOLDERS[d.name.lower()])] or [("all", root)]
    rows: list[tuple[str, str, str]] = []        # (split, class, path relative to root)
    folders_of: dict[str, set[str]] = {}
    for split, split_dir in layout:
        prefix = "" if split_dir == root else f"{split_dir.name}/"
        for folder in _subdirs(split_dir):
            cls = _folder_class(folder, ALL_CLASSES)
            folders_of.setdefault(cls, set()).add(folder.name)
            rows += [(split, cls, f"{prefix}{folder.name}/{name}") for name in _image_names(folder)]
    _require_rows(len(rows), root, "images (expected <class>/ or <split>/<class>/ folders of image files)")
    splits, labels, ids = zip(*rows)
    present = [c for c in ALL_CLASSES if c in set(labels)]
    base = str(root.absolute())
    paths = np.array([os.path.join(base, i) for i in ids])
    faces = FaceSet(
        classes=present, labels=_index_of(labels, present), splits=list(splits), ids=list(ids), paths=paths,
        groups=subject_ids(paths, group_regex) if group_regex else None, root=str(root), name="folder",
        notes=[f"folders {', '.join(sorted(names))} merged into class {cls}"
               for cls, names in folders_of.items() if len(names) > 1],
    )
    wanted = parse_class_list(classes)
    return faces.with_classes(wanted) if wanted else faces


# ------------------------------------------------------------------------------------------ FER+ votes as soft targets
def mix_ferplus_votes(
    faces: FaceSet, ferplus_root: str | os.PathLike, map_csv: str | os.PathLike, *, weight: float = 0.5,
) -> FaceSet:
    """Soft targets for FER2013 images from the FER+ votes of the same images.

    ``map_csv`` is ``fer2013_file,ferplus_file`` (paths relative to the two roots, as in
    ``fer2013_ferplus_map.csv``). Each mapped image's target becomes ``weight * one_hot(FER2013
    label) + (1 - weight) * FER+ vote distribution`` over ``faces.classes`` (FER+ probability labels,
    votes of classes that ``faces`` lacks, such as contempt, dropped); images without usable FER+
    votes keep their one-hot label. ``weight=0`` trains on the FER+ votes alone where they exist.
    Labels (and so validation accuracy and stratification) stay FER2013's. Returns a new FaceSet.
    """
    if not 0.0 <= weight <= 1.0:
        raise DataError(f"data.ferplus_weight={weight!r}: must be between 0 and 1")
    map_path = resolve_root(map_csv)
    fp = load_ferplus(ferplus_root, label_mode="probability", ferplus_classes=8)
    missing = [c for c in faces.classes if c not in fp.classes]
    if missing:
        raise DataError(f"{ferplus_root}: FER+ has no class {', '.join(missing)}")
    fp_soft = fp.soft[:, [fp.classes.index(c) for c in faces.classes]]
    total = fp_soft.sum(axis=1)
    row_of = {str(i): r for r, i in enumerate(fp.ids) if total[r] > 0}
    pairs: dict[str, int] = {}
    for _, (fer_file, ferplus_file) in _csv_rows(map_path, ("fer2013_file", "ferplus_file"), 2,
                                                 "the header 'fer2013_file,ferplus_file'"):
        r = row_of.get(ferplus_file.strip())
        if r is not None:
            pairs[fer_file.strip()] = r
    soft = np.eye(len(faces.classes), dtype=np.float32)[faces.labels]
    rows = np.array([pairs.get(str(i), -1) for i in faces.ids])
    hit = rows >= 0
    if not hit.any():
        raise DataError(f"{map_path}: none of the {len(faces):,} images of {faces.root or faces.name} is in this map")
    votes = fp_soft[rows[hit]] / total[rows[hit], None]
    soft[hit] = weight * soft[hit] + (1 - weight) * votes
    out = faces.select(np.arange(len(faces)))
    out.soft = soft
    out.notes.append(f"FER+ votes mixed into {int(hit.sum()):,} of {len(faces):,} targets "
                     f"(weight {weight:g} on the dataset's labels)")
    return out
