"""ferkit.evaluate and the evaluate / compare / calibrate commands, on real data and real models.

The shipped ``default`` model is evaluated on a fixed, stratified 280-image copy of FER2013's
PublicTest split laid out class-per-folder (the ``folder`` format) in a temporary folder; the
expected values are recomputed here independently (``load_model`` + ``eval_transform`` + torch,
then scikit-learn), never read back from ferkit's own code. No assertion depends on how good the
model is, so the tests hold when the placeholder weights are replaced.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.special import softmax
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

from ferkit.cli.evaluate import summary_line
from ferkit.data import load_dataset, stratified_subset
from ferkit.data.transforms import eval_transform
from ferkit.errors import FerkitError, WeightsError
from ferkit.evaluate import (
    METRICS_KEYS,
    calibrate,
    compute_metrics,
    evaluate,
    expected_calibration_error,
    fit_temperature,
    nll_at_temperature,
)
from ferkit.models import count_parameters, create_model, load_model, save_model

from _paths import FER, FERPLUS, require

require(FER)

N_SUBSET = 280
CONTRACT_KEYS = {"accuracy", "macro_f1", "weighted_f1", "mean_auc", "n_images", "per_class", "confusion", "classes"}
SCHEMA_KEYS = [
    "schema", "ferkit_version", "created", "model", "dataset", "classes", "class_restriction", "tta", "tta_views",
    "temperature", "prior", "n_images", "accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_precision",
    "weighted_recall", "weighted_f1", "mean_auc", "ece", "nll", "per_class", "confusion", "reliability", "ci95",
    "detector", "n_no_face", "no_face_files", "timing", "output_dir", "roc", "grid",
]
FIGURES = ("confusion_matrix.png", "roc_curves.png", "reliability_diagram.png", "prediction_grid.png")


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread) -> None:
    """Every test of this module runs on one torch thread (see conftest.one_thread)."""


def _ferkit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "ferkit", *map(str, args)], check=False, capture_output=True,
                          text=True, timeout=300, cwd=cwd, env=env)


def _copy_images(faces, index, root: Path, folder_of=None) -> Path:
    for i in index:
        cls = faces.classes[faces.labels[i]]
        dest = root / (folder_of(cls) if folder_of else cls)
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(faces.paths[i], dest / Path(faces.paths[i]).name)
    return root


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def public_test():
    return load_dataset(FER, "fer2013-folder").split("PublicTest")


@pytest.fixture(scope="module")
def subset(public_test, tmp_path_factory) -> Path:
    """280 PublicTest images (stratified, seed 0) as <class>/<file>.jpg."""
    root = tmp_path_factory.mktemp("data") / "public280"
    return _copy_images(public_test, stratified_subset(public_test.labels, N_SUBSET, seed=0), root)


@pytest.fixture(scope="module")
def reference(subset):
    """Independent predictions on ``subset``: file name -> (true class, logits, logits of the mirror),
    logits divided by the model's stored temperature, plus the change of log prior to the model's own
    class prior (a balance b: its training frequencies to the power 1 - b) that evaluate applies."""
    model, meta = load_model("default")
    tf = eval_transform(meta["input"])
    faces = load_dataset(subset, "folder")
    x = torch.stack([tf(faces.load_image(i)) for i in range(len(faces))])
    logits, flipped = _as_evaluated(model, meta, x), _as_evaluated(model, meta, x.flip(-1))
    names = [Path(p).name for p in faces.paths]
    true = [faces.classes[k] for k in faces.labels]
    return {"classes": list(meta["classes"]), "names": names, "true": true, "logits": logits, "flipped": flipped}


def _as_evaluated(model, meta, x: torch.Tensor) -> np.ndarray:
    """The model's logits on ``x`` as evaluate scores them: divided by the stored temperature, plus the
    change of log prior to the model's own class prior."""
    t = meta.get("temperature", 1.0)
    balance = {"train": 0.0, "uniform": 1.0}.get(meta.get("prior", "train"), meta.get("prior"))
    with torch.no_grad():
        return model(x).double().numpy() / t - float(balance) * np.log(np.array(meta["train_prior"]))


