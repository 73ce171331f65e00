"""``ferkit evaluate --detect``: uncropped photos through a face detector, classified as ``ferkit predict`` does.

The uncropped set is built in a temporary folder by ``ferkit.data.composite.build_composites``:
real FER2013 PublicTest faces, enlarged to 160-224 px and placed into the real photo
``../shared/data/samples/dogs.jpg`` (which has no human face). Two photos without any face (the
dogs, and a plain background) are filed under ``angry``, the model's class 0, so that an
evaluation which let a face-less image fall onto class 0 would score them as right. Expected
values come from ``Recognizer.predict`` (the ``ferkit predict`` API) and from crop classification
of the same faces, never from the code under test.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ferkit.data.composite import Background, build_composites, compose
from ferkit.detect import DEFAULT_DETECTOR, DetectorError
from ferkit.errors import ConfigError
from ferkit.evaluate import evaluate, load_eval_data, run_evaluation
from ferkit.infer import load_image

from _paths import FER, SAMPLES, require

require(FER)
require(SAMPLES / "dogs.jpg")

N_FACES = 28                      # a stratified PublicTest subset (seed 0)
NO_FACE = ("angry/zz_dogs.jpg", "angry/zz_plain.png")
N_BOOT = 200


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread) -> None:
    """Every test of this module runs on one torch thread (see conftest.one_thread)."""


def _ferkit(*args: object) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "ferkit", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env, check=False)


def _predictions(folder: Path) -> dict[str, dict[str, str]]:
    with (folder / "predictions.csv").open(newline="") as f:
        return {r["file"]: r for r in csv.DictReader(f)}


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def faces():
    return load_eval_data(FER, "fer2013-folder", "PublicTest", limit=N_FACES)[0]


@pytest.fixture(scope="module")
def photos(faces, tmp_path_factory):
    """(root, composites): one photo per face, plus the two face-less photos of NO_FACE."""
    root = tmp_path_factory.mktemp("uncropped") / "photos"
    made = build_composites(faces, root, scales=(160, 192, 224), canvas=480, backgrounds=(Background("dogs.jpg"),),
                            samples_dir=SAMPLES)
    dogs = load_image(SAMPLES / "dogs.jpg")
    Image.fromarray(cv2.resize(dogs, (480, 488), interpolation=cv2.INTER_AREA)).save(root / NO_FACE[0], quality=95)
    plain = np.full((360, 480, 3), (118, 124, 131), np.uint8)          # an empty wall
    Image.fromarray(plain).save(root / NO_FACE[1])
    return root, made


@pytest.fixture(scope="module")
def detected(photos, tmp_path_factory):
    root, _ = photos
    out = tmp_path_factory.mktemp("ev") / "detect"
    m = evaluate("default", root, "folder", detect=DEFAULT_DETECTOR, out=out, device="cpu", n_boot=N_BOOT, grid=16)
    return m, out


# ------------------------------------------------------------------------------------------ tests
def test_detect_agrees_with_crop_classification_and_lists_faceless_images(photos, detected):
    root, made = photos
    m, out = detected
    assert m["detector"] == DEFAULT_DETECTOR and m["n_images"] == N_FACES + len(NO_FACE)
    assert set(NO_FACE) <= set(m["no_face_files"]) and m["n_no_face"] == len(m["no_face_files"])
    n_found = m["n_images"] - m["n_no_face"]
    assert n_found >= 0.5 * N_FACES, m["no_face_files"]        # measured: 18 of 28 (46 of 56 in a larger run)

    crops = run_evaluation("default", FER, "fer2013-folder", "PublicTest", limit=N_FACES, device="cpu", n_boot=0)
    crop_pred = {str(i): crops.classes[k] for i, k in zip(crops.faces.ids, crops.y_pred)}
    rows = _predictions(out)
    assert len(rows) == m["n_images"]
    compared = agree = 0
    for c in made:
        row = rows[str(c.path.relative_to(root))]
        assert row["true"] == c.label
        if row["predicted"]:
            compared += 1
            agree += row["predicted"] == crop_pred[c.source]
    assert compared == n_found and agree >= 0.6 * compared, (agree, compared)     # measured: 15 of 18

    # an image without a face is wrong: no prediction, and it counts against accuracy and its class's recall
    for name in m["no_face_files"]:
        assert rows[name]["predicted"] == rows[name]["confidence"] == ""
    hits = sum(r["predicted"] == r["true"] for r in rows.values())
    assert m["accuracy"] == pytest.approx(hits / m["n_images"])
    angry = [r for r in rows.values() if r["true"] == "angry"]
    assert m["per_class"]["angry"]["support"] == len(angry) == sum(c.label == "angry" for c in made) + len(NO_FACE)
    assert m["per_class"]["angry"]["recall"] == pytest.approx(
        sum(r["predicted"] == "angry" for r in angry) / len(angry))
    assert np.array(m["confusion"]).sum() == n_found
    lo, hi = m["ci95"]["accuracy"]
    assert lo <= m["accuracy"] <= hi and m["ci95"]["n_boot"] == N_BOOT


def test_detect_classifies_as_predict_does(photos, detected, rec):
    """The probabilities of each found face are those `ferkit predict` gives for the largest face."""
    root, made = photos
    m, out = detected
    rows = _predictions(out)
    found = [c for c in made if rows[str(c.path.relative_to(root))]["predicted"]][:6]
    assert rec.detector.name == m["detector"]
    for c in found:
        result = rec.predict(c.path)
        face = max(result.faces, key=lambda f: f.box[2] * f.box[3])
        row = rows[str(c.path.relative_to(root))]
        assert row["predicted"] == face.emotion
        for cls, p in face.probabilities.items():
            assert float(row[f"p_{cls}"]) == pytest.approx(p, abs=2e-6), (c.path.name, cls)
    for name in NO_FACE:
        assert rec.predict(root / name).faces == []


def test_detect_report_lists_faceless_images(detected):
    m, out = detected
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(m))
    assert any(f"detect-then-classify with {DEFAULT_DETECTOR}" in n for n in on_disk["dataset"]["notes"])
    report = (out / "report.md").read_text()
    assert "## Images without a face" in report
    for name in m["no_face_files"]:
        assert f"- `{name}`" in report
    lo, hi = m["ci95"]["accuracy"]
    assert f"| accuracy | {m['accuracy']:.4f} [{lo:.3f}, {hi:.3f}] |" in report
    with Image.open(out / "prediction_grid.png") as im:
        assert min(im.size) > 300


@pytest.fixture(scope="module")
def mixed(photos, faces, detected, tmp_path_factory):
    """A folder with a non-image, a truncated JPEG, a photo without a face, a 256x256 TIFF portrait,
    a 4000x3000 JPEG with one face, two_people.jpg (two faces) and three of the composite photos (in
    which a face was found)."""
    root, made = photos
    no_face = set(detected[0]["no_face_files"])
    mix = tmp_path_factory.mktemp("mixed") / "photos"
    for c in [c for c in made if str(c.path.relative_to(root)) not in no_face][:3]:
        (mix / c.label).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(c.path, mix / c.label / c.path.name)
    for folder in ("happy", "sad", "angry", "neutral", "surprise"):
        (mix / folder).mkdir(parents=True, exist_ok=True)
    (mix / "happy" / "notes.jpg").write_text("minutes of the meeting, not a photo\n")
    data = made[-1].path.read_bytes()
    (mix / "sad" / "broken.jpg").write_bytes(data[: len(data) * 6 // 10])      # a real JPEG cut short
    shutil.copyfile(SAMPLES / "dogs.jpg", mix / "angry" / "dogs.jpg")
    shutil.copyfile(SAMPLES / "two_people.jpg", mix / "happy" / "two_people.jpg")  # the largest face counts
    portrait = load_image(SAMPLES / "obama.jpg")[:910, :910]
    Image.fromarray(cv2.resize(portrait, (256, 256), interpolation=cv2.INTER_AREA)).save(
        mix / "neutral" / "portrait.tif")
    wide = cv2.resize(load_image(SAMPLES / "dogs.jpg"), (4000, 3000), interpolation=cv2.INTER_CUBIC)
    Image.fromarray(compose(faces.load_image(0), wide, (1500, 900, 1000, 1000))).save(
        mix / "surprise" / "huge.jpg", quality=90)
    return mix


def _check_mixed(m: dict, mix: Path) -> None:
    assert m["n_images"] == 7 and m["detector"] == DEFAULT_DETECTOR
    assert m["no_face_files"] == ["angry/dogs.jpg"] and m["n_no_face"] == 1
    assert any(n.startswith("2 files could not be read and were skipped") for n in m["dataset"]["notes"])
    assert any("had more than one face; the largest was classified" in n for n in m["dataset"]["notes"])


def test_unreadable_files_warn_and_the_rest_is_scored(mixed, rec, caplog):
    with caplog.at_level(logging.WARNING, logger="ferkit.evaluate"):
        ev = run_evaluation("default", mixed, "folder", detect=DEFAULT_DETECTOR, device="cpu", n_boot=N_BOOT)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2 and all("\n" not in w for w in warnings), warnings
    assert any(str(mixed / "happy" / "notes.jpg") in w and "not an image" in w for w in warnings), warnings
    assert any(str(mixed / "sad" / "broken.jpg") in w and "truncated" in w for w in warnings), warnings
    _check_mixed(ev.metrics, mixed)
    ids = [str(i) for i in ev.faces.ids]
    assert "neutral/portrait.tif" in ids and "surprise/huge.jpg" in ids
    # the 4000x3000 photo (its pasted face) and two_people.jpg (the larger of two faces): the largest face
    # is classified, as `ferkit predict` finds it, its probabilities renormalised over the folder's classes
    for name, faces in (("surprise/huge.jpg", 1), ("happy/two_people.jpg", 2)):
        row = ids.index(name)
        result = rec.predict(mixed / name)
        assert len(result.faces) >= faces
        by_size = sorted(result.faces, key=lambda f: f.box[2] * f.box[3], reverse=True)
        if name == "surprise/huge.jpg":
            assert (result.width, result.height) == (4000, 3000) and by_size[0].box[2] > 600
        expected = [np.array([f.probabilities[c] for c in ev.classes]) for f in by_size]
        assert ev.found[row] and np.allclose(ev.probs[row], expected[0] / expected[0].sum(), atol=1e-9), name
        assert all(not np.allclose(ev.probs[row], e / e.sum(), atol=1e-3) for e in expected[1:]), name
    assert ev.found[ids.index("neutral/portrait.tif")]


def test_cli_detect_end_to_end(mixed, tmp_path):
    out = tmp_path / "out"
    r = _ferkit("evaluate", "--model", "default", "--data", mixed, "--format", "folder", "--detect",
                "--detector", DEFAULT_DETECTOR, "--n-boot", N_BOOT, "--out", out, "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    _check_mixed(m, mixed)
    assert json.loads((out / "metrics.json").read_text()) == m
    warned = [line for line in r.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warned) == 2, r.stderr
    assert any("notes.jpg" in w for w in warned) and any("broken.jpg" in w for w in warned)
    rows = _predictions(out)
    assert set(rows) == {"angry/dogs.jpg", "neutral/portrait.tif", "surprise/huge.jpg", "happy/two_people.jpg",
                         *(f"{p.parent.name}/{p.name}" for p in mixed.glob("*/0*_PublicTest_*.jpg"))}
    assert "`angry/dogs.jpg`" in (out / "report.md").read_text()


def test_detect_bad_options_are_one_line_errors(photos, tmp_path):
    root, _ = photos
    r = _ferkit("evaluate", "--data", root, "--format", "folder", "--detector", "haar", "--out", tmp_path / "a")
    assert r.returncode == 2 and "--detector haar needs --detect" in r.stderr and len(r.stderr.splitlines()) == 1
    with pytest.raises(ConfigError, match="--tta flip applies to crop classification"):
        evaluate("default", root, "folder", detect=DEFAULT_DETECTOR, tta="flip")
    with pytest.raises(DetectorError, match="unknown face detector 'retina'"):
        evaluate("default", root, "folder", detect="retina")
    assert not (tmp_path / "a").exists()
