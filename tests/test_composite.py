"""Uncropped photos from FER2013 faces (ferkit.data.composite), on the real FER2013 test faces and
the real sample photos in ../shared/data (no mocks)."""
from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from ferkit.data import load_dataset
from ferkit.data.composite import (
    BACKGROUNDS,
    build_composites,
    compose,
    load_background,
)
from ferkit.detect import detect_faces, iou
from ferkit.errors import DataError
from ferkit.evaluate import load_eval_data
from ferkit.infer import load_image

from _paths import DATA, SAMPLES

pytestmark = pytest.mark.skipif(not (DATA / "fer2013").is_dir(),
                                reason=f"FER2013 not found in {DATA} (set FERKIT_DATA)")


@pytest.fixture(scope="module")
def faces():
    return load_eval_data(DATA / "fer2013", "fer2013-folder", "PublicTest", limit=20)[0]


def _inner(side: int, feather: float) -> slice:
    """The part of a pasted crop outside the blended band."""
    band = int(np.ceil(feather * side))
    return slice(band, side - band)


def test_compose_pastes_the_enlarged_face_and_blends_only_its_edge(faces):
    face = faces.load_image(0)
    bg = load_background(BACKGROUNDS[0], SAMPLES)
    x, y, side = 200, 150, 160
    out = compose(face, bg, (x, y, side, side), feather=0.1)
    big = cv2.resize(np.repeat(face[:, :, None], 3, axis=2), (side, side), interpolation=cv2.INTER_CUBIC)
    inner = _inner(side, 0.1)
    pasted = out[y : y + side, x : x + side]
    assert np.array_equal(pasted[inner, inner], big[inner, inner])
    # the outermost pixels are a blend: between the background and the face, not either of them
    edge, under = pasted[0].astype(int), bg[y, x : x + side].astype(int)
    assert not np.array_equal(edge, big[0]) and not np.array_equal(edge, under)
    assert np.all(edge >= np.minimum(under, big[0].astype(int)) - 1) and np.all(edge <= np.maximum(under, big[0]) + 1)
    outside = np.ones(bg.shape[:2], bool)
    outside[y : y + side, x : x + side] = False
    assert np.array_equal(out[outside], bg[outside])
    with pytest.raises(DataError, match="does not fit"):
        compose(face, bg, (bg.shape[1] - 10, 0, 96, 96))


def test_build_composites_puts_each_face_where_its_box_says(faces, tmp_path):
    made = build_composites(faces, tmp_path / "photos", scales=(96, 144), canvas=320, samples_dir=SAMPLES, ext=".png")
    assert len(made) == len(faces)
    for i, c in enumerate(made):
        assert c.path.parent == tmp_path / "photos" / c.label and c.label == faces.classes[faces.labels[i]]
        x, y, w, h = c.box
        assert w == h == (96, 144)[i % 2]
        photo = load_image(c.path)
        assert max(photo.shape[:2]) >= 320 and x + w <= photo.shape[1] and y + h <= photo.shape[0]
        big = cv2.resize(np.repeat(faces.load_image(i)[:, :, None], 3, axis=2), (w, w), interpolation=cv2.INTER_CUBIC)
        inner = _inner(w, 0.08)
        assert np.array_equal(photo[y : y + h, x : x + w][inner, inner], big[inner, inner]), c.path
    with open(tmp_path / "photos" / "boxes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["path"], r["label"], int(r["x"]), int(r["y"]), int(r["w"]), int(r["h"]), r["source"]) for r in rows] == [
        (str(c.path.relative_to(tmp_path / "photos")), c.label, *c.box, c.source) for c in made]
    # the folder is a class-per-folder data set with the faces' labels
    back = load_dataset(tmp_path / "photos", "folder")
    assert back.class_counts() == {c: n for c, n in faces.class_counts().items() if n}


def test_build_composites_is_seeded_and_refuses_a_used_folder(faces, tmp_path):
    sub = faces.select(np.arange(6))
    a = build_composites(sub, tmp_path / "a", seed=3, samples_dir=SAMPLES)
    b = build_composites(sub, tmp_path / "b", seed=3, samples_dir=SAMPLES)
    c = build_composites(sub, tmp_path / "c", seed=4, samples_dir=SAMPLES)
    assert [x.box for x in a] == [x.box for x in b] and [x.background for x in a] == [x.background for x in b]
    assert all(x.path.read_bytes() == y.path.read_bytes() for x, y in zip(a, b))
    assert [x.box for x in a] != [x.box for x in c]
    with pytest.raises(DataError, match="not an empty folder"):
        build_composites(sub, tmp_path / "a", samples_dir=SAMPLES)
    with pytest.raises(DataError, match="nowhere/dogs.jpg"):
        build_composites(sub, tmp_path / "d", samples_dir=tmp_path / "nowhere")


def test_backgrounds_have_no_face_and_the_pasted_faces_are_found(faces, tmp_path):
    for bg in BACKGROUNDS:
        assert len(detect_faces(load_background(bg, SAMPLES), "dlib-hog")) == 0, bg
    made = build_composites(faces, tmp_path / "photos", canvas=400, samples_dir=SAMPLES)
    found = 0
    for c in made:
        boxes = detect_faces(load_image(c.path), "dlib-hog").boxes
        found += bool(len(boxes)) and iou(boxes, [c.box]).max() >= 0.3
    assert found >= 0.7 * len(made), f"dlib-hog found {found} of {len(made)} pasted faces"