@pytest.fixture(scope="module")
def evaluated(subset, tmp_path_factory):
    out = tmp_path_factory.mktemp("ev") / "plain"
    metrics = evaluate("default", subset, "folder", "all", out=out, device="cpu", grid=16)
    return metrics, out


def _predictions(folder: Path) -> dict[str, dict[str, str]]:
    with (folder / "predictions.csv").open(newline="") as f:
        return {Path(r["file"]).name: r for r in csv.DictReader(f)}


def _check_png(path: Path, min_side: int = 300) -> None:
    assert path.is_file() and path.stat().st_size > 10_000, path
    with Image.open(path) as im:
        assert min(im.size) >= min_side, (path, im.size)
        grey = np.asarray(im.convert("L"), dtype=np.float64)
    assert grey.std() > 10 and len(np.unique(grey)) > 20, f"{path} looks blank"


def _one_line_error(r: subprocess.CompletedProcess, needle: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ferkit: error: "), r.stderr
    assert needle in lines[0], lines[0]


# ------------------------------------------------------------------------------------------ metrics
def test_metrics_agree_with_scikit_learn(evaluated, reference):
    m, out = evaluated
    classes = reference["classes"]
    assert m["classes"] == classes and m["n_images"] == N_SUBSET
    y = np.array([classes.index(c) for c in reference["true"]])
    probs = softmax(reference["logits"], axis=1)
    pred = probs.argmax(1)
    rows = _predictions(out)
    assert [rows[n]["predicted"] for n in reference["names"]] == [classes[k] for k in pred]
    assert [rows[n]["true"] for n in reference["names"]] == reference["true"]

    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=range(7), zero_division=0)
    for k, c in enumerate(classes):
        got = m["per_class"][c]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((p[k], r[k], f[k]))
        assert got["support"] == s[k]
        assert got["auc"] == pytest.approx(roc_auc_score(y == k, probs[:, k]), abs=1e-4)
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y, pred, average=avg, zero_division=0)
        assert (m[f"{avg}_precision"], m[f"{avg}_recall"], m[f"{avg}_f1"]) == pytest.approx((p, r, f))
    assert m["mean_auc"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr", average="macro"), abs=1e-4)
    assert m["confusion"] == confusion_matrix(y, pred, labels=range(7)).tolist()
    assert m["nll"] == pytest.approx(log_loss(y, probs), rel=1e-4)
    # ECE by hand: 15 equal-width bins of the top-1 confidence
    conf, hit = probs.max(1), (pred == y)
    bins = np.minimum((np.ceil(conf * 15) - 1).clip(0), 14)
    ece = sum(abs(hit[bins == b].mean() - conf[bins == b].mean()) * (bins == b).mean()
              for b in range(15) if (bins == b).any())
    assert m["ece"] == pytest.approx(ece, abs=1e-4)


def test_metrics_edge_cases_are_json_safe():
    y = np.array([0, 0, 1, 1, 1])                     # class 2 has no images
    probs = np.array([[.8, .1, .1], [.3, .6, .1], [.2, .7, .1], [.1, .2, .7], [.5, .4, .1]])
    m = compute_metrics(y, probs, ["angry", "happy", "sad"])
    assert m["per_class"]["sad"]["auc"] is None and m["per_class"]["sad"]["support"] == 0
    aucs = [roc_auc_score(y == k, probs[:, k]) for k in (0, 1)]
    assert m["mean_auc"] == pytest.approx(np.mean(aucs))
    json.dumps(m, allow_nan=False)
    assert expected_calibration_error(np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]])) == 0.0
    assert expected_calibration_error(np.array([1, 0]), np.array([[1.0, 0.0], [0.0, 1.0]])) == 1.0


