"""ONNX export and the ONNX Runtime backend: parity with PyTorch on real faces, loading only (inference never
exports), CLI, errors."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferkit.cli import main
from ferkit.errors import FerkitError, WeightsError
from ferkit.export import ExportError, export_onnx, read_onnx_meta
from ferkit.infer import Recognizer, load_image
from ferkit.infer._backends import default_backend, load_classifier
from ferkit.models import OnnxClassifier, TorchClassifier, model_paths, probabilities, resolve_model_path

from _paths import DATA, REPO, SAMPLES

TWO, MULTI = (str(SAMPLES / f"{n}.jpg") for n in ("two_people", "multi_face"))
TOL = 1e-4  # the bound on the largest probability difference


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory, one_thread) -> Path:
    """A temporary cache folder (inference must write no ONNX file there), never ~/.cache; one torch thread."""
    d = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FERKIT_CACHE_DIR", str(d))
        yield d


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return export_onnx("default", tmp_path_factory.mktemp("export") / "default")


@pytest.fixture(scope="module")
def onnx_rec(exported: Path) -> Recognizer:
    return Recognizer(exported, backend="onnx", threads=1)


def _crops(rec: Recognizer, *paths: str) -> list[np.ndarray]:
    crops = []
    for p in paths:
        img = load_image(p)
        faces, points = rec.detect(img)
        crops += rec.crop(img, faces, points)
    return crops


def _fer2013_public_test(n: int = 64) -> list[np.ndarray]:
    root = DATA / "fer2013" / "test"
    classes = sorted(d for d in root.iterdir() if d.is_dir())
    files = [f for c in classes for f in sorted(c.glob("PublicTest_*.jpg"))[: n // len(classes) + 1]][:n]
    return [np.asarray(Image.open(f).convert("L")) for f in files]


# --------------------------------------------------------------------------------------- export
def test_export_writes_a_checked_pair(exported: Path) -> None:
    """The .onnx file with its JSON: the checksums of both files it links, and the check it passed."""
    assert exported.name == "default.onnx" and exported.is_file()
    path, meta = read_onnx_meta(exported.with_suffix(".json"))
    assert path == exported
    assert meta["backend"] == "onnx" and meta["format"] == "ferkit-onnx/1" and meta["arch"] == "vgg_fer"
    assert meta["input_name"] == "input" and meta["input_shape"] == ["batch", 1, 48, 48]
    assert meta["sha256"] == hashlib.sha256(exported.read_bytes()).hexdigest()
    weights, _ = model_paths(resolve_model_path("default"))
    assert meta["source_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert meta["check"]["images"] == 2 and 0 <= meta["check"]["max_prob_diff"] < TOL
    assert not list(exported.parent.glob(".*.tmp"))  # atomic: no temporary file left


def test_parity_on_sample_photo_faces(rec: Recognizer, onnx_rec: Recognizer) -> None:
    crops = _crops(rec, TWO, MULTI)
    assert len(crops) >= 6
    p_torch, p_onnx = rec.classify(crops), onnx_rec.classify(crops)
    assert np.abs(p_torch - p_onnx).max() < TOL
    assert np.allclose(p_onnx.sum(axis=1), 1.0)


def test_parity_on_fer2013_public_test(rec: Recognizer, onnx_rec: Recognizer) -> None:
    faces = _fer2013_public_test(64)
    assert len(faces) == 64
    p_torch, p_onnx = rec.classify(faces), onnx_rec.classify(faces)
    assert np.abs(p_torch - p_onnx).max() < TOL
    assert (p_torch.argmax(1) == p_onnx.argmax(1)).all()


def test_inference_loads_onnx_files_and_never_exports(rec: Recognizer, exported: Path, cache_dir: Path) -> None:
    # the default backend: ONNX Runtime where an ONNX file is at hand on the CPU, else PyTorch
    assert default_backend("default") == "onnx" and default_backend("ferplus") == "onnx"
    assert default_backend(str(resolve_model_path("default"))) == "torch"
    assert default_backend("default", "cuda:0") == "torch"
    shipped = Recognizer(backend="onnx")  # a shipped model runs from the ONNX file shipped with it
    assert (Path(shipped.classifier.path).parent.name == "onnx"
            and Path(shipped.classifier.path).parent.parent.name == "weights")
    # a saved PyTorch model on ONNX Runtime: one line saying to export it first; nothing is exported
    weights = str(resolve_model_path("default"))
    with pytest.raises(FerkitError) as e:
        Recognizer(weights, backend="onnx")
    assert str(e.value).startswith(f"{weights}: a PyTorch model, not exported to ONNX")
    assert f"ferkit export {weights} --out FILE.onnx" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(FerkitError, match="export it first with ferkit.export.export_onnx"):
        load_classifier((rec.model, rec.meta), "onnx")
    with pytest.raises(WeightsError, match="no-such-model: not a model file or folder, nor a shipped model"):
        load_classifier("no-such-model", "onnx")
    assert not list(cache_dir.rglob("*.onnx"))
    assert Recognizer(weights).backend == "torch"  # backend None: the torch backend, as before
    # exported explicitly first, the same model runs on ONNX Runtime with the torch backend's answers
    onnx_rec = Recognizer(exported, backend="onnx")
    assert onnx_rec.classifier.path == str(exported)
    a, b = rec.predict(TWO), onnx_rec.predict(TWO)
    assert len(a) == 2 and [f.box for f in a] == [f.box for f in b] and [f.emotion for f in a] == [f.emotion for f in b]
    assert max(abs(f.probabilities[c] - g.probabilities[c]) for f, g in zip(a, b) for c in rec.classes) < TOL


def test_cli_predict_onnx_of_an_unexported_model_says_how_to_export(capsys) -> None:
    weights = str(resolve_model_path("default"))
    assert main(["predict", TWO, "--model", weights, "--backend", "onnx", "--format", "json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and f"run `ferkit export {weights} --out FILE.onnx` first" in err


def test_temperature_stays_outside_the_graph(rec: Recognizer, tmp_path: Path) -> None:
    meta = {**rec.meta, "temperature": 2.0}
    path = export_onnx((rec.model, meta), tmp_path / "hot")
    crops = _crops(rec, TWO)
    onnx_rec = Recognizer(path, backend="onnx", threads=1, prior="train")    # the temperature alone
    assert onnx_rec.meta["temperature"] == 2.0
    x = np.stack([rec.transform(c) for c in crops])
    logits = TorchClassifier(rec.model)(x)
    assert np.abs(OnnxClassifier(path, threads=1)(x) - logits).max() < 1e-4  # same logits: T not in the graph
    expected = probabilities(logits / 2.0)
    assert np.abs(onnx_rec.classify(crops) - expected).max() < TOL
    assert np.abs(Recognizer((rec.model, meta), prior="train").classify(crops) - expected).max() < 1e-9


def test_fixed_batch_export_runs_any_batch(rec: Recognizer, tmp_path: Path) -> None:
    path = export_onnx((rec.model, rec.meta), tmp_path / "fixed", dynamic_batch=False)
    assert read_onnx_meta(path)[1]["input_shape"] == [1, 1, 48, 48]
    crops = _crops(rec, TWO)
    clf, _ = load_classifier(path, "onnx", threads=1)
    assert np.abs(Recognizer(path, backend="onnx").classify(crops) - rec.classify(crops)).max() < TOL
    assert clf(np.zeros((3, 1, 48, 48), np.float32)).shape == (3, 7)


# --------------------------------------------------------------------------------------- errors
def test_bad_inputs_give_one_line_errors(rec: Recognizer, exported: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not a protobuf at all" * 10)
    with pytest.raises(WeightsError) as e:
        OnnxClassifier(garbage)
    assert str(e.value).startswith(str(garbage)) and "\n" not in str(e.value)
    # a corrupt .onnx whose JSON still names the old checksum
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(exported.read_bytes()[:5000])
    bad.with_suffix(".json").write_text(exported.with_suffix(".json").read_text())
    with pytest.raises(WeightsError, match="checksum mismatch"):
        Recognizer(bad, backend="onnx")
    with pytest.raises(WeightsError, match="backend='onnx'"):
        Recognizer(exported, backend="torch")  # an ONNX file on the torch backend
    assert Recognizer(exported).backend == "onnx"  # which is the default for it
    with pytest.raises(WeightsError, match="metadata not found"):
        Recognizer(garbage, backend="onnx")
    with pytest.raises(ExportError, match="PyTorch model's metadata"):
        export_onnx((rec.model, rec.meta), REPO / "src" / "ferkit" / "weights" / "fer2013_vgg_fer_w15_e64")


def test_cli_corrupt_onnx_is_one_line(exported: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(exported.read_bytes()[:5000])
    meta = json.loads(exported.with_suffix(".json").read_text())
    meta["sha256"] = hashlib.sha256(bad.read_bytes()).hexdigest()  # passes the checksum, fails in ONNX Runtime
    bad.with_suffix(".json").write_text(json.dumps(meta))
    assert main(["predict", TWO, "--model", str(bad), "--backend", "onnx", "--format", "json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith(f"ferkit: error: {bad}: not a readable ONNX model")


# --------------------------------------------------------------------------------------- CLI
def test_cli_export_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli" / "fer.onnx"
    assert main(["export", "default", "--format", "onnx", "--out", str(out)]) == 0
    printed, _ = capsys.readouterr()
    assert printed.strip() == str(out) and out.with_suffix(".json").is_file()
    mtime = out.stat().st_mtime_ns
    assert main(["export", "default", "--out", str(out)]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "already exists; use --force" in err and out.stat().st_mtime_ns == mtime
    out.write_bytes(b"not an ONNX model")          # --force replaces it with a working export
    assert main(["export", "default", "--out", str(out), "--force"]) == 0
    assert len(Recognizer(out, backend="onnx").predict(TWO)) == 2


def test_cli_predict_onnx_json_matches_torch(rec: Recognizer, exported: Path, cache_dir: Path) -> None:
    env = {**os.environ, "FERKIT_CACHE_DIR": str(cache_dir), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "ferkit", "predict", TWO, "--model", str(exported), "--backend", "onnx",
                        "--format", "json"], check=False, capture_output=True, text=True, env=env, cwd=REPO,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    expected = rec.predict(TWO).to_dict()
    assert [d["path"] for d in data] == [TWO] and len(data[0]["faces"]) == 2
    for got, want in zip(data[0]["faces"], expected["faces"]):
        assert got["box"] == want["box"] and got["emotion"] == want["emotion"]
        assert max(abs(got["probabilities"][c] - want["probabilities"][c]) for c in rec.classes) < TOL
