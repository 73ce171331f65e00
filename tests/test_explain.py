"""Grad-CAM (`ferkit.explain`), its drawing (`ferkit.viz.cam`) and `ferkit explain`, on the sample photos."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from ferkit.cli import main
from ferkit.errors import FerkitError
from ferkit.explain import explain_image, find_cam_layer, grad_cam
from ferkit.infer import load_image

from _paths import SAMPLES

OBAMA, TWO, DOGS = SAMPLES / "obama.jpg", SAMPLES / "two_people.jpg", SAMPLES / "dogs.jpg"
pytestmark = pytest.mark.skipif(not OBAMA.is_file(), reason="sample photos not present")


@pytest.fixture(scope="module")
def obama_x(rec):
    rgb = load_image(OBAMA)
    faces, points = rec.detect(rgb)
    (crop,) = rec.crop(rgb, faces, points)
    return torch.from_numpy(rec.transform(crop))[None]


@pytest.mark.parametrize("path, n", [(OBAMA, 1), (TWO, 2)])
def test_one_heatmap_per_face(rec, path, n):
    pairs = explain_image(rec, path)
    assert len(pairs) == n
    for face, heat in pairs:
        _, _, w, h = face.box
        assert heat.shape == (h, w) and heat.dtype == np.float32
        assert heat.min() >= 0.0 and heat.max() <= 1.0
        assert heat.std() > 0.05  # not constant
        assert face.emotion == max(face.probabilities, key=face.probabilities.get)
    # each face's map is Grad-CAM of its own crop stretched to its box (not another face's)
    rgb = load_image(path)
    faces, points = rec.detect(rgb)
    own = [grad_cam(rec.model, torch.from_numpy(rec.transform(c))[None]) for c in rec.crop(rgb, faces, points)]
    for i, (_, heat) in enumerate(pairs):
        small = cv2.resize(heat, (48, 48), interpolation=cv2.INTER_AREA).ravel()
        corr = [np.corrcoef(small, cam.ravel())[0, 1] for cam in own]
        assert corr[i] > 0.9 and all(corr[i] > c for j, c in enumerate(corr) if j != i), corr


def test_grad_cam_focuses_on_the_face_and_leaves_the_model_clean(rec, obama_x):
    model = rec.model
    cam = grad_cam(model, obama_x)
    assert cam.shape == (48, 48) and cam.min() >= 0 and np.isclose(cam.max(), 1.0)
    # the central half (a quarter of the area: eyes, nose, mouth) holds more than a uniform map's 25 %
    assert cam[12:36, 12:36].sum() / cam.sum() > 0.4
    # the ReLU after the last conv (6x6 output) and its BatchNorm: rectified feature maps, as in the paper
    assert find_cam_layer(model, obama_x) == "features.3.1.2"
    assert np.allclose(cam, grad_cam(model, obama_x, layer="features.3.1.2"))
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())


def test_default_layer_of_a_resnet_is_its_last_block_output(obama_x):
    """torchvision's BasicBlock calls one ReLU module twice; the default is its second call (after the
    residual sum), which naming the layer gives too."""
    from ferkit.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=7, in_chans=1).eval()
    x = nn.functional.interpolate(obama_x, size=(96, 96), mode="bilinear")  # the real face crop, preprocessed
    assert find_cam_layer(model, x) == "layer4.1.relu"
    cam = grad_cam(model, x)
    assert cam.std() > 0.05 and np.allclose(cam, grad_cam(model, x, layer="layer4.1.relu"))


def test_bad_layer_is_a_one_line_error(rec, obama_x):
    with pytest.raises(FerkitError, match="not a module of the model"):
        grad_cam(rec.model, obama_x, layer=nn.Conv2d(1, 1, 1))
    with pytest.raises(FerkitError, match=r"did not produce a \(1, K, h, w\) output"):
        grad_cam(rec.model, obama_x, layer="classifier")


def test_target_class_changes_the_map(rec, obama_x):
    pred = grad_cam(rec.model, obama_x)
    k = int(np.argmax(rec.model(obama_x).detach().numpy()))
    assert np.allclose(pred, grad_cam(rec.model, obama_x, target=k))
    other = grad_cam(rec.model, obama_x,
                     target=rec.classes.index("surprise" if k != rec.classes.index("surprise") else "sad"))
    assert np.abs(pred - other).max() > 0.1
    ((face, a),) = explain_image(rec, OBAMA)
    ((_, own),) = explain_image(rec, OBAMA, target=face.emotion)   # no target: the emotion the face is labelled with
    assert np.allclose(a, own)
    ((_, b),) = explain_image(rec, OBAMA, target="angry" if face.emotion != "angry" else "sad")
    assert np.abs(a - b).max() > 0.1
    with pytest.raises(Exception, match="unknown class"):
        explain_image(rec, OBAMA, target="bored")


def test_without_a_class_the_map_is_of_the_labelled_emotion(one_thread):
    """explain's default target is the emotion the face is labelled with, under the recognizer's class
    prior, not the network's raw argmax: a prior that makes the runner-up the label moves the map with it."""
    from ferkit.infer import Recognizer

    plain = Recognizer("default", backend="torch", prior="train")
    ((face, _),) = explain_image(plain, OBAMA)
    first, second = sorted(face.probabilities, key=face.probabilities.get, reverse=True)[:2]
    tilted = Recognizer("default", backend="torch", prior={c: 1e9 if c == second else 1.0 for c in plain.classes})
    ((label, heat),) = explain_image(tilted, OBAMA)
    assert label.emotion == second
    assert np.allclose(heat, explain_image(tilted, OBAMA, target=second)[0][1])
    assert not np.allclose(heat, explain_image(tilted, OBAMA, target=first)[0][1])