def test_metrics_json_schema(evaluated):
    m, out = evaluated
    on_disk = json.loads((out / "metrics.json").read_text())
    assert list(on_disk) == SCHEMA_KEYS == list(METRICS_KEYS)
    assert on_disk == json.loads(json.dumps(m)) and on_disk["output_dir"] == str(out)
    assert on_disk["schema"] == "ferkit-metrics/1" and isinstance(on_disk["ferkit_version"], str)
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_precision", "weighted_recall",
                "weighted_f1", "mean_auc", "ece"):
        assert isinstance(on_disk[key], float) and 0 <= on_disk[key] <= 1, key
    assert isinstance(on_disk["nll"], float) and on_disk["nll"] > 0
    # the temperature it applied is the model's stored one
    assert on_disk["temperature"] == on_disk["model"]["temperature"] == load_model("default")[1]["temperature"]
    assert isinstance(on_disk["n_images"], int) and on_disk["tta"] == "none" and on_disk["tta_views"] == 1
    assert set(on_disk["model"]) >= {"name", "path", "arch", "sha256", "classes", "input", "num_params", "temperature"}
    assert on_disk["model"]["name"] == "default" and len(on_disk["model"]["sha256"]) == 64
    assert set(on_disk["dataset"]) >= {"path", "format", "split", "n_images_split", "classes", "classes_requested",
                                       "limit", "notes"}
    assert on_disk["dataset"]["format"] == "folder" and on_disk["dataset"]["split"] == "all"
    assert set(on_disk["class_restriction"]) == {"restricted", "reason", "model_classes", "excluded_model_classes",
                                                 "dropped_dataset_classes"}
    assert on_disk["class_restriction"]["restricted"] is False
    classes = on_disk["classes"]
    assert list(on_disk["per_class"]) == classes
    for c in classes:
        pc = on_disk["per_class"][c]
        assert set(pc) == {"precision", "recall", "f1", "support", "auc"}
        assert isinstance(pc["support"], int) and all(isinstance(pc[k], float) for k in ("precision", "recall", "f1"))
    conf = np.array(on_disk["confusion"])
    assert conf.shape == (7, 7) and conf.dtype.kind == "i" and conf.sum() == on_disk["n_images"]
    assert conf.sum(1).tolist() == [on_disk["per_class"][c]["support"] for c in classes]
    rel = on_disk["reliability"]
    assert rel["n_bins"] == 15 and len(rel["edges"]) == 16 and sum(rel["count"]) == on_disk["n_images"]
    assert set(on_disk["timing"]) == {"seconds", "images_per_s", "device", "batch_size"}


def test_report_and_figures(evaluated):
    _, out = evaluated
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["metrics.json", "report.md", "predictions.csv", *FIGURES])
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "temporary folder left behind"
    report = (out / "report.md").read_text()
    for needle in ("## Per-class results", "macro avg", "weighted avg", "## Confusion matrix", "## ROC curves",
                   "Expected calibration error", "(confusion_matrix.png)", "(roc_curves.png)",
                   "(reliability_diagram.png)", "(prediction_grid.png)", "f1-score", "All 7 classes"):
        assert needle in report, needle
    for name in FIGURES:
        _check_png(out / name)
    with Image.open(out / "prediction_grid.png") as im:
        rgb = np.asarray(im.convert("RGB")).astype(int)
    reds = ((rgb[..., 0] > 200) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)).sum()
    greens = ((rgb[..., 1] > 100) & (rgb[..., 0] < 60) & (rgb[..., 2] < 60)).sum()
    assert reds > 100 and greens > 100, "wrong faces are not framed red and right ones green"
    assert len(_predictions(out)) == N_SUBSET


