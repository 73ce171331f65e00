"""The light install's main job: `ferkit predict` and `ferkit video` with PyTorch, Lightning, timm,
scikit-learn, onnx and FastAPI made unimportable (what `pip install .` without extras leaves out),
on the shipped ONNX files, with the faces and probabilities of the torch backend (within 1e-4).

``scripts/check_light_install.sh`` does the same in a fresh virtualenv built with ``pip install .``."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _paths import SAMPLES, require

require(SAMPLES)

#: what the base install does not have (``face_recognition_models`` comes with [landmarks])
MISSING = ("torch", "torchvision", "lightning", "timm", "sklearn", "onnx", "safetensors", "fastapi", "uvicorn",
           "face_recognition_models")

SITECUSTOMIZE = f'''
import sys

MISSING = {MISSING!r}


class _NotInstalled:
    """Makes the packages of the extras unimportable, as in an install without them."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in MISSING:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
'''


def _light(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "ferkit", *args], capture_output=True, text=True, timeout=600,
                          env=env, cwd=tmp_path, check=False)


def test_the_blocker_blocks(tmp_path):
    """What needs an extra says which, in one line."""
    out = _light(tmp_path, "train", str(Path(__file__).parents[1] / "configs" / "quick_resnet18.yaml"))
    assert out.returncode == 2
    assert "ferkit train needs" in out.stderr and "pip install 'ferkit[train]'" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_predict_without_pytorch_equals_the_torch_backend(tmp_path, rec, capsys):
    photos = [str(SAMPLES / f"{n}.jpg") for n in ("two_people", "multi_face", "obama")]
    out = _light(tmp_path, "predict", *photos, "--format", "json")
    assert out.returncode == 0, out.stderr
    light = json.loads(out.stdout)
    want = [rec.predict(p).to_dict() for p in photos]
    assert rec.backend == "torch"
    faces = 0
    for got, ref in zip(light, want, strict=True):
        assert [f["box"] for f in got["faces"]] == [f["box"] for f in ref["faces"]]
        for f, g in zip(got["faces"], ref["faces"]):
            faces += 1
            assert max(abs(f["probabilities"][c] - g["probabilities"][c]) for c in g["probabilities"]) < 1e-4
    assert faces >= 8


def _torch(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The same command in the full install, on the torch backend."""
    return subprocess.run([sys.executable, "-m", "ferkit", *args, "--backend", "torch"], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path, check=True)


def _same_faces(got: list[dict], want: list[dict]) -> int:
    """The same boxes and probabilities (within 1e-4), face by face; how many faces."""
    assert [f["box"] for f in got] == [f["box"] for f in want]
    for f, g in zip(got, want, strict=True):
        assert f["probabilities"].keys() == g["probabilities"].keys()
        assert max(abs(f["probabilities"][c] - g["probabilities"][c]) for c in g["probabilities"]) < 1e-4
    return len(got)


def test_video_and_other_models_without_pytorch(tmp_path):
    """`ferkit video` (30 frames), the FER+ model and the shipped ensemble (two nets in one ONNX graph)
    without PyTorch give the torch backend's faces and probabilities."""
    clip = ("video", str(SAMPLES / "short_hamilton_clip.mp4"), "--max-frames", "30")
    out = _light(tmp_path, *clip, "--out", "light")
    assert out.returncode == 0, out.stderr
    _torch(tmp_path, *clip, "--out", "torch")
    assert (tmp_path / "light" / "short_hamilton_clip_annotated.mp4").stat().st_size > 10_000
    got, want = (json.loads((tmp_path / d / "short_hamilton_clip_faces.json").read_text())["frames"]
                 for d in ("light", "torch"))
    assert len(got) == len(want) == 30
    assert sum(_same_faces(f["faces"], g["faces"]) for f, g in zip(got, want, strict=True)) >= 20

    for model, classes in (("ferplus", 8), ("ensemble", 7)):
        photo = ("predict", str(SAMPLES / "two_people.jpg"), "--model", model, "--format", "json")
        out = _light(tmp_path, *photo)
        assert out.returncode == 0, out.stderr
        faces = json.loads(out.stdout)[0]["faces"]
        assert _same_faces(faces, json.loads(_torch(tmp_path, *photo).stdout)[0]["faces"]) == 2
        assert all(len(f["probabilities"]) == classes for f in faces)

    # what needs PyTorch says so in one line
    out = _light(tmp_path, "predict", str(SAMPLES / "two_people.jpg"), "--backend", "torch")
    assert out.returncode == 2
    assert "needs PyTorch" in out.stderr and "pip install 'ferkit[train]'" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_pytorch_model_is_never_exported_on_the_fly(tmp_path):
    """A saved PyTorch model asked to run on ONNX Runtime is refused in one line, never exported on the
    fly (nothing is written beside it): with PyTorch it says to export it, without PyTorch that it needs
    PyTorch (on either backend)."""
    from ferkit.models import model_paths, resolve_model_path

    folder = tmp_path / "model"
    folder.mkdir()
    for src in model_paths(resolve_model_path("default")):
        shutil.copyfile(src, folder / f"model{src.suffix}")
    before = sorted(folder.iterdir())
    weights = str(folder / "model.safetensors")
    photo = str(SAMPLES / "two_people.jpg")
    out = subprocess.run([sys.executable, "-m", "ferkit", "predict", photo, "--model", weights, "--backend", "onnx"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [out.stderr.strip()], out.stderr
    assert f"{weights}: a PyTorch model, not exported to ONNX: run `ferkit export" in out.stderr
    for backend in ([], ["--backend", "onnx"]):
        out = _light(tmp_path, "predict", photo, "--model", weights, *backend)
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert out.stderr.strip().splitlines() == [out.stderr.strip()] and f"{weights}: a PyTorch model needs PyTorch" \
            in out.stderr
    assert sorted(folder.iterdir()) == before


def _shipped_names() -> list[str]:
    from ferkit.models import shipped_aliases, shipped_models

    return [n for n in shipped_models() if n not in shipped_aliases()]


@pytest.mark.parametrize("name", _shipped_names())
def test_shipped_onnx_files_match_their_weights(name):
    """Each shipped model's ONNX export was made from the shipped weights as they are now (a model
    re-trained or re-calibrated without `scripts/export_shipped_onnx.py` fails here); an ensemble has no
    export of its own but runs from its members' (each checked here under its own name)."""
    from ferkit.models import model_paths, open_onnx, read_onnx_meta, resolve_model_path, shipped_onnx

    _, meta_path = model_paths(resolve_model_path(name))
    weights = json.loads(meta_path.read_text())
    if weights.get("format") == "ferkit-ensemble/1":
        classifier, meta = open_onnx(shipped_onnx(name))
        assert type(classifier).__name__ == "OnnxEnsemble" and len(classifier.members) == len(weights["members"])
        assert meta["classes"] == weights["classes"] and meta["train_prior"]
        return
    path, onnx_meta = read_onnx_meta(shipped_onnx(name))
    assert onnx_meta["source_sha256"] == weights["sha256"]
    for key in ("classes", "input", "temperature", "train_prior", "prior"):
        assert onnx_meta.get(key) == weights.get(key), key
    assert path.stat().st_size < 25e6