def test_draw_heatmaps_changes_only_the_face_boxes(rec):
    from ferkit.viz import draw_heatmaps

    rgb = load_image(OBAMA)
    pairs = explain_image(rec, rgb)
    out = draw_heatmaps(rgb, pairs, labels=False)
    x, y, w, h = pairs[0][0].box
    changed = np.any(out != rgb, axis=2)
    assert changed[y : y + h, x : x + w].mean() > 0.5
    changed[y : y + h, x : x + w] = False
    assert not changed.any() and out.shape == rgb.shape and out is not rgb


def test_cli_writes_a_jpeg_of_the_input_size_and_never_over_an_input(one_thread, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    clash = out / "obama_gradcam.jpg"  # an input file where the first output would go
    shutil.copy(OBAMA, clash)
    assert main(["explain", str(OBAMA), str(clash), "--out", str(out)]) == 0
    written = [Path(p) for p in capsys.readouterr().out.split()]
    assert written == [out / "obama_gradcam-2.jpg", out / "obama_gradcam_gradcam.jpg"]
    assert clash.read_bytes() == OBAMA.read_bytes()
    for p in written:
        assert p.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG
        assert load_image(p).shape == load_image(OBAMA).shape
    assert sorted(f.name for f in out.iterdir()) == ["obama_gradcam-2.jpg", "obama_gradcam.jpg",
                                                     "obama_gradcam_gradcam.jpg"]


def test_cli_missing_file_is_one_line(one_thread, tmp_path, capsys):
    assert main(["explain", str(tmp_path / "nope.jpg"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ferkit: error:") and "nope.jpg" in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_cli_no_face_writes_nothing(one_thread, tmp_path, capsys):
    assert main(["explain", str(DOGS), "--out", str(tmp_path / "o")]) == 0
    cap = capsys.readouterr()
    assert cap.out == "" and "no face" in cap.err
    assert not (tmp_path / "o").exists()


def test_grad_cam_needs_a_spatial_conv():
    with pytest.raises(Exception, match="Conv2d"):
        grad_cam(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), np.zeros((1, 1, 2, 2), np.float32))
