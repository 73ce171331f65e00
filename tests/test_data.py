"""Dataset loaders and split helpers, on the real data sets in ../shared/data (no mocks).

The data folder is ``<repo>/../shared/data`` or ``$FERKIT_DATA``. FER2013 CSVs are generated with
``fer2013_csv/make_fer2013_csv.py`` into temporary folders (the full file once per session, about
20 s; ``$FERKIT_FER2013_CSV`` may point at an already generated full file to skip that).
"""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferkit.data import (
    FER2013_CLASSES,
    FERPLUS_CLASSES,
    FORMATS,
    class_weights,
    kfold_splits,
    load_dataset,
    load_fer2013_csv,
    load_fer2013_folder,
    load_ferplus,
    load_image_folder,
    stratified_split,
    stratified_subset,
    subject_ids,
)
from ferkit.data.loaders import FERPLUS_SPLITS, detect_format
from ferkit.errors import DataError

from _paths import DATA, FER, FERPLUS

if not (DATA / "fer2013").is_dir() or not (DATA / "ferplus").is_dir():
    pytest.skip(f"real data sets not found in {DATA} (set FERKIT_DATA to the shared data folder)",
                allow_module_level=True)

MAKE_CSV = DATA / "fer2013_csv" / "make_fer2013_csv.py"
README_COUNTS = {  # README table: split -> angry, disgust, fear, happy, neutral, sad, surprise
    "Training": (3969, 435, 4079, 7186, 4932, 4796, 3161),
    "PublicTest": (467, 56, 496, 895, 607, 653, 415),
    "PrivateTest": (491, 55, 528, 879, 626, 594, 416),
}
README_ORDER = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module", autouse=True)
def _cache_in_tmp(tmp_path_factory):
    """Keep the default CSV cache out of ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FERKIT_CACHE_DIR", str(tmp_path_factory.mktemp("default-cache")))
        yield


def _make_csv(out: Path, limit: int | None = None) -> Path:
    cmd = [sys.executable, str(MAKE_CSV), str(out)] + ([f"--limit={limit}"] if limit else [])
    subprocess.run(cmd, check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def full_csv(tmp_path_factory) -> Path:
    given = os.environ.get("FERKIT_FER2013_CSV")
    if given:
        return Path(given)
    return _make_csv(tmp_path_factory.mktemp("csv-full") / "fer2013.csv")


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory) -> Path:
    return _make_csv(tmp_path_factory.mktemp("csv-small") / "fer2013.csv", limit=200)


@pytest.fixture(scope="session")
def fer_folder():
    return load_fer2013_folder(FER)


@pytest.fixture(scope="session")
def csv_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("csv-cache")


@pytest.fixture(scope="session")
def csv_cold(full_csv, csv_cache):
    """The full CSV parsed once without a cache -> (FaceSet, seconds)."""
    t0 = time.perf_counter()
    faces = load_fer2013_csv(full_csv, cache_dir=csv_cache)
    return faces, time.perf_counter() - t0


@pytest.fixture(scope="session")
def csv_faces(csv_cold):
    return csv_cold[0]


@pytest.fixture(scope="session")
def csv_rows() -> list[tuple[str, str, str]]:
    """(Usage, FER+ image name or "", Kaggle file) for each row of the generated CSV, rebuilt the way
    make_fer2013_csv.py builds it: fer2013new.csv's rows in order (first use of each image), then the
    test images FER+ has no row for, each split kept together in its original order."""
    with open(DATA / "fer2013_ferplus_map.csv") as f:
        kaggle_of = {r["ferplus_file"]: r["fer2013_file"] for r in csv.DictReader(f)}
    rows, used = [], set()
    with open(FERPLUS / "fer2013new.csv") as f:
        for r in csv.DictReader(f):
            kaggle = kaggle_of.get(f"{FERPLUS_SPLITS[r['Usage']]}/{r['Image name']}")
            if r["Image name"] and kaggle and kaggle not in used:
                used.add(kaggle)
                rows.append((r["Usage"], r["Image name"], kaggle))
    for top in ("train", "test"):
        for cls in sorted(os.listdir(FER / top)):
            for name in sorted(os.listdir(FER / top / cls)):
                if f"{top}/{cls}/{name}" not in used:
                    rows.append((name.split("_")[0], "", f"{top}/{cls}/{name}"))
    order = list(FERPLUS_SPLITS)
    return sorted(rows, key=lambda r: order.index(r[0]))


def _fer2013new_votes() -> tuple[list[str], dict[str, list[str]]]:
    """fer2013new.csv's header and {"FER2013Train/fer0000000.png": [10 vote strings]} (first row of a name)."""
    votes: dict[str, list[str]] = {}
    with open(FERPLUS / "fer2013new.csv", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        for r in reader:
            votes.setdefault(f"{FERPLUS_SPLITS[r[0]]}/{r[1]}", r[2:])
    return header, votes


def _label_csv_votes() -> dict[str, list[str]]:
    votes = {}
    for folder in FERPLUS_SPLITS.values():
        with open(FERPLUS / folder / "label.csv", newline="") as f:
            votes.update((f"{folder}/{r[0]}", r[2:]) for r in csv.reader(f))
    return votes


def _write_aligned_fer2013new(out: Path, rows: list[tuple[str, str, str]]) -> None:
    """A fer2013new.csv whose rows match ``rows`` one to one (the real file's votes; no name, no votes
    for the images FER+ dropped)."""
    header, votes = _fer2013new_votes()
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for usage, name, _ in rows:
            w.writerow([usage, name, *(votes[f"{FERPLUS_SPLITS[usage]}/{name}"] if name else ["0"] * 10)])


_ferplus_cache: dict[tuple, object] = {}


def ferplus(mode: str = "majority", n: int = 8, root: Path = FERPLUS):
    key = (mode, n, str(root))
    if key not in _ferplus_cache:
        _ferplus_cache[key] = load_ferplus(root, label_mode=mode, ferplus_classes=n)
    return _ferplus_cache[key]


def _copy_images(dst: Path, src_class: str, n: int, start: int = 0, rename=None) -> list[Path]:
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for i, name in enumerate(sorted(os.listdir(FER / "train" / src_class))[start:start + n]):
        target = dst / (rename(i) if rename else name)
        if target.suffix == ".png":
            Image.open(FER / "train" / src_class / name).save(target)
        else:
            shutil.copy(FER / "train" / src_class / name, target)
        out.append(target)
    return out


def _one_line_error(excinfo, *needles: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"
    return msg


# ------------------------------------------------------------------------------------------ FER2013 folders
def test_fer2013_folder_matches_readme(fer_folder):
    faces = fer_folder
    assert faces.name == "fer2013-folder" and faces.images is None
    assert faces.classes == list(FER2013_CLASSES)
    assert faces.split_names() == ["Training", "PublicTest", "PrivateTest"]
    for split, counts in README_COUNTS.items():
        got = faces.split(split).class_counts()
        assert [got[c] for c in README_ORDER] == list(counts), split
    assert len(faces) == 28558 + 3589 + 3589
    i = int(np.flatnonzero(faces.splits == "PublicTest")[0])
    rel = faces.ids[i]
    assert rel.startswith("test/") and "/PublicTest_" in rel
    assert faces.paths[i] == str(FER.absolute() / rel)
    assert FER2013_CLASSES[faces.labels[i]] == rel.split("/")[1]
    assert faces.load_image(i).shape == (48, 48)
    assert detect_format(FER) == "fer2013-folder"
    both = faces.split("PublicTest+PrivateTest")          # the 7,178 test images the papers report on
    assert len(both) == 7178 and both.split_names() == ["PublicTest", "PrivateTest"]
    with pytest.raises(DataError, match=r"no split 'Testing'; this dataset has: Training, PublicTest, PrivateTest"):
        faces.split("PublicTest+Testing")


# ------------------------------------------------------------------------------------------ FER2013 CSV
def test_csv_matches_folder(csv_faces, fer_folder, csv_rows):
    faces = csv_faces
    assert faces.name == "fer2013-csv" and faces.images.shape == (35736, 48, 48) and faces.images.dtype == np.uint8
    assert faces.ids[0] == "fer2013.csv:row 1" and faces.ids[-1] == "fer2013.csv:row 35736"
    assert faces.images[0, 0, :5].tolist() == [70, 80, 82, 72, 58]   # the real file's first pixels
    for split in README_COUNTS:
        assert faces.split(split).class_counts() == fer_folder.split(split).class_counts()
    # row by row: the same image as the Kaggle JPEG with the same label, up to JPEG error
    assert len(csv_rows) == len(faces)
    index = {rel: i for i, rel in enumerate(fer_folder.ids)}
    match = np.array([index[kaggle] for _, _, kaggle in csv_rows])
    assert (faces.labels == fer_folder.labels[match]).all()
    assert (faces.splits == fer_folder.splits[match]).all()
    rng = np.random.default_rng(0)
    public = np.flatnonzero(faces.splits == "PublicTest")
    diffs = [np.abs(faces.images[i].astype(int) - fer_folder.load_image(match[i]).astype(int)).mean()
             for i in rng.choice(public, 300, replace=False)]
    assert np.mean(diffs) < 1.5 and np.max(diffs) < 4, (np.mean(diffs), np.max(diffs))


def test_csv_parse_time_and_cache(full_csv, csv_cold, csv_cache):
    cold, t_cold = csv_cold
    t0 = time.perf_counter()
    warm = load_fer2013_csv(full_csv, cache_dir=csv_cache)
    t_warm = time.perf_counter() - t0
    assert t_cold < 15, f"cold parse took {t_cold:.1f} s"
    assert t_warm < 1 and t_warm < t_cold / 3, (t_cold, t_warm)
    assert len(list(csv_cache.glob("*.npz"))) == 1
    assert (cold.images == warm.images).all() and (cold.labels == warm.labels).all()
    assert (cold.splits == warm.splits).all() and (cold.ids == warm.ids).all()


def test_csv_cache_invalidation(small_csv, tmp_path):
    path, cache = tmp_path / "data" / "fer2013.csv", tmp_path / "cache"
    path.parent.mkdir()
    shutil.copy(small_csv, path)
    first = load_fer2013_csv(path, cache_dir=cache)
    assert len(first) == 200 and os.listdir(path.parent) == ["fer2013.csv"]   # nothing next to the CSV
    (entry,) = cache.glob("*.npz")
    # new content: fewer rows, another label
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = "3" + lines[1][1:]
    path.write_text("".join(lines[:101]))
    second = load_fer2013_csv(path, cache_dir=cache)
    assert len(second) == 100 and second.labels[0] == 3
    assert (second.images == first.images[:100]).all()
    (entry2,) = cache.glob("*.npz")                 # the stale entry was replaced
    assert entry2 != entry
    # same content, new mtime: parsed again under a new key
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert len(load_fer2013_csv(path, cache_dir=cache)) == 100
    (entry3,) = cache.glob("*.npz")
    assert entry3 != entry2
    # a corrupt cache entry is ignored and rewritten
    entry3.write_bytes(b"not a zip")
    again = load_fer2013_csv(path, cache_dir=cache)
    assert (again.images == second.images).all() and entry3.stat().st_size > 1000
    # the default cache dir comes from $FERKIT_CACHE_DIR (set by the autouse fixture)
    load_dataset(path)
    assert list(Path(os.environ["FERKIT_CACHE_DIR"]).glob("fer2013csv-*.npz"))


def test_csv_column_order_quotes_and_blank_lines(small_csv, tmp_path):
    """Kaggle's icml_face_data.csv: ``emotion, Usage, pixels``, here with quotes, LF ends, blank lines."""
    rows = [line.split(",") for line in small_csv.read_text().splitlines()[1:6]]
    text = ["emotion, Usage, pixels"] + [f'{e}, {u}, "{p}"' for e, p, u in rows]
    path = tmp_path / "icml_face_data.csv"
    path.write_text("\n".join(text[:3]) + "\n\n" + "\n".join(text[3:]) + "\n\n")
    faces = load_dataset(path, cache_dir=tmp_path / "cache")
    ref = load_fer2013_csv(small_csv, cache_dir=tmp_path / "cache").select(np.arange(5))
    assert (faces.images == ref.images).all() and (faces.labels == ref.labels).all()
    assert (faces.splits == ref.splits).all() and faces.ids[-1] == "icml_face_data.csv:row 5"


# ------------------------------------------------------------------------------------------ FER+
# label.csv rows of FER2013Train (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt,
# unknown, NF) and what each mode makes of them, worked out by hand. None = dropped.
HAND_CHECKED = {
    # votes after dropping single votes: neutral 4, angry 3, disgust 2 (9): no majority
    "fer0000000.png": ("4,0,0,1,3,2,0,0,0,0", None, "neutral", {"neutral": 4 / 9, "angry": 3 / 9, "disgust": 2 / 9}),
    # neutral 6, unknown 2 (8): 6 > 4
    "fer0000001.png": ("6,0,1,1,0,0,0,0,2,0", "neutral", "neutral", {"neutral": 1.0}),
    # neutral 5, sad 3 (8): 5 > 4
    "fer0000002.png": ("5,0,0,3,1,0,0,0,1,0", "neutral", "neutral", {"neutral": 5 / 8, "sad": 3 / 8}),
    # neutral 4, sad 4: a tie (probability breaks it in FER+ column order)
    "fer0000003.png": ("4,0,0,4,1,0,0,0,1,0", None, None, {"neutral": 0.5, "sad": 0.5}),
    # neutral 5 of 10 is exactly half: not a majority
    "fer0000012.png": ("5,0,0,3,0,0,0,0,2,0", None, "neutral", {"neutral": 5 / 8, "sad": 3 / 8}),
    # surprise 3, unknown 4: mostly unknown, dropped in every mode
    "fer0000459.png": ("1,0,3,1,0,0,1,0,4,0", None, None, None),
    # happy 2, sad 3, unknown 4
    "fer0000603.png": ("0,2,1,3,0,0,0,0,4,0", None, None, None),
    # neutral 3, contempt 5 (8)
    "fer0000495.png": ("3,0,0,1,0,1,0,5,0,0", "contempt", "contempt", {"neutral": 3 / 8, "contempt": 5 / 8}),
    # contempt 8 only
    "fer0000571.png": ("1,0,0,0,0,0,0,8,1,0", "contempt", "contempt", {"contempt": 1.0}),
    # neutral 3, happy 5, contempt 2 (10): 5 is not more than half
    "fer0000086.png": ("3,5,0,0,0,0,0,2,0,0", None, "happy", {"neutral": 0.3, "happy": 0.5, "contempt": 0.2}),
}


def _by_name(faces) -> dict[str, int]:
    return {str(i).split("/")[-1]: k for k, i in enumerate(faces.ids) if str(i).startswith("FER2013Train/")}


def test_ferplus_hand_checked_rows():
    with open(FERPLUS / "FER2013Train" / "label.csv", newline="") as f:
        raw = {r[0]: ",".join(r[2:]) for r in csv.reader(f)}
    for name, (votes, *_rest) in HAND_CHECKED.items():
        assert raw[name] == votes, name
    for col, mode in enumerate(("majority", "plurality")):
        for n in (8, 7):
            faces = ferplus(mode, n)
            assert faces.soft is None
            where = _by_name(faces)
            for name, row in HAND_CHECKED.items():
                expect = row[1 + col]
                if n == 7 and expect == "contempt":
                    expect = None
                got = faces.classes[faces.labels[where[name]]] if name in where else None
                assert got == expect, (mode, n, name)
    for n in (8, 7):
        faces = ferplus("probability", n)
        where = _by_name(faces)
        for name, (_, _, _, dist) in HAND_CHECKED.items():
            if dist is not None and n == 7:
                dist = {c: p for c, p in dist.items() if c != "contempt"}
                dist = {c: p / sum(dist.values()) for c, p in dist.items()} or None
            if dist is None:
                assert name not in where, (n, name)
                continue
            soft = faces.soft[where[name]]
            expect = np.array([dist.get(c, 0.0) for c in faces.classes])
            np.testing.assert_allclose(soft, expect, atol=1e-6, err_msg=name)
            top = max(dist.values())
            first_top = next(c for c in FERPLUS_CLASSES if dist.get(c) == top)
            assert faces.classes[faces.labels[where[name]]] == first_top, (n, name)


def test_ferplus_classes_soft_and_notes():
    for mode in ("majority", "plurality", "probability"):
        eight, seven = ferplus(mode, 8), ferplus(mode, 7)
        assert eight.classes == list(FERPLUS_CLASSES) and seven.classes == list(FER2013_CLASSES)
        assert "contempt" not in seven.classes and seven.labels.max() == 6
        assert eight.split_names() == ["FER2013Train", "FER2013Valid", "FER2013Test"]
        assert eight.images is None and eight.paths[0].startswith(str(FERPLUS.absolute() / "FER2013Train"))
        assert any("dropped" in note and mode in note for note in eight.notes)
        assert len(eight) < 35710
    for n in (8, 7):
        faces = ferplus("probability", n)
        assert faces.soft.dtype == np.float32 and faces.soft.shape == (len(faces), n)
        np.testing.assert_allclose(faces.soft.sum(axis=1), 1, atol=1e-5)
        assert (faces.labels == faces.soft.argmax(axis=1)).mean() > 0.95
    # fewer drops as the rule relaxes
    assert len(ferplus("majority")) < len(ferplus("plurality")) < len(ferplus("probability"))
    assert detect_format(FERPLUS) == "ferplus"


def test_ferplus_csv_layout_matches_folders(full_csv, csv_cache, csv_rows, tmp_path):
    root = tmp_path / "ferplus-csv"
    root.mkdir()
    (root / "fer2013.csv").symlink_to(full_csv)
    _write_aligned_fer2013new(root / "fer2013new.csv", csv_rows)
    # The shared FER+ copy's label.csv files and fer2013new.csv disagree on the votes of ~1,600 images
    # (two releases of the relabelling); both layouts must agree on all the others.
    new_votes, folder_votes = _fer2013new_votes()[1], _label_csv_votes()
    same = {name for name, v in folder_votes.items() if new_votes[name] == v}
    assert len(same) > 0.95 * len(folder_votes)
    for mode in ("majority", "probability"):
        from_csv = load_dataset(root, label_mode=mode, ferplus_classes=7 if mode == "probability" else 8,
                                cache_dir=csv_cache)                   # a symlink shares the cache entry
        folders = ferplus(mode, 7 if mode == "probability" else 8)
        assert from_csv.name == "ferplus" and from_csv.images is not None
        assert any("without a FER+ image name" in n for n in from_csv.notes)
        assert from_csv.split_names() == folders.split_names()
        rows = [int(i.rsplit(" ", 1)[1]) - 1 for i in from_csv.ids]
        names = [f"{FERPLUS_SPLITS[csv_rows[r][0]]}/{csv_rows[r][1]}" for r in rows]
        kept = np.array([n in same for n in names])
        names = [n for n in names if n in same]
        where = {i: k for k, i in enumerate(folders.ids) if i in same}
        assert sorted(names) == sorted(where)           # the same images survive
        match = np.array([where[n] for n in names])
        sub = from_csv.select(kept)
        assert (sub.labels == folders.labels[match]).all()
        assert (sub.splits == folders.splits[match]).all()
        if mode == "probability":
            np.testing.assert_allclose(sub.soft, folders.soft[match])
        for k in (0, len(match) // 2, len(match) - 1):  # the CSV pixels are the FER+ PNG's pixels
            assert (sub.images[k] == folders.load_image(match[k])).all()


def test_ferplus_bad_layouts(small_csv, tmp_path):
    misaligned = tmp_path / "misaligned"
    misaligned.mkdir()
    (misaligned / "fer2013.csv").symlink_to(small_csv)
    (misaligned / "fer2013new.csv").symlink_to(FERPLUS / "fer2013new.csv")
    with pytest.raises(DataError) as e:
        load_dataset(misaligned)
    _one_line_error(e, "fer2013new.csv", "35887 rows", "200")
    only_votes = tmp_path / "only-votes"
    only_votes.mkdir()
    (only_votes / "fer2013new.csv").symlink_to(FERPLUS / "fer2013new.csv")
    with pytest.raises(DataError) as e:
        load_dataset(only_votes)
    _one_line_error(e, str(only_votes), "fer2013.csv")
    valid = tmp_path / "bad-label" / "FER2013Valid"
    valid.mkdir(parents=True)
    lines = (FERPLUS / "FER2013Valid" / "label.csv").read_text().splitlines()[:3]
    for line in lines:
        (valid / line.split(",")[0]).symlink_to(FERPLUS / "FER2013Valid" / line.split(",")[0])
    (valid / "label.csv").write_text("\n".join(lines) + "\n")
    assert load_ferplus(valid.parent, label_mode="probability").split_names() == ["FER2013Valid"]
    (valid / lines[0].split(",")[0]).unlink()
    with pytest.raises(DataError) as e:
        load_ferplus(valid.parent)
    _one_line_error(e, str(valid / "label.csv"), "row 1", lines[0].split(",")[0])
    for bad, needle in ((lines[2].rsplit(",", 1)[0], "expected 12 fields"), (lines[2][:-1] + "x", "integers")):
        (valid / "label.csv").write_text("\n".join(lines[:2] + [bad]) + "\n")
        with pytest.raises(DataError) as e:
            load_ferplus(valid.parent)
        _one_line_error(e, str(valid / "label.csv"), "row 3", needle)
    for kwargs, needle in (({"label_mode": "vote"}, "'vote'"), ({"ferplus_classes": 6}, "ferplus_classes")):
        with pytest.raises(DataError) as e:
            load_ferplus(FERPLUS, **kwargs)
        _one_line_error(e, needle)


# ------------------------------------------------------------------------------------------ class folders
def test_folder_aliases_merge_and_order(tmp_path):
    root = tmp_path / "aliases"
    _copy_images(root / "anger", "angry", 3)
    _copy_images(root / "angry", "angry", 2, start=3)
    _copy_images(root / "Happiness", "happy", 4)
    _copy_images(root / "3_sad", "sad", 5)
    (root / "3_sad" / "notes.txt").write_text("not an image")
    (root / ".thumbs").mkdir()
    _copy_images(root / "Happiness", "happy", 1, start=10, rename=lambda i: "UPPER.JPG")
    faces = load_dataset(root)
    assert faces.name == "folder" and faces.images is None
    assert faces.classes == ["angry", "happy", "sad"]           # ALL_CLASSES order, present only
    assert faces.class_counts() == {"angry": 5, "happy": 5, "sad": 5}
    assert faces.split_names() == ["all"]
    assert any("anger" in n and "angry" in n for n in faces.notes)
    assert "Happiness/UPPER.JPG" in faces.ids and faces.groups is None
    assert faces.load_image(0).shape == (48, 48)
    only = load_dataset(root, classes="happiness, angry")
    assert only.classes == ["happy", "angry"] and len(only) == 10 and only.labels.max() == 1


def test_folder_split_layout_neutral_missing_and_contempt(tmp_path):
    root = tmp_path / "splits"
    for split, n in (("train", 4), ("test", 2)):
        _copy_images(root / split / "happy", "happy", n)
        _copy_images(root / split / "Surprised", "surprise", n)
        _copy_images(root / split / "contempt", "disgust", 1)  # stands in for a contempt image
    faces = load_image_folder(root)
    assert faces.split_names() == ["train", "test"]
    assert faces.classes == ["happy", "surprise", "contempt"]  # no neutral; contempt last
    assert faces.split("train").class_counts() == {"happy": 4, "surprise": 4, "contempt": 1}
    assert faces.ids[0].startswith("train/") and "test/happy/" + faces.ids[-1].rsplit("/", 1)[1] in faces.ids
    assert detect_format(root) == "folder"
    with pytest.raises(DataError) as e:
        faces.split("val")
    _one_line_error(e, "'val'")
    (root / "happy").mkdir()
    with pytest.raises(DataError) as e:
        load_image_folder(root)
    _one_line_error(e, str(root), "happy")


def test_ckplus_groups_give_identity_disjoint_folds(tmp_path):
    root = tmp_path / "ckplus"
    subjects = [f"S{s:03d}" for s in range(5, 17)]
    for k, sid in enumerate(subjects):
        def ckplus_name(i: int, sid: str = sid) -> str:
            return f"{sid}_00{4 + i}_{19 + i:08d}.png"

        for cls, target in (("happy", "happy"), ("sad", "sadness"), ("surprise", "surprise")):
            _copy_images(root / target, cls, 2, start=2 * k, rename=ckplus_name)
    faces = load_dataset(root, group_regex=r"(S\d+)_")
    assert sorted(set(faces.groups)) == subjects
    assert faces.groups[faces.ids.tolist().index("happy/S010_004_00000019.png")] == "S010"
    folds = kfold_splits(faces.labels, 4, seed=1, groups=faces.groups)
    assert len(folds) == 4
    seen = np.concatenate([val for _, val in folds])
    assert sorted(seen.tolist()) == list(range(len(faces)))
    for train, val in folds:
        assert not set(faces.groups[train]) & set(faces.groups[val])
    with pytest.raises(DataError) as e:
        kfold_splits(faces.labels, 13, groups=faces.groups)
    _one_line_error(e, "13 folds", "12 subjects")
    (root / "happy" / "frame_1.png").write_bytes((root / "happy" / "S010_004_00000019.png").read_bytes())
    with pytest.raises(DataError) as e:
        load_dataset(root, group_regex=r"(S\d+)_")
    _one_line_error(e, "frame_1.png", "group regex")


# ------------------------------------------------------------------------------------------ bad input
def _bad_csv(tmp_path: Path, small_csv: Path, edit) -> Path:
    lines = small_csv.read_text().splitlines()[:6]
    lines = edit(lines)
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _set_row3(field: int, value):
    def edit(lines):
        parts = lines[3].split(",")
        parts[field] = value(parts[field]) if callable(value) else value
        lines[3] = ",".join(parts)
        return lines
    return edit


@pytest.mark.parametrize("edit, needles", [
    (lambda ls: ["emotion,pixel,Usage"] + ls[1:], ("line 1", "header")),
    (lambda ls: ls[:1], ("no data rows",)),
    (_set_row3(1, lambda p: p.rsplit(" ", 1)[0]), ("row 3", "2304 values, found 2303")),
    (_set_row3(1, lambda p: p.replace(" ", " 1x ", 1)), ("row 3", "'x'")),
    (_set_row3(1, lambda p: "256" + p[p.index(" "):]), ("row 3", "256", "0..255")),
    (_set_row3(0, "9"), ("row 3", "emotion 9", "0..6")),
    (_set_row3(0, "sad"), ("row 3", "emotion 'sad'", "integer")),
    (_set_row3(2, "Validation"), ("row 3", "unknown Usage 'Validation'")),
    (lambda ls: ls[:3] + [ls[3].rsplit(",", 1)[0]] + ls[4:], ("row 3", "expected 3 fields", "found 2")),
], ids=["header", "empty", "2303-pixels", "non-integer-pixel", "pixel-256", "emotion-9", "emotion-text",
        "usage", "missing-field"])
def test_bad_csv(small_csv, tmp_path, edit, needles):
    path = _bad_csv(tmp_path, small_csv, edit)
    with pytest.raises(DataError) as e:
        load_dataset(path, cache_dir=tmp_path / "cache")
    _one_line_error(e, str(path), *needles)


def test_bad_paths_formats_and_folders(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset(tmp_path / "nope")
    _one_line_error(e, f"{tmp_path / 'nope'}: no such file or directory")
    with pytest.raises(DataError) as e:
        load_dataset(FER, "kaggle")
    _one_line_error(e, "'kaggle'", *FORMATS)
    with pytest.raises(DataError) as e:
        load_dataset(FER, group_regex=r"(\d+)")
    _one_line_error(e, "group_regex")
    text = tmp_path / "faces.txt"
    text.write_text("x")
    with pytest.raises(DataError) as e:
        load_dataset(text)
    _one_line_error(e, str(text))
    unknown = tmp_path / "unknown"
    _copy_images(unknown / "happy", "happy", 1)
    _copy_images(unknown / "dogs", "happy", 1)
    with pytest.raises(DataError) as e:
        load_dataset(unknown)
    _one_line_error(e, str(unknown / "dogs"), "unknown emotion class")
    empty = tmp_path / "empty"
    (empty / "happy").mkdir(parents=True)
    (empty / "happy" / "readme.md").write_text("no images")
    for path in (empty, tmp_path / "empty" / "happy"):
        with pytest.raises(DataError) as e:
            load_dataset(path)
        _one_line_error(e, str(path), "no images")
    kaggle = tmp_path / "kaggle"
    _copy_images(kaggle / "train" / "happy", "happy", 2)
    _copy_images(kaggle / "test" / "happy", "happy", 1, rename=lambda i: f"PublicTest_{i}.jpg")
    assert load_dataset(kaggle).name == "fer2013-folder"
    _copy_images(kaggle / "train" / "contempt", "happy", 1)
    with pytest.raises(DataError) as e:
        load_dataset(kaggle)
    _one_line_error(e, str(kaggle / "train" / "contempt"))
    with pytest.raises(DataError) as e:
        load_dataset(FER, classes="angry,bored")
    _one_line_error(e, "bored")


# ------------------------------------------------------------------------------------------ splits
def test_stratified_split_keeps_proportions(fer_folder):
    y = fer_folder.split("Training").labels
    train, val = stratified_split(y, 0.1, seed=3)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(y)
    assert abs(len(val) - round(0.1 * len(y))) <= 1 and (np.diff(val) > 0).all()
    full, part = np.bincount(y, minlength=7), np.bincount(y[val], minlength=7)
    assert (np.abs(part - full * 0.1) <= 1).all(), (part, full)
    assert (stratified_split(y, 0.1, seed=3)[1] == val).all()
    assert not (stratified_split(y, 0.1, seed=4)[1] == val).all()
    # a class with one sample stays in train
    tr, va = stratified_split([0] * 10 + [1] * 10 + [2], 0.2)
    assert 20 in tr and len(va) == 4
    with pytest.raises(DataError):
        stratified_split(y, 1.5)


def test_stratified_subset_and_kfold(fer_folder):
    y = fer_folder.split("Training").labels
    for n in (7, 100, 1000):
        idx = stratified_subset(y, n, seed=1)
        assert len(idx) == n and len(np.unique(idx)) == n and (np.diff(idx) > 0).all()
        counts = np.bincount(y[idx], minlength=7)
        assert (counts >= 1).all()
        assert (np.abs(counts - np.bincount(y, minlength=7) * n / len(y)) < 1.5).all() or n == 7
    assert len(stratified_subset(y, len(y) + 5)) == len(y)
    with pytest.raises(DataError):
        stratified_subset(y, 3)
    folds = kfold_splits(y, 5, seed=0)
    vals = np.concatenate([v for _, v in folds])
    assert sorted(vals.tolist()) == list(range(len(y)))
    for train, val in folds:
        assert len(np.intersect1d(train, val)) == 0
        assert (np.abs(np.bincount(y[val], minlength=7) - np.bincount(y, minlength=7) / 5) <= 1).all()
    with pytest.raises(DataError) as e:
        kfold_splits([0, 1, 0], k=4)
    _one_line_error(e, "4 folds")


def test_class_weights_and_subject_ids():
    w = class_weights([0, 0, 0, 1, 2, 2], 4)
    assert w.dtype == np.float32
    np.testing.assert_allclose(w, [6 / (3 * 3), 6 / (3 * 1), 6 / (3 * 2), 0])
    assert np.isclose(w[[0, 0, 0, 1, 2, 2]].mean(), 1)
    ids = subject_ids(["a/S010_004_00000019.png", "S5_1.png"], r"S\d+")
    assert ids.tolist() == ["S010", "S5"]
    with pytest.raises(DataError) as e:
        subject_ids(["x.png"], r"(S\d+")
    _one_line_error(e, "group regex")


# ------------------------------------------------------------------------------------------ FER+ votes on FER2013
MAP_CSV = DATA / "fer2013_ferplus_map.csv"


def _ferplus_votes(folder: str) -> dict[str, np.ndarray]:
    """The 10 vote counts of each FER+ image of a folder, read straight from its label.csv."""
    rows = csv.reader((FERPLUS / folder / "label.csv").read_text().splitlines())
    return {f"{folder}/{fields[0]}": np.array([int(v) for v in fields[2:]]) for fields in rows}


def test_mix_ferplus_votes_against_label_csv(fer_folder, tmp_path):
    """Every PrivateTest image in the map, of every class: its target is 0.25 x its FER2013 label + 0.75 x its
    FER+ vote distribution (single votes dropped, contempt left out); an image whose FER+ votes are
    mostly unknown / not a face, or have no emotion left, keeps its one-hot label."""
    from ferkit.data import mix_ferplus_votes

    test = fer_folder.split("PrivateTest")
    pairs = dict(line.split(",") for line in MAP_CSV.read_text().splitlines()[1:] if "/PrivateTest_" in line)
    mixed = mix_ferplus_votes(test, FERPLUS, MAP_CSV, weight=0.25)
    assert mixed.soft.shape == (len(test), 7) and mixed.soft.sum(1) == pytest.approx(np.ones(len(test)), abs=1e-5)
    assert np.array_equal(mixed.labels, test.labels)          # labels (validation, stratification) stay FER2013's
    assert "FER+ votes mixed into" in mixed.notes[-1]
    votes_of = _ferplus_votes("FER2013Test")
    row_of = {str(f): i for i, f in enumerate(test.ids)}
    order = [FERPLUS_CLASSES.index(c) for c in FER2013_CLASSES]   # contempt left out
    mixed_in, one_hot = [], 0
    for fer_file, fp_file in pairs.items():
        i = row_of[fer_file]
        v = np.where(votes_of[fp_file] == 1, 0, votes_of[fp_file]).astype(float)   # FER+ drops single votes
        emotion, other = v[:8], v[8:]                                              # other: unknown, NF
        label = np.eye(7)[test.labels[i]]
        if emotion.sum() == 0 or other.sum() > emotion.max() or emotion[order].sum() == 0:
            expected, one_hot = label, one_hot + 1                                 # no usable votes
        else:
            expected = 0.25 * label + 0.75 * emotion[order] / emotion[order].sum()
            mixed_in.append(test.labels[i])
        assert mixed.soft[i] == pytest.approx(expected, abs=1e-6), fer_file
    assert len(mixed_in) > 3000 and set(mixed_in) == set(range(7)) and one_hot > 0
    assert f"mixed into {len(mixed_in):,} of {len(test):,} targets" in mixed.notes[-1]
    assert np.array_equal(mix_ferplus_votes(test, FERPLUS, MAP_CSV, weight=1.0).soft, np.eye(7)[test.labels])
    bad = tmp_path / "map.csv"
    bad.write_text("a,b\nx,y\n")
    with pytest.raises(DataError, match=f"{bad}: line 1: expected the header"):
        mix_ferplus_votes(test, FERPLUS, bad)
    bad.write_text("fer2013_file,ferplus_file\nnot/there.jpg,FER2013Test/fer0033834.png\n")
    with pytest.raises(DataError, match="none of the .* images .* is in this map"):
        mix_ferplus_votes(test, FERPLUS, bad)
    with pytest.raises(DataError, match="ferplus_weight=1.5"):
        mix_ferplus_votes(test, FERPLUS, MAP_CSV, weight=1.5)


def test_decoded_faceset_holds_the_same_pixels(fer_folder):
    part = fer_folder.split("PublicTest").select(np.arange(50))
    dec = part.decoded()
    assert dec.images.shape == (50, 48, 48) and dec.paths is None
    for i in (0, 17, 49):
        assert np.array_equal(dec.load_image(i), part.load_image(i))


def test_batch_augment_identity_flip_and_reproducibility(fer_folder):
    """With every augmentation off, BatchAugment is eval_transform; a flip-only run mirrors each image
    or leaves it; the same generator seed gives the same batch."""
    import torch

    from ferkit.data.transforms import BatchAugment, eval_transform, model_size_transform
    from ferkit.train.config import AugmentConfig, InputConfig

    inp = InputConfig()
    part = fer_folder.split("PublicTest").select(np.arange(16))
    x = torch.stack([model_size_transform(inp)(part.load_image(i)) for i in range(16)])
    ref = torch.stack([eval_transform(inp)(part.load_image(i)) for i in range(16)])
    off = AugmentConfig(hflip=False, rotation=0, shift=0, zoom=0, brightness=0, contrast=0, batch=True)
    assert torch.allclose(BatchAugment(inp, off)(x), ref, atol=1e-5)
    flip = BatchAugment(inp, AugmentConfig(rotation=0, shift=0, zoom=0, brightness=0, contrast=0, batch=True))
    y = flip(x, torch.Generator().manual_seed(3))
    mirrored = [torch.allclose(y[i], ref[i].flip(-1), atol=1e-5) for i in range(16)]
    kept = [torch.allclose(y[i], ref[i], atol=1e-5) for i in range(16)]
    assert all(m or k for m, k in zip(mirrored, kept)) and 0 < sum(mirrored) < 16
    full = AugmentConfig(rotation=15, shift=0.12, zoom=0.2, gamma=0.2, blur=0.5, downscale=0.5, noise=0.02,
                         erasing=0.5, batch=True)
    aug = BatchAugment(inp, full)
    a, b = aug(x, torch.Generator().manual_seed(7)), aug(x, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and not torch.allclose(a, ref, atol=0.05) and a.shape == ref.shape
    assert not torch.equal(a, aug(x, torch.Generator().manual_seed(8)))


@pytest.mark.parametrize("cfg", [
    {"size": 48, "channels": 1, "mean": [0.5], "std": [0.5]},
    {"size": 64, "channels": 3, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    {"size": 224, "channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3},
])
def test_eval_transform_agrees_with_torchvisions_pipeline(fer_folder, cfg: dict) -> None:
    """eval_transform (numpy and Pillow, so inference needs neither PyTorch nor torchvision) gives
    what the training side's torchvision v2 steps (channels, Resize with antialias, ToDtype,
    Normalize) give: to the bit on faces already at the model's size, within one grey level where
    they are resized (FER2013 faces, a sample photo in colour and crops of odd sizes)."""
    import torch
    from torchvision.transforms import v2

    from ferkit.data.preprocess import eval_transform as numpy_transform
    from ferkit.data.transforms import _head, _tail, eval_transform
    from ferkit.infer import load_image

    ours, theirs, plain = eval_transform(cfg), v2.Compose(_head(cfg) + _tail(cfg)), numpy_transform(cfg)
    part = fer_folder.split("PublicTest").select(np.arange(8))
    photo = load_image(DATA / "samples" / "two_people.jpg")
    images = [part.load_image(i) for i in range(8)] + [photo, photo[17:260, 5:301], photo[:40, :31]]
    level = float(max(1 / 255 / s for s in cfg["std"]))
    resized = 0
    for img in images:
        a, b = ours(img), theirs(img)
        assert a.shape == (cfg["channels"], cfg["size"], cfg["size"]) and a.dtype == torch.float32
        assert np.array_equal(a.numpy(), plain(img))  # the tensor is the numpy transform's array
        if img.shape[:2] == (cfg["size"], cfg["size"]):
            assert torch.equal(a, b)
        else:
            resized += 1
            assert float((a - b).abs().max()) <= level + 1e-6
    assert resized >= 3


def test_inference_does_not_import_torchvision(tmp_path: Path) -> None:
    """A Recognizer predicting a photo never imports torchvision (2 s of every start-up) or Lightning."""
    code = ("import sys; from ferkit.infer import Recognizer; "
            f"r = Recognizer().predict({str(DATA / 'samples' / 'obama.jpg')!r}); assert len(r.faces) == 1; "
            "print(sorted(m for m in ('torchvision', 'lightning', 'timm', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_ci_fails_instead_of_skipping_without_the_data(tmp_path: Path) -> None:
    """With CI set, a run without ../shared/data fails at once (tests/conftest.py); without CI the
    same run skips the modules that need the data."""
    here = Path(__file__).resolve().parent
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(here / "test_data.py")]
    env = {**os.environ, "FERKIT_DATA": str(tmp_path / "nowhere")}
    ci = subprocess.run(cmd, env={**env, "CI": "1"}, cwd=here.parent, capture_output=True, text=True, timeout=300,
                        check=False)
    assert ci.returncode == 1 and "CI is set but the real data is missing" in ci.stdout + ci.stderr
    env.pop("CI", None)
    local = subprocess.run(cmd, env=env, cwd=here.parent, capture_output=True, text=True, timeout=300, check=False)
    assert local.returncode in (0, 5) and "1 skipped" in local.stdout  # 5: the whole module skipped, nothing ran
