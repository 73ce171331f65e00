"""Bootstrap 95 % intervals of ``ferkit evaluate`` (``ci95``), on real FER2013 faces and the shipped model.

The reference intervals are recomputed here with a plain Python loop over the same random draws
and scikit-learn's metrics, never with ferkit's vectorised code. The grouped data set is made of
real PublicTest faces: each "subject" is one face and its five frames are small real augmentations
of it (rotation, sub-pixel shift, gain), the near-duplicates a video or a CK+ sequence gives.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from ferkit.errors import ConfigError, DataError
from ferkit.evaluate import bootstrap_ci, evaluate, load_eval_data, run_evaluation

from _paths import FER, require

require(FER)

N_BOOT = 200
SUBJECTS, FRAMES = 40, 5
GROUPS = r"S(\d+)_"


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread) -> None:
    """Every test of this module runs on one torch thread (see conftest.one_thread)."""


def _width(ci: list[float]) -> float:
    return ci[1] - ci[0]


def _reference_intervals(y: np.ndarray, pred: np.ndarray, n_classes: int, unit: np.ndarray, n_boot: int,
                         seed: int = 0) -> dict[str, np.ndarray]:
    """Percentile intervals by a plain loop: resample ``b`` draws the units
    ``rng.integers(0, n_units, size=(n_boot, n_units))[b]`` (units: 0..n_units-1, images or groups)."""
    n_units = int(unit.max()) + 1
    members = [np.flatnonzero(unit == u) for u in range(n_units)]
    draws = np.random.default_rng(seed).integers(0, n_units, size=(n_boot, n_units))
    acc, f1, recall = [], [], []
    for row in draws:
        idx = np.concatenate([members[u] for u in row])
        yt, yp = y[idx], pred[idx]
        acc.append(accuracy_score(yt, yp))
        f1.append(f1_score(yt, yp, labels=range(n_classes), average="macro", zero_division=0))
        recall.append([np.mean(yp[yt == k] == k) if (yt == k).any() else np.nan for k in range(n_classes)])
    recall = np.array(recall)
    out = {"accuracy": np.percentile(acc, [2.5, 97.5]), "macro_f1": np.percentile(f1, [2.5, 97.5])}
    for k in range(n_classes):
        r = recall[:, k][~np.isnan(recall[:, k])]
        out[k] = np.percentile(r, [2.5, 97.5]) if len(r) else None
    return out


def _check_against_reference(ev, unit: np.ndarray, ci: dict | None = None, pred: np.ndarray | None = None) -> None:
    """``ci`` (default: the evaluation's own) against the plain loop over ``pred`` (default: its predictions)."""
    ci = ev.metrics["ci95"] if ci is None else ci
    pred = ev.y_pred if pred is None else pred
    ref = _reference_intervals(ev.y_true, pred, len(ev.classes), unit, ci["n_boot"], ci["seed"])
    assert ci["accuracy"] == pytest.approx(ref["accuracy"], abs=1e-6)
    assert ci["macro_f1"] == pytest.approx(ref["macro_f1"], abs=1e-6)
    for k, c in enumerate(ev.classes):
        if ref[k] is None:
            assert ci["recall"][c] is None
        else:
            assert ci["recall"][c] == pytest.approx(ref[k], abs=1e-6), c


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def small():
    """200 PublicTest images (stratified, seed 0) of the shipped model."""
    return run_evaluation("default", FER, "fer2013-folder", "PublicTest", limit=200, device="cpu", n_boot=N_BOOT)


@pytest.fixture(scope="module")
def grouped(tmp_path_factory) -> Path:
    """40 "subjects" x 5 near-duplicate frames as <class>/S<subject>_<frame>.png: real PublicTest faces,
    each frame rotated by up to 3 degrees, shifted by up to 1.5 px and its gain changed by up to 8 %."""
    root = tmp_path_factory.mktemp("grouped") / "subjects"
    faces, _ = load_eval_data(FER, "fer2013-folder", "PublicTest", limit=SUBJECTS)
    for s in range(len(faces)):
        img = faces.load_image(s)
        rng = np.random.default_rng([7, s])
        folder = root / faces.classes[faces.labels[s]]
        folder.mkdir(parents=True, exist_ok=True)
        for f in range(FRAMES):
            m = cv2.getRotationMatrix2D((23.5, 23.5), rng.uniform(-3, 3), 1.0)
            m[:, 2] += rng.uniform(-1.5, 1.5, 2)
            frame = cv2.warpAffine(img, m, (48, 48), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
            frame = np.clip(frame * rng.uniform(0.92, 1.08), 0, 255).astype(np.uint8)
            assert cv2.imwrite(str(folder / f"S{s:03d}_{f:03d}.png"), frame)
    return root


def _ferkit(*args: object) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "ferkit", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env, check=False)


# ------------------------------------------------------------------------------------------ images
def test_interval_contains_the_estimate_and_narrows_with_more_images(small):
    big = run_evaluation("default", FER, "fer2013-folder", "PublicTest", limit=2000, device="cpu", n_boot=N_BOOT)
    for ev in (small, big):
        m, ci = ev.metrics, ev.metrics["ci95"]
        assert {k: ci[k] for k in ("method", "n_boot", "seed", "resample", "groups_regex", "n_groups")} == {
            "method": "percentile bootstrap", "n_boot": N_BOOT, "seed": 0, "resample": "images",
            "groups_regex": None, "n_groups": None}
        for key in ("accuracy", "macro_f1"):
            lo, hi = ci[key]
            assert lo <= m[key] <= hi and lo < hi, (key, m[key], ci[key])
        assert list(ci["recall"]) == m["classes"]
        for c, interval in ci["recall"].items():
            assert interval[0] <= m["per_class"][c]["recall"] <= interval[1], c
    # ten times the images: about sqrt(10) ~ 3.2 times narrower
    for key in ("accuracy", "macro_f1"):
        assert _width(big.metrics["ci95"][key]) < 0.6 * _width(small.metrics["ci95"][key]), key
    assert _width(big.metrics["ci95"]["recall"]["happy"]) < 0.6 * _width(small.metrics["ci95"]["recall"]["happy"])


def test_vectorised_bootstrap_equals_a_plain_loop(small):
    _check_against_reference(small, np.arange(len(small.y_true)))
    again = bootstrap_ci(small.y_true, small.y_pred, small.classes, n_boot=N_BOOT, seed=0)
    assert again["accuracy"] == small.metrics["ci95"]["accuracy"]            # seeded: same interval
    other = bootstrap_ci(small.y_true, small.y_pred, small.classes, n_boot=N_BOOT, seed=1)
    assert other["accuracy"] != small.metrics["ci95"]["accuracy"]


def test_bootstrap_of_perfect_and_missing_predictions(small):
    y = small.y_true
    perfect = bootstrap_ci(y, y, small.classes, n_boot=50)
    assert perfect["accuracy"] == [1.0, 1.0] and perfect["macro_f1"] == [1.0, 1.0]
    none = bootstrap_ci(y, np.full(len(y), -1), small.classes, n_boot=50)    # -1: no prediction, always wrong
    assert none["accuracy"] == [0.0, 0.0] and none["recall"]["angry"] == [0.0, 0.0]
    # one image in five without a prediction (a photo without a face), among real ones: wrong, and no class's
    # prediction (the last class's precision and F1 would count it otherwise)
    some = small.y_pred.copy()
    some[::5] = -1
    ci = bootstrap_ci(y, some, small.classes, n_boot=N_BOOT, seed=0)
    _check_against_reference(small, np.arange(len(y)), {**ci, "n_boot": N_BOOT, "seed": 0}, some)
    with pytest.raises(ConfigError, match="n_boot"):
        bootstrap_ci(y, y, small.classes, n_boot=0)
    with pytest.raises(DataError, match="one group"):
        bootstrap_ci(y, y, small.classes, groups=["S1"] * len(y))


# ------------------------------------------------------------------------------------------ groups
def test_group_resampling_is_wider_than_image_resampling(grouped):
    by_image = run_evaluation("default", grouped, "folder", "all", device="cpu")
    by_group = run_evaluation("default", grouped, "folder", "all", device="cpu", groups=GROUPS)
    assert by_image.metrics["n_images"] == by_group.metrics["n_images"] == SUBJECTS * FRAMES
    assert by_image.metrics["accuracy"] == by_group.metrics["accuracy"]      # groups change the intervals only
    ci = by_group.metrics["ci95"]
    assert (ci["resample"], ci["groups_regex"], ci["n_groups"], ci["n_boot"]) == ("groups", GROUPS, SUBJECTS, 1000)
    for key in ("accuracy", "macro_f1"):
        lo, hi = ci[key]
        assert lo <= by_group.metrics[key] <= hi
        # five near-duplicates per subject carry about the evidence of one image: ~sqrt(5) wider
        assert _width(ci[key]) > 1.5 * _width(by_image.metrics["ci95"][key]), key
    subject = np.array([int(Path(i).name[1:4]) for i in by_group.faces.ids])
    _, unit = np.unique(subject, return_inverse=True)
    _check_against_reference(by_group, unit)


def test_cli_groups_report_and_summary(grouped, tmp_path):
    out = tmp_path / "out"
    r = _ferkit("evaluate", "--data", grouped, "--format", "folder", "--groups", GROUPS, "--n-boot", N_BOOT,
                "--out", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    lo, hi = m["ci95"]["accuracy"]
    assert m["ci95"]["resample"] == "groups" and m["ci95"]["n_groups"] == SUBJECTS
    assert f"accuracy {m['accuracy']:.4f} [{lo:.3f}, {hi:.3f}]" in r.stdout
    report = (out / "report.md").read_text()
    assert f"| accuracy | {m['accuracy']:.4f} [{lo:.3f}, {hi:.3f}] |" in report
    f_lo, f_hi = m["ci95"]["macro_f1"]
    assert f"| macro F1 | {m['macro_f1']:.4f} [{f_lo:.3f}, {f_hi:.3f}] |" in report
    r_lo, r_hi = m["ci95"]["recall"]["happy"]
    assert f"{m['per_class']['happy']['recall']:.4f} [{r_lo:.3f}, {r_hi:.3f}]" in report
    assert f"{SUBJECTS} groups" in report and "percentile bootstrap" in report


def test_group_regex_errors_name_the_file(grouped, tmp_path):
    odd = grouped / "happy" / "frame_without_subject.png"
    odd.write_bytes(next((grouped / "happy").glob("S*.png")).read_bytes())
    try:
        with pytest.raises(DataError, match="frame_without_subject.png: file name does not match the group regex"):
            evaluate("default", grouped, "folder", groups=GROUPS, out=tmp_path / "never")
        r = _ferkit("evaluate", "--data", grouped, "--format", "folder", "--groups", GROUPS, "--out", tmp_path / "x")
        assert r.returncode == 2 and r.stdout == ""
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "frame_without_subject.png" in lines[0], r.stderr
    finally:
        odd.unlink()
    assert not (tmp_path / "never").exists() and not (tmp_path / "x").exists()
    with pytest.raises(DataError, match="one group"):
        run_evaluation("default", grouped, "folder", groups=r"(S)\d+_", device="cpu")
    with pytest.raises(DataError, match="group regex"):
        run_evaluation("default", grouped, "folder", groups=r"S(\d+", device="cpu")
    with pytest.raises(ConfigError, match="--n-boot"):
        run_evaluation("default", grouped, "folder", n_boot=-1, device="cpu")


def test_no_intervals_with_zero_resamples(grouped, tmp_path):
    m = evaluate("default", grouped, "folder", n_boot=0, out=tmp_path / "out", device="cpu", grid=4)
    assert m["ci95"] is None
    report = (tmp_path / "out" / "report.md").read_text()
    assert f"| accuracy | {m['accuracy']:.4f} |" in report and "bootstrap" not in report
