"""Recognizer, load_image and `ferkit predict` on the real sample photos with the shipped model."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ferkit.cli import main
from ferkit.data.transforms import eval_transform
from ferkit.errors import FerkitError
from ferkit.infer import ImageReadError, Recognizer, load_image, to_rgb_array
from ferkit.types import FaceResult, ImageResult, prob_column, row_columns

from _paths import REPO, SAMPLES

TWO, MULTI, OBAMA, DOGS = (str(SAMPLES / f"{n}.jpg") for n in ("two_people", "multi_face", "obama", "dogs"))


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread) -> None:
    """Every test of this module runs on one torch thread (see conftest.one_thread)."""


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.jpg").write_text("this is not an image\n")
    data = Path(OBAMA).read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 3])
    return {"missing": d / "missing.jpg", "non-image": d / "notes.jpg", "truncated": d / "truncated.jpg"}


def _check_faces(result: ImageResult, classes: list[str]) -> None:
    for f in result.faces:
        assert isinstance(f, FaceResult)
        assert list(f.probabilities) == classes
        assert sum(f.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
        assert f.emotion == max(f.probabilities, key=f.probabilities.get)
        assert f.confidence == f.probabilities[f.emotion]
        x, y, w, h = f.box
        assert all(isinstance(v, int) for v in f.box)
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= result.width and y + h <= result.height


# --------------------------------------------------------------------------------------- Recognizer
@pytest.mark.parametrize("path,expected", [(TWO, 2), (OBAMA, 1), (MULTI, 4)])
def test_predict_sample_photos(rec: Recognizer, path: str, expected: int) -> None:
    result = rec.predict(path)
    assert result.path == path
    assert len(result) == expected if expected < 4 else len(result) >= expected
    _check_faces(result, rec.classes)


def test_no_face_is_an_empty_result(rec: Recognizer) -> None:
    result = rec.predict(DOGS)
    assert result.faces == [] and result.to_dict()["faces"] == []


def test_preprocessing_is_the_models_own(rec: Recognizer) -> None:
    """classify() == softmax(model(eval_transform(meta["input"])(crop)) / T + the shift to the model's own
    class prior): nothing restated; on faces uncertain enough that the temperature and the prior show."""
    img = load_image(MULTI)
    faces, points = rec.detect(img)
    crops = rec.crop(img, faces, points)
    with torch.inference_mode():
        logits = rec.model(torch.stack([eval_transform(rec.meta["input"])(c) for c in crops])).double().numpy()
    # the prior a balance b: the training frequencies to the power 1 - b, i.e. log prior shifted by -b log train
    temperature, balance = rec.meta["temperature"], float(rec.meta["prior"])
    shift = -balance * np.log(np.asarray(rec.meta["train_prior"]))
    got = rec.classify(crops)
    assert np.allclose(got, _softmax(logits / temperature + shift), atol=1e-6)
    for plain in (_softmax(logits / temperature), _softmax(logits + shift)):
        assert np.abs(got - plain).max() > 1e-2


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_batch_matches_single_and_skips_bad_files(rec: Recognizer, bad_files) -> None:
    errors: list[str] = []
    items = [TWO, str(bad_files["missing"]), MULTI, load_image(OBAMA), str(bad_files["truncated"])]
    small = Recognizer((rec.model, rec.meta), batch_size=3)  # forces batches that span images
    results = small.predict_batch(items, on_error=lambda item, e: errors.append(str(e)))
    assert [len(r) for r in results] == [2, len(rec.predict(MULTI)), 1]
    assert results[2].path is None
    for r, single in zip(results, (rec.predict(TWO), rec.predict(MULTI), rec.predict(OBAMA))):
        assert [f.box for f in r] == [f.box for f in single]
        assert np.allclose([list(f.probabilities.values()) for f in r],
                           [list(f.probabilities.values()) for f in single], atol=1e-5)
    assert len(errors) == 2 and "missing.jpg: no such file" in errors[0] and "truncated.jpg" in errors[1]
    with pytest.raises(ImageReadError, match="missing.jpg: no such file"):
        rec.predict_batch([TWO, bad_files["missing"]])


def test_align_and_landmarks(rec: Recognizer) -> None:
    """align=True rotates each crop to level the eyes (the crops change); 68 landmarks per face, on it."""
    aligned = Recognizer((rec.model, rec.meta), align=True, landmarks=68)
    r = aligned.predict(TWO)
    assert len(r) == 2 and all(f.landmarks.shape == (68, 2) for f in r)
    _check_faces(r, rec.classes)
    for f in r:     # the jaw line runs a little outside a detector's box: within a quarter of its side
        x, y, w, h = f.box
        assert ((f.landmarks >= (x - w / 4, y - h / 4)) & (f.landmarks <= (x + 1.25 * w, y + 1.25 * h))).all(), f.box
    plain = Recognizer((rec.model, rec.meta), landmarks=68).prepare(TWO).crops
    assert any(a.shape != b.shape or np.abs(a.astype(int) - b).mean() > 5
               for a, b in zip(aligned.prepare(TWO).crops, plain, strict=True))
    d = r.to_dict()["faces"][0]
    assert len(d["landmarks"]) == 68 and "detection_score" in d
    assert Recognizer((rec.model, rec.meta), detector="haar").predict(OBAMA).faces[0].landmarks is None


# --------------------------------------------------------------------------------------- images in
def test_load_image_contract(tmp_path: Path) -> None:
    img = load_image(OBAMA)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.flags.c_contiguous
    # EXIF orientation 6 ("rotate 90 CW to display"): a 40x20 stored image is shown 20 wide, 40 high
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :10] = 255  # white stripe on the stored image's left
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    upright = load_image(tmp_path / "rotated.jpg")
    assert upright.shape == (40, 20, 3) and upright[:10].mean() > 200 and upright[-10:].mean() < 50
    Image.fromarray(stored[:, :, 0]).save(tmp_path / "gray.png")
    Image.fromarray(np.dstack([stored, np.full((20, 40), 128, np.uint8)])).save(tmp_path / "rgba.png")
    assert (load_image(tmp_path / "gray.png").shape == (20, 40, 3)
            and load_image(tmp_path / "rgba.png").shape == (20, 40, 3))
    assert to_rgb_array(stored[:, :, 0]).shape == (20, 40, 3)
    assert to_rgb_array(Image.fromarray(stored)).shape == (20, 40, 3)
    with pytest.raises(ImageReadError, match="uint8"):
        to_rgb_array(stored.astype(np.float32))


@pytest.mark.parametrize("kind,message", [("missing", "no such file"), ("non-image", "not an image file"),
                                          ("truncated", "truncated or corrupt image")])
def test_load_image_errors(bad_files, kind: str, message: str) -> None:
    with pytest.raises(ImageReadError) as e:
        load_image(bad_files[kind])
    text = str(e.value)
    assert text.startswith(str(bad_files[kind])) and message in text and "\n" not in text


# --------------------------------------------------------------------------------------- CLI
def test_cli_json_contract(capsys) -> None:
    assert main(["predict", TWO, DOGS, "--format", "json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)  # stdout is exactly the JSON list
    assert [d["path"] for d in data] == [TWO, DOGS]
    assert len(data[0]["faces"]) == 2 and data[1]["faces"] == []
    for face in data[0]["faces"]:
        assert len(face["box"]) == 4 and all(isinstance(v, int) for v in face["box"])
        assert isinstance(face["emotion"], str) and isinstance(face["confidence"], float)
        assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert f"{DOGS}: no face found" in err and "2 images, 2 faces" in err


def test_cli_ferplus_model_lists_8_probabilities(capsys) -> None:
    """Done-means of issue 20: `ferkit predict --model ferplus two_people.jpg --format json`."""
    assert main(["predict", "--model", "ferplus", TWO, "--format", "json"]) == 0
    faces = json.loads(capsys.readouterr().out)[0]["faces"]
    assert len(faces) == 2
    for face in faces:
        assert list(face["probabilities"]) == ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear",
                                               "contempt"]
        assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
        assert face["emotion"] == max(face["probabilities"], key=face["probabilities"].get)


def test_prior_uniform_shifts_probabilities_by_bayes_rule(capsys) -> None:
    """--prior uniform divides each class's probability by its training frequency and renormalises; a
    balance b divides it by the frequency to the power b (1 = uniform, 0.5 = the square root)."""
    from ferkit.infer import prior_shift
    from ferkit.models import load_model

    out = {}
    for prior in ("train", "uniform", "angry=1,disgust=1,fear=1,happy=1,sad=1,surprise=1,neutral=1", "1", "0.5"):
        assert main(["predict", TWO, "--format", "json", "--prior", prior]) == 0
        out[prior] = [np.array(list(f["probabilities"].values()))
                      for f in json.loads(capsys.readouterr().out)[0]["faces"]]
    _, meta = load_model("default")
    train_prior = np.array(meta["train_prior"])
    for p_train, p_uniform, p_explicit, p_one, p_half in zip(*out.values()):
        expected = p_train / train_prior
        assert p_uniform == pytest.approx(expected / expected.sum(), abs=1e-6)
        assert p_explicit == pytest.approx(p_uniform, abs=1e-9)
        assert p_one == pytest.approx(p_uniform, abs=1e-6)
        half = p_train / np.sqrt(train_prior)
        assert p_half == pytest.approx(half / half.sum(), abs=1e-6)
    assert prior_shift(meta, "train") is None and prior_shift(meta, 0) is None
    assert main(["predict", TWO, "--prior", "1.5"]) == 2
    assert "prior 1.5: a balance must be from 0 (train) to 1 (uniform)" in capsys.readouterr().err
    with pytest.raises(FerkitError, match="7 classes"):
        prior_shift(meta, [1, 2, 3])
    with pytest.raises(FerkitError, match="unknown class joy"):
        prior_shift(meta, {"joy": 1.0})
    with pytest.raises(FerkitError, match="no usable train_prior"):
        prior_shift({**meta, "train_prior": None}, "uniform")
    assert main(["predict", TWO, "--prior", "happy=x"]) == 2
    assert "prior 'happy=x': 'x' is not a number" in capsys.readouterr().err


def test_a_model_predicts_under_its_own_prior_unless_told(capsys) -> None:
    """Without --prior, the prior its JSON names: the shipped default's was chosen on its validation
    splits (scripts/choose_prior.py); --prior train gives the model as trained."""
    from ferkit.infer import Recognizer
    from ferkit.models import resolve

    own = resolve("default").prior
    assert own not in ("train", 0), "the shipped default predicts under a chosen prior"
    assert Recognizer("default", detector="blazeface").prior == own
    out = []
    for args in ([], ["--prior", str(own)], ["--prior", "train"]):
        assert main(["predict", TWO, "--format", "json", *args]) == 0
        out.append(np.array([list(f["probabilities"].values())
                             for f in json.loads(capsys.readouterr().out)[0]["faces"]]))
    assert out[0] == pytest.approx(out[1], abs=1e-9)
    assert not np.allclose(out[0], out[2], atol=1e-3)


@pytest.mark.parametrize("detector", ["blazeface", "dlib-hog", "haar"])
def test_cli_min_score_drops_faces_below_the_detector_score(capsys, detector: str) -> None:
    """--min-score keeps the faces whose `detection_score` (shown in the JSON) reaches it."""
    assert main(["predict", MULTI, "--format", "json", "--detector", detector]) == 0
    scores = sorted(f["detection_score"] for f in json.loads(capsys.readouterr().out)[0]["faces"])
    assert len(scores) == 6
    cut = (scores[2] + scores[3]) / 2  # between the third and fourth score
    assert main(["predict", MULTI, "--format", "json", "--detector", detector, "--min-score", str(cut)]) == 0
    kept = [f["detection_score"] for f in json.loads(capsys.readouterr().out)[0]["faces"]]
    assert sorted(kept) == pytest.approx(scores[3:], abs=1e-6)


def test_cli_default_sample_csv_and_detector(capsys, monkeypatch) -> None:
    monkeypatch.chdir(REPO)  # the default input is ../shared/data/samples/two_people.jpg from here
    assert main(["predict", "--format", "csv", "--detector", "haar"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 2 and rows[0]["path"] == "../shared/data/samples/two_people.jpg"
    haar = Recognizer(detector="haar").predict("../shared/data/samples/two_people.jpg")
    assert [[int(r[k]) for k in "xywh"] for r in rows] == [list(f.box) for f in haar]     # haar's own boxes
    assert [list(f.box) for f in haar] != [list(f.box) for f in Recognizer().predict(TWO)]
    classes = Recognizer().classes
    for r in rows:
        assert sum(float(r[f"prob_{c}"]) for c in classes) == pytest.approx(1.0, abs=1e-4)
        assert r["emotion"] in classes and int(r["w"]) > 0


def test_cli_no_face_exit_0(capfd) -> None:
    assert main(["predict", DOGS]) == 0
    out, err = capfd.readouterr()
    assert "no face" in out and f"{DOGS}: no face found" in err


@pytest.mark.parametrize("kind", ["missing", "non-image", "truncated"])
def test_cli_bad_input_one_line(capfd, bad_files, kind: str) -> None:
    assert main(["predict", str(bad_files[kind]), "--format", "json"]) == 2
    out, err = capfd.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"ferkit: error: {bad_files[kind]}")


def test_cli_folder_glob_output_annotate_and_partial_failure(tmp_path: Path, capfd, bad_files) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("obama.jpg", "dogs.jpg"):
        (folder / name).write_bytes((SAMPLES / name).read_bytes())
    (folder / "broken.jpg").write_bytes(bad_files["truncated"].read_bytes())
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    out_file = tmp_path / "out" / "result.json"
    code = main(["predict", str(folder), str(tmp_path / "phot*/obama.jpg"), "--format", "json",
                 "--output", str(out_file), "--annotate", str(folder)])
    out, err = capfd.readouterr()
    assert code == 0 and out == ""
    data = json.loads(out_file.read_text())
    assert [Path(d["path"]).name for d in data] == ["dogs.jpg", "obama.jpg"]  # sorted, the glob's duplicate dropped
    assert [len(d["faces"]) for d in data] == [0, 1]
    broken = [line for line in err.splitlines() if "broken.jpg" in line]
    assert len(broken) == 1 and broken[0].startswith(f"{folder / 'broken.jpg'}: truncated or corrupt image")
    assert "2 images, 1 face, 1 failed" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name in before} == before  # inputs untouched
    assert {p.name for p in folder.iterdir()} - set(before) == {"obama_annotated.jpg", "dogs_annotated.jpg"}
    assert not [p for p in out_file.parent.iterdir() if p.name != "result.json"]  # no temporary left over
    annotated = load_image(folder / "obama_annotated.jpg")
    assert annotated.shape == load_image(folder / "obama.jpg").shape
    assert main(["predict", str(folder), "--format", "json", "--strict"]) == 1
    capfd.readouterr()


def test_cli_table(capsys) -> None:
    assert main(["predict", OBAMA]) == 0
    out = capsys.readouterr().out
    assert "obama.jpg" in out and "emotion" in out and "conf" in out


@pytest.mark.parametrize("detector", ["dlib-hog", "blazeface"])
def test_boxes_found_on_the_working_copy_map_back_within_2_px(detector: str) -> None:
    """Each VOC photo doubled (every pixel repeated 2x2) with a working size of the photo's own
    pixel count: the copy the detector sees is the original photo, so the boxes mapped back must be
    the original photo's boxes doubled, within 2 px; the default working size is 2 megapixels."""
    import cv2

    photos = sorted((SAMPLES / "voc_faces").glob("*.jpg"))
    assert len(photos) == 9
    full = Recognizer("default", detector, detect_max_pixels=None)
    assert Recognizer("default", detector).detect_max_pixels == 2_000_000 and full.detect_max_pixels is None
    n = 0
    for p in photos:
        img = load_image(p)
        h, w = img.shape[:2]
        big = cv2.resize(img, (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST)
        expected, _ = full.detect(img)
        found, _ = Recognizer("default", detector, detect_max_pixels=h * w).detect(big)
        assert len(found) == len(expected), p.name
        np.testing.assert_allclose(found.xyxy, expected.xyxy * 2, atol=2, err_msg=p.name)
        n += len(found)
    assert n >= 40


def test_a_large_jpeg_file_is_decoded_reduced_and_boxed_in_its_own_pixels(tmp_path: Path) -> None:
    """A 20-megapixel JPEG given as a path is decoded at half size (the largest DCT scale that keeps
    the 2 MP working size); its face is boxed in the file's pixels, where the same photo given as
    a full-size array has it (dlib's boxes move by a pyramid step between the two copies)."""
    small = Image.open(OBAMA).convert("RGB")
    small = small.resize((400, round(400 * small.height / small.width)))
    big = small.resize((small.width * 10, small.height * 10), Image.BICUBIC)
    path = tmp_path / "big.jpg"
    big.save(path, quality=90)
    rec = Recognizer()
    assert rec.prepare(path, keep_image=True).image.shape == (big.height // 2, big.width // 2, 3)
    rec.detector = _Seen(rec.detector)
    from_file, from_array = rec.predict(path), rec.predict(np.asarray(big))
    # the detector saw copies of at most the working size (2 MP), the classifier's crops came from the image
    assert len(rec.detector.sizes) == 2 and all(h * w <= 2_000_000 for h, w in rec.detector.sizes)
    assert (from_file.width, from_file.height) == big.size == (from_array.width, from_array.height)
    assert len(from_file.faces) == len(from_array.faces) == 1
    from ferkit.detect import iou

    a, b = (np.asarray(r.faces[0].box, np.float64) for r in (from_file, from_array))
    assert iou(a, b)[0, 0] > 0.6 and b[2] > 800, (a, b)


class _Seen:
    """A detector that records the size of each image it is given."""

    def __init__(self, detector) -> None:
        self.detector, self.sizes = detector, []

    def __getattr__(self, name: str):
        return getattr(self.detector, name)

    def detect(self, image: np.ndarray):
        self.sizes.append(image.shape[:2])
        return self.detector.detect(image)


def test_cli_bad_working_size_is_one_line(capfd) -> None:
    assert main(["predict", TWO, "--max-detect-megapixels", "-1"]) == 2
    out, err = capfd.readouterr()
    assert out == "" and err.count("\n") == 1 and "max_detect_megapixels: must be >= 0, not -1.0" in err


def test_python_facade_is_what_the_cli_prints(tmp_path: Path, rec, capsys) -> None:
    """``ferkit.predict`` (the facade the CLI calls): folders expanded, missing files and unreadable
    images in ``failures`` (the rest goes on), results as the CLI's JSON and CSV, and as a DataFrame."""
    import ferkit

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("two_people", "obama"):
        (folder / f"{name}.jpg").write_bytes((SAMPLES / f"{name}.jpg").read_bytes())
    (folder / "broken.jpg").write_bytes((SAMPLES / "obama.jpg").read_bytes()[:300])
    seen: list[str] = []
    results = ferkit.predict([folder, tmp_path / "missing.jpg"], recognizer=rec,
                             on_result=lambda r: seen.append(r.path))
    assert [Path(r.path).name for r in results] == ["obama.jpg", "two_people.jpg"] == [Path(p).name for p in seen]
    assert results.n_faces == 3 and results.classes == rec.classes
    assert [f.split(":")[0] for f in results.failures] == [str(tmp_path / "missing.jpg"), str(folder / "broken.jpg")]

    assert main(["predict", str(folder / "obama.jpg"), str(folder / "two_people.jpg"), "--format", "json",
                 "--backend", "torch"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(results.to_json())
    rows = list(csv.DictReader(io.StringIO(results.to_csv())))
    assert len(rows) == 3 and rows[0]["emotion"] == results[0].faces[0].emotion
    df = results.to_pandas()
    assert list(df.columns) == row_columns(rec.classes)  # ferkit's one row naming (docs/rows.md)
    assert len(df) == 3 and abs(df[[prob_column(c) for c in rec.classes]].sum(axis=1) - 1).max() < 1e-6

    with pytest.raises(FerkitError, match="no such file"):
        ferkit.predict(tmp_path / "missing.jpg")


def test_a_garbage_exif_block_is_one_warning_line(tmp_path: Path) -> None:
    """A photo with a 60 KB garbage EXIF block (Pillow warns "Corrupt EXIF data" twice, two lines each)
    is read, and `ferkit predict` says so in one line naming the file."""
    import subprocess
    import sys

    garbage = np.random.default_rng(2).integers(0, 256, 60_000, np.uint8).tobytes()
    photo = tmp_path / "exif.jpg"
    Image.open(OBAMA).save(photo, quality=90, exif=b"Exif\0\0MM\0*\0\0\0\x08" + garbage)
    with pytest.warns(UserWarning, match="Corrupt EXIF"), Image.open(photo) as im:
        im.getexif().get_ifd(0x8769)  # the file does make Pillow warn
    r = subprocess.run([sys.executable, "-m", "ferkit", "predict", str(photo), "--format", "json"], capture_output=True,
                       text=True, timeout=300, cwd=REPO, check=False)
    assert r.returncode == 0 and len(json.loads(r.stdout)[0]["faces"]) == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert "UserWarning" not in r.stderr and not any(line[:1].isspace() for line in lines), r.stderr
    named = [line for line in lines if str(photo) in line]
    assert len(named) == 1 and named[0].startswith(f"WARNING ferkit.images: {photo}: read despite a warning: "
                                                   "Corrupt EXIF data. Expecting to read "), r.stderr


def test_readme_shows_what_the_main_job_prints(capsys, monkeypatch) -> None:
    """The set-up section's example output is what `ferkit predict` prints on the sample photo now (the
    default model under its own class prior), not a copy that went stale."""
    sample = REPO.parent / "shared" / "data" / "samples" / "two_people.jpg"
    if not sample.is_file():
        pytest.skip(f"the README's sample photo is not at {sample}")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    command = "ferkit predict ../shared/data/samples/two_people.jpg\n```\n\n```\n"
    assert command in readme
    shown = readme.split(command, 1)[1].split("```", 1)[0]
    monkeypatch.chdir(REPO)
    assert main(["predict", "../shared/data/samples/two_people.jpg"]) == 0
    printed = capsys.readouterr()
    assert shown == printed.out + printed.err