def test_existing_output_folder_is_never_overwritten(subset, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FerkitError, match="already exists"):
        evaluate("default", subset, "folder", out=out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


# ------------------------------------------------------------------------------------------ TTA
def test_tta_flip_and_ten_crop_change_predictions(subset, reference, evaluated, tmp_path):
    _, plain = evaluated
    base = _predictions(plain)
    classes = reference["classes"]
    m = evaluate("default", subset, "folder", tta="flip", out=tmp_path / "flip", device="cpu", grid=8)
    assert m["tta"] == "flip" and m["tta_views"] == 2
    flip = _predictions(tmp_path / "flip")
    expected = (softmax(reference["logits"], 1) + softmax(reference["flipped"], 1)).argmax(1)
    assert [flip[n]["predicted"] for n in reference["names"]] == [classes[k] for k in expected]
    assert any(flip[n]["predicted"] != base[n]["predicted"] for n in base)
    assert "flip (2 views)" in (tmp_path / "flip" / "report.md").read_text()

    m = evaluate("default", subset, "folder", tta="ten-crop", limit=100, out=tmp_path / "ten", device="cpu", grid=8)
    assert m["tta"] == "ten-crop" and m["tta_views"] == 10 and m["n_images"] == 100
    ten = _predictions(tmp_path / "ten")
    assert any(row["predicted"] != base[n]["predicted"] for n, row in ten.items())
    # the reference: torchvision's ten_crop (corners, centre, their mirrors) of the face at 54 px
    from torchvision.transforms.functional import ten_crop

    model, meta = load_model("default")
    faces = load_dataset(subset, "folder")
    rows = [i for i, p in enumerate(faces.paths) if Path(p).name in ten]
    assert len(rows) == len(ten) == 100
    big = eval_transform({**meta["input"], "size": 54})
    views = torch.stack(ten_crop(torch.stack([big(faces.load_image(i)) for i in rows]), 48), 1)
    probs = softmax(_as_evaluated(model, meta, views.flatten(0, 1)), 1).reshape(len(rows), 10, -1).mean(1)
    assert [ten[Path(faces.paths[i]).name]["predicted"] for i in rows] == [classes[k] for k in probs.argmax(1)]
    assert json.loads((tmp_path / "ten" / "metrics.json").read_text())["tta"] == "ten-crop"
    assert "ten-crop (10 views)" in (tmp_path / "ten" / "report.md").read_text()


# ------------------------------------------------------------------------------------------ classes
def test_cli_json_with_classes_restricts_argmax(subset, reference, tmp_path):
    out = tmp_path / "three"
    r = _ferkit("evaluate", "--model", "default", "--data", subset, "--format", "folder", "--split", "all",
                "--classes", "anger,happy,sadness", "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)                         # stdout is the JSON and nothing else
    assert CONTRACT_KEYS <= set(m) and m["classes"] == ["angry", "happy", "sad"]
    keep = [i for i, c in enumerate(reference["true"]) if c in m["classes"]]
    assert m["n_images"] == len(keep) and np.array(m["confusion"]).shape == (3, 3)
    assert np.array(m["confusion"]).sum() == len(keep)
    cols = [reference["classes"].index(c) for c in m["classes"]]
    pred = reference["logits"][keep][:, cols].argmax(1)
    y = np.array([m["classes"].index(reference["true"][i]) for i in keep])
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert set(m["per_class"]) == set(m["classes"])
    assert m["class_restriction"]["restricted"] and m["class_restriction"]["reason"] == "--classes"
    assert m["class_restriction"]["excluded_model_classes"] == ["disgust", "fear", "surprise", "neutral"]
    assert json.loads((out / "metrics.json").read_text())["classes"] == m["classes"]
    report = (out / "report.md").read_text()
    assert "Restricted argmax" in report and "disgust, fear, surprise, neutral" in report


def test_cross_dataset_subset_of_classes(public_test, reference, tmp_path):
    """A class-per-folder set with other folder names, fewer classes and a class the model lacks."""
    idx = stratified_subset(public_test.labels, 400, seed=1)
    keep = [i for i in idx if public_test.classes[public_test.labels[i]] in ("angry", "happy", "neutral")]
    names = {"angry": "Anger", "happy": "3_Happiness", "neutral": "contempt"}  # neutral faces stand in for contempt
    root = _copy_images(public_test, keep, tmp_path / "ckplus_like", folder_of=names.get)
    n_contempt = sum(public_test.classes[public_test.labels[i]] == "neutral" for i in keep)
    m = evaluate("default", root, "folder", out=tmp_path / "out", device="cpu", grid=8)
    assert m["classes"] == ["angry", "happy"] and m["n_images"] == len(keep) - n_contempt
    cr = m["class_restriction"]
    assert cr["restricted"] and cr["reason"] == "shared" and cr["dropped_dataset_classes"] == {"contempt": n_contempt}
    assert set(cr["excluded_model_classes"]) == {"disgust", "fear", "sad", "surprise", "neutral"}
    rows = _predictions(tmp_path / "out")
    assert {r["predicted"] for r in rows.values()} <= {"angry", "happy"}
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Restricted argmax" in report and "classes this dataset shares with the model" in report
    assert f"{n_contempt} images of class contempt were left out" in report


def test_probabilities_computed_elsewhere_are_measured_as_the_models_own(tmp_path):
    """evaluation_of_probs (an ensemble combined from its members' recorded outputs) on a model's own
    probabilities gives that model's metrics: FER+'s contempt faces left out and counted alike."""
    from ferkit.errors import ConfigError
    from ferkit.evaluate import evaluation_of_probs, load_eval_data, run_evaluation

    faces_info = load_eval_data(FERPLUS, "ferplus", "FER2013Test", limit=120)
    ev = run_evaluation("vgg_fer.w15_fer2013", FERPLUS, "ferplus", "FER2013Test", limit=120, device="cpu",
                        faces_info=faces_info, prior="train", n_boot=50)
    assert ev.metrics["class_restriction"]["dropped_dataset_classes"]["contempt"] > 0
    ident = {"name": "elsewhere", "classes": ev.classes}
    again = evaluation_of_probs(ev.probs, ev.classes, faces_info, ident, label="elsewhere", n_boot=50)
    for key in ("n_images", "accuracy", "macro_f1", "per_class", "confusion", "class_restriction", "ci95"):
        assert again.metrics[key] == ev.metrics[key], key
    assert again.metrics["nll"] == pytest.approx(ev.metrics["nll"]) and again.metrics["mean_auc"] == pytest.approx(
        ev.metrics["mean_auc"])
    assert list(again.faces.ids) == list(ev.faces.ids) and again.metrics["model"] is ident
    # a restricted model: probabilities over more classes than the data has are renormalised over the shared ones
    wider = np.concatenate([ev.probs, np.full((len(ev.probs), 1), 0.5)], 1)
    classes = [*ev.classes, "other"]
    wide = evaluation_of_probs(wider, classes, faces_info, {"name": "wide", "classes": classes}, label="wide", n_boot=0)
    assert wide.metrics["accuracy"] == ev.metrics["accuracy"] and wide.probs == pytest.approx(ev.probs)
    assert wide.metrics["class_restriction"]["excluded_model_classes"] == ["other"]
    with pytest.raises(ConfigError, match=r"^elsewhere: \(5, 7\) probabilities for \d+ images of its classes"):
        evaluation_of_probs(ev.probs[:5], ev.classes, faces_info, ident, label="elsewhere")


# ------------------------------------------------------------------------------------------ bad inputs
def test_bad_inputs_are_one_line_errors(subset, tmp_path):
    empty = tmp_path / "empty"
    for c in ("angry", "happy"):
        (empty / c).mkdir(parents=True)
    split_set = tmp_path / "splits"
    (split_set / "train" / "fear").mkdir(parents=True)
    (split_set / "test" / "happy").mkdir(parents=True)
    first = min((subset / "fear").iterdir())
    shutil.copyfile(first, split_set / "train" / "fear" / first.name)
    shutil.copyfile(min((subset / "happy").iterdir()), split_set / "test" / "happy" / "h.jpg")
    taken = tmp_path / "taken"
    taken.mkdir()
    common = ("evaluate", "--model", "default", "--out", tmp_path / "never")
    cases = [
        ((*common, "--data", FER, "--format", "fer2013-folder", "--split", "Validation"),
         "no split 'Validation'; this dataset has: Training, PublicTest, PrivateTest, all"),
        ((*common, "--data", subset, "--format", "fer2014", "--split", "all"), "unknown dataset format 'fer2014'"),
        ((*common, "--data", empty, "--format", "folder"), "no images"),
        ((*common, "--data", subset, "--format", "folder", "--classes", "contempt"),
         "class contempt not in this dataset"),
        ((*common, "--data", split_set, "--format", "folder", "--split", "test", "--classes", "fear"),
         "no images left after keeping classes fear"),
        ((*common, "--data", subset, "--format", "folder", "--classes", "joy,happy"), "class listed twice: happy"),
        ((*common, "--data", subset, "--format", "folder", "--tta", "rotate"),
         "unknown test-time augmentation 'rotate'"),
        (("evaluate", "--model", "default", "--data", subset, "--out", taken), "already exists"),
        (("evaluate", "--model", tmp_path / "no_model", "--data", subset), "no_model"),
        (("calibrate", "default", "--data", subset), "give --out DIR"),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-m", "ferkit", *map(str, args)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for args, _ in cases]
    for (args, needle), p in zip(cases, procs):
        stdout, stderr = p.communicate(timeout=300)
        _one_line_error(subprocess.CompletedProcess(args, p.returncode, stdout, stderr), needle)
    assert not (tmp_path / "never").exists() and list(taken.iterdir()) == []


# ------------------------------------------------------------------------------------------ compare
def test_compare_two_models(subset, tmp_path):
    run = tmp_path / "tiny_vgg-20261125-120000"
    tiny = create_model("vgg_fer", num_classes=7, in_chans=1, width=0.5)
    meta = {"name": "tiny_vgg", "classes": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
            "input": {"size": 48, "channels": 1, "mean": [0.5], "std": [0.5]}, "model_kwargs": {"width": 0.5}}
    save_model(tiny, run / "model", meta)
    (run / "metrics.csv").write_text("epoch,phase,lr,train_loss,train_acc,val_loss,val_acc,val_macro_f1,epoch_time_s\n"
                                     "0,0,0.01,1.9,0.2,1.9,0.2,0.1,10.5\n1,0,0.01,1.8,0.2,1.8,0.2,0.1,11.5\n")
    out = tmp_path / "cmp"
    r = _ferkit("compare", "default", run, "--data", subset, "--format", "folder", "--limit", "70",
                "--latency-runs", "5", "--threads", "1", "--out", out)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("|")]
    assert len(lines) == 4 and "accuracy %" in lines[0] and "FLOPs" in lines[0] and "CPU ms/face" in lines[0]
    assert lines[2].startswith("| default |") and lines[3].startswith(f"| {run.name} |")
    assert "11.0 (2 epochs)" in lines[3] and "CPU, 1 thread." in r.stdout
    rows = json.loads((out / "compare.json").read_text())["models"]
    default, small = rows
    _, default_meta = load_model("default")
    assert default["params"] == default_meta["num_params"] and small["params"] == count_parameters(tiny)
    assert 0 < small["flops"] < default["flops"]
    assert small["epoch_time_s"] == pytest.approx(11.0) and small["epochs"] == 2
    for row in rows:
        assert 0 <= row["accuracy"] <= 1 and row["n_images"] == 70 and row["latency_ms"] > 0 and row["images_per_s"] > 0
    assert "| default |" in (out / "compare.md").read_text() and "each model as trained" in r.stdout
    # the shipped default as trained (prior train), not under the prior it predicts under (which changes
    # some of these predictions, so that this can fail)
    trained = evaluate("default", subset, "folder", "all", limit=70, prior="train")
    own = evaluate("default", subset, "folder", "all", limit=70)
    assert trained["confusion"] != own["confusion"]
    assert default["accuracy"] == trained["accuracy"]
    # evaluate's summary line names the prior only where it is not the training one
    assert ", prior" not in summary_line(trained) and f"TTA none, prior {own['prior']})" in summary_line(own)
    _check_png(out / "accuracy_vs_latency.png", min_side=250)


# ------------------------------------------------------------------------------------------ calibration
def test_fit_temperature_recovers_overconfidence():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 2000)
    logits = rng.normal(size=(2000, 5))
    logits[np.arange(2000), y] += 1.0
    t = fit_temperature(logits * 4, y)                   # 4x sharper than the calibrated logits
    assert 3 < t < 5
    assert nll_at_temperature(logits * 4, y, t) < nll_at_temperature(logits * 4, y, 1.0)


def test_calibrate_lowers_nll_and_rewrites_only_the_json(tmp_path):
    model_dir = tmp_path / "calibrated"
    model_dir.mkdir()
    weights_src = _shipped_weights()
    shutil.copyfile(weights_src, model_dir / "model.safetensors")
    shutil.copyfile(weights_src.with_suffix(".json"), model_dir / "model.json")
    before_json = json.loads((model_dir / "model.json").read_text())
    before_json.pop("temperature", None)  # a previous calibration is replaced
    weights_before = (model_dir / "model.safetensors").read_bytes()

    r = _ferkit("calibrate", model_dir, "--data", FER, "--format", "fer2013-folder", "--split", "PublicTest",
                "--limit", "300", "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["split"] == "PublicTest" and res["n_images"] == 300
    assert res["nll_after"] < res["nll_before"] and res["temperature"] != 1.0
    after_json = json.loads((model_dir / "model.json").read_text())
    assert after_json.pop("temperature") == res["temperature"] and after_json == before_json
    assert (model_dir / "model.safetensors").read_bytes() == weights_before
    assert [p.name for p in model_dir.iterdir() if p.name.startswith(".")] == []

    # evaluate applies the stored temperature: the fitted NLL, and under the training prior (what the fit
    # used) the same argmax (the model's own prior, added after the temperature, moves some)
    raw = evaluate(model_dir, FER, "fer2013-folder", "PublicTest", limit=300, temperature=1.0, device="cpu",
                   prior="train")
    cal = evaluate(model_dir, FER, "fer2013-folder", "PublicTest", limit=300, device="cpu", prior="train")
    assert cal["temperature"] == pytest.approx(res["temperature"]) and cal["model"]["temperature"] == res["temperature"]
    assert cal["accuracy"] == raw["accuracy"] and cal["confusion"] == raw["confusion"]
    assert raw["nll"] == pytest.approx(res["nll_before"], rel=1e-4)
    assert cal["nll"] == pytest.approx(res["nll_after"], rel=1e-4) and cal["nll"] < raw["nll"]


def test_calibrating_a_shipped_model_needs_out(subset, tmp_path):
    shipped_json = _shipped_weights().with_suffix(".json").read_text()
    with pytest.raises(WeightsError, match="give --out"):
        calibrate("default", subset, "folder")
    res = calibrate("default", subset, "folder", limit=70, out=tmp_path / "copy", device="cpu")
    copy_meta = json.loads((tmp_path / "copy" / "model.json").read_text())
    assert copy_meta["temperature"] == res["temperature"]
    _, meta = load_model(tmp_path / "copy")           # the sha256 of the copied weights still holds
    assert meta["temperature"] == res["temperature"]
    assert _shipped_weights().with_suffix(".json").read_text() == shipped_json   # the package is untouched


def _shipped_weights() -> Path:
    from ferkit.models import model_paths, resolve_model_path

    return model_paths(resolve_model_path("default"))[0]
