"""Ensembles: voting logic on hand-made probabilities, weights fitted on real predictions, region
crops on a real face, save/load round trips, and ensembles used as models by the commands.

Members are two models shipped with ferkit (``vgg_fer.w15_fer2013`` and ``vgg_fer.w2_votes``: different widths,
targets and training runs), on a stratified subset of FER2013 PublicTest.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from ferkit.data.regions import REGION_POINTS, REGIONS
from ferkit.data.transforms import eval_transform
from ferkit.ensemble import (
    Ensemble,
    build_ensemble,
    crop_landmarks,
    fit_weights,
    load_members,
    majority_vote,
    member_probabilities,
    region_boxes,
    save_ensemble,
    soft_vote,
)
from ferkit.ensemble._build import labelled_faces, labels_in
from ferkit.ensemble.voting import accuracy, log_loss
from ferkit.errors import ConfigError, WeightsError
from ferkit.infer import Recognizer, load_image
from ferkit.models import load_model

from _paths import FER, REPO, SAMPLES

MEMBERS = ("vgg_fer.w15_fer2013", "vgg_fer.w2_votes")


# ------------------------------------------------------------------ voting on hand-made probabilities
def test_majority_vote_unanimous_tie_and_all_different():
    # unanimous: all three members say class 1
    p = np.array([[[0.2, 0.7, 0.1]], [[0.1, 0.5, 0.4]], [[0.3, 0.6, 0.1]]])
    assert majority_vote(p).argmax(1).tolist() == [1]
    # 2 votes beat 1 even when the lone voter is far more confident
    p = np.array([[[0.0, 1.0, 0.0]], [[0.45, 0.4, 0.15]], [[0.5, 0.3, 0.2]]])
    assert majority_vote(p).argmax(1).tolist() == [0]
    # a 1-1 tie between two members: the summed probabilities decide (class 2: 0.4+0.55 > class 0: 0.6+0.1)
    p = np.array([[[0.6, 0.0, 0.4]], [[0.1, 0.35, 0.55]]])
    assert majority_vote(p).argmax(1).tolist() == [2]
    # all different (three members, three classes): the highest summed probability wins
    p = np.array([[[0.5, 0.3, 0.2]], [[0.05, 0.5, 0.45]], [[0.3, 0.3, 0.4]]])
    assert majority_vote(p).argmax(1).tolist() == [1]  # sums 0.85, 1.10, 1.05
    out = majority_vote(p).numpy()
    assert np.allclose(out.sum(1), 1.0)


def test_soft_vote_weights_and_bad_weights():
    p = np.array([[[0.9, 0.1]], [[0.2, 0.8]]])
    assert soft_vote(p).argmax(1).tolist() == [0]                       # 0.55 vs 0.45
    assert soft_vote(p, [1, 3]).argmax(1).tolist() == [1]               # 0.375 vs 0.625
    assert np.allclose(soft_vote(p, [2, 2]).numpy(), soft_vote(p).numpy())
    with pytest.raises(ConfigError, match="weights"):
        soft_vote(p, [1.0])
    with pytest.raises(ConfigError, match="weights"):
        soft_vote(p, [-1.0, 2.0])


# ------------------------------------------------------------------ real members
@pytest.fixture(scope="module")
def members(one_thread):
    return load_members(MEMBERS)


@pytest.fixture(scope="module")
def val(members):
    """Both members' probabilities on 700 PublicTest faces, and the labels."""
    ens = Ensemble(members, "soft")
    faces, _ = labelled_faces(FER, "fer2013-folder", "PublicTest", ens.classes, limit=700)
    probs, kept = member_probabilities(ens, faces)
    return probs, labels_in(faces, kept, ens.classes), faces


def test_member_probabilities_match_each_models_own_preprocessing(members, val):
    """With one input size, the ensemble's input path is exactly each member's eval_transform."""
    probs, _, faces = val
    for i, (net, meta) in enumerate(members):
        t = eval_transform(meta["input"])
        x = torch.stack([t(faces.load_image(k)) for k in range(20)])
        with torch.inference_mode():
            own = torch.softmax(net(x) / float(meta.get("temperature") or 1.0), 1).numpy()
        assert np.abs(own - probs[i, :20]).max() < 1e-4


def test_fitted_weights_beat_or_equal_equal_weights_on_their_split(val):
    probs, y, _ = val
    equal = probs.mean(0)
    w_acc = fit_weights(probs, y, "accuracy")
    w_ll = fit_weights(probs, y, "logloss")
    assert np.isclose(w_acc.sum(), 1) and np.isclose(w_ll.sum(), 1) and (w_acc >= 0).all()
    assert accuracy(np.einsum("m,mnc->nc", w_acc, probs), y) >= accuracy(equal, y)
    assert log_loss(np.einsum("m,mnc->nc", w_ll, probs), y) <= log_loss(equal, y) + 1e-9
    # the members are different models, so the fitted weights are not simply equal
    assert not np.allclose(w_ll, 0.5, atol=1e-3)


# ------------------------------------------------------------------ regions
def test_region_crops_land_on_their_landmarks_for_a_real_face():
    image = load_image(SAMPLES / "obama.jpg")
    from ferkit.detect import crop_face, detect_faces

    face = crop_face(image, detect_faces(image).boxes[0], margin=0.1)
    points, found = crop_landmarks([face])
    assert found.all()
    h, w = face.shape[:2]
    boxes = region_boxes(points[0], w, h)
    for name, idx in REGION_POINTS.items():
        x0, y0, x1, y1 = boxes[name]
        pts = points[0][idx]
        assert ((pts[:, 0] >= x0).all() and (pts[:, 0] <= x1).all()
                and (pts[:, 1] >= y0).all() and (pts[:, 1] <= y1).all())
        assert (x1 - x0) < 0.7 * w  # a part of the face, not the whole crop
    centre = {k: ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for k, b in boxes.items()}
    assert centre["left_eye"][0] > centre["right_eye"][0]          # the person's left eye is on the image's right
    assert max(centre["left_eye"][1], centre["right_eye"][1]) < centre["nose"][1] < centre["mouth"][1]
    # the region crops are made from those boxes: the mouth view is the mouth box resized
    ens = Ensemble([(torch.nn.Identity(), {"classes": ["a"], "input": {"size": 96, "channels": 3, "mean": [0] * 3,
                                                                          "std": [1] * 3}})], "soft")
    import cv2

    x = torch.from_numpy(cv2.resize(face, (96, 96))).permute(2, 0, 1)[None].float() / 255
    views = ens.region_views(x)
    assert views.shape == (len(REGIONS), 1, 3, 96, 96)
    pts96, _ = crop_landmarks([cv2.resize(face, (96, 96))])
    mx0, my0, mx1, my1 = (round(v) for v in region_boxes(pts96[0], 96, 96)["mouth"])
    mouth = torch.nn.functional.interpolate(x[:, :, my0:my1, mx0:mx1], size=(96, 96), mode="bilinear")
    assert (views[REGIONS.index("mouth")] - mouth).abs().mean() < 0.05
    assert (views[REGIONS.index("rest")][0, :, my0 + 2:my1 - 2, mx0 + 2:mx1 - 2] == 0.5).all()  # greyed out


def test_region_landmarks_fall_back_to_the_whole_crop():
    flat = np.full((48, 48), 128, np.uint8)  # no face for dlib to find
    points, found = crop_landmarks([flat])
    assert not found[0] and points.shape == (1, 68, 2)
    assert (points[0] >= -10).all() and (points[0] <= 58).all()   # still landmarks, inside the crop


# ------------------------------------------------------------------ artifacts
@pytest.mark.parametrize(("method", "objective"), [("soft", "logloss"), ("vote", None), ("stack", None),
                                                   ("regions", None), ("regions", "logloss")])
def test_ensemble_round_trips_through_save_and_load(tmp_path, method, objective, one_thread):
    data = {"data": FER, "format": "fer2013-folder", "split": "PublicTest", "limit": 120}
    fit = data if objective or method == "stack" else {}
    ens, meta = build_ensemble(MEMBERS, method, fit=objective, **fit)
    path = save_ensemble(ens, meta, f"{tmp_path}/ens/")
    loaded, meta2 = load_model(tmp_path / "ens")
    assert isinstance(loaded, Ensemble) and meta2["method"] == method and meta2["classes"] == meta["classes"]
    faces, _ = labelled_faces(FER, "fer2013-folder", "PrivateTest", ens.classes, limit=24)
    t = eval_transform(meta["input"])
    x = torch.stack([t(faces.load_image(k)) for k in range(len(faces))])
    with torch.inference_mode():
        assert torch.equal(ens.eval()(x), loaded(x))
    if objective:   # weights fitted on the members' probabilities (for regions: on the views each votes on)
        assert meta2["weights"] == meta["weights"] and meta2["fit"]["logloss_fitted"] <= meta2["fit"]["logloss_equal"]
        assert meta2["fit"]["n_images"] == 120 and len(meta2["weights"]) == 2
    else:
        assert meta2["weights"] is None
    if method == "regions" and not objective:   # the papers' majority needs no data; a fit without data is refused
        with pytest.raises(ConfigError, match="needs validation data"):
            build_ensemble(MEMBERS, "regions", fit="accuracy")
        with pytest.raises(ConfigError, match="unknown weight objective 'best'"):
            build_ensemble(MEMBERS, "regions", fit="best", **data)
    # a member changed after the build is refused, naming the file
    member_json = min(path.parent.glob("member0-*.json"))
    raw = json.loads(member_json.read_text())
    raw["sha256"] = "0" * 64
    member_json.write_text(json.dumps(raw))
    with pytest.raises(WeightsError, match="member0"):
        load_model(tmp_path / "ens")


def test_linked_ensemble_refers_to_member_files(tmp_path, one_thread):
    from ferkit.models import WEIGHTS_DIR, shipped_models

    stems = [WEIGHTS_DIR / shipped_models()[m] for m in MEMBERS]
    ens, meta = build_ensemble(MEMBERS, "vote")
    path = save_ensemble(ens, meta, tmp_path / "linked", link=list(MEMBERS))   # shipped names, as `--link` gets them
    written = json.loads(path.read_text())
    assert [m["path"] for m in written["members"]] == [os.path.relpath(s, tmp_path) for s in stems]
    assert not list(tmp_path.glob("*.safetensors"))   # nothing copied
    loaded, _ = load_model(tmp_path / "linked")
    assert isinstance(loaded, Ensemble) and len(loaded.members) == 2


def test_members_with_different_classes_are_refused(members):
    net, meta = members[0]
    other = (net, {**meta, "classes": [*meta["classes"][:-1], "contempt"]})
    with pytest.raises(ConfigError, match="member 1.*needs every class"):
        Ensemble([members[0], other])


def test_a_ferplus_member_votes_over_the_first_members_classes(members, one_thread):
    """The shipped FER+ model (8 classes with contempt) beside a 7-class model: its probabilities, as the
    FER+ model gives them on its own (its preprocessing and temperature), re-ordered to the 7 classes and
    renormalised over them (contempt dropped)."""
    ferplus = load_model("ferplus")
    ens = Ensemble([members[0], ferplus], "soft")
    assert ens.classes == list(members[0][1]["classes"])
    crop = load_image(SAMPLES / "obama.jpg")[200:600, 250:650]
    x = torch.stack([eval_transform(ens.input_cfg)(crop)])
    net, meta = ferplus
    with torch.no_grad():
        probs = ens.member_probs(x)
        own = torch.softmax(net.eval()(eval_transform(meta["input"])(crop)[None]).float() / meta["temperature"], 1)[0]
    assert probs.shape == (2, 1, 7)
    assert probs.sum(-1).numpy() == pytest.approx(np.ones((2, 1)), abs=1e-5)
    fp = list(meta["classes"])
    expected = torch.stack([own[fp.index(c)] for c in ens.classes]) / (1 - own[fp.index("contempt")])
    assert torch.allclose(probs[1, 0], expected, atol=1e-6)


def test_mixed_input_sizes_and_channels_each_keep_their_preprocessing(members, one_thread):
    """A grey 48 px member next to an RGB 64 px one: the ensemble input is RGB 64 px; the grey member
    sees luma of that input resized to 48, which matches its own eval_transform closely."""
    from ferkit.models import create_model

    grey_net, grey_meta = members[1]
    rgb_net = create_model("vgg_fer", num_classes=7, in_chans=3).eval()
    rgb_meta = {"classes": grey_meta["classes"],
                "input": {"size": 64, "channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3}}
    ens = Ensemble([(grey_net, grey_meta), (rgb_net, rgb_meta)], "soft").eval()
    assert ens.input_cfg == {"size": 64, "channels": 3, "mean": [0.0] * 3, "std": [1.0] * 3}
    image = load_image(SAMPLES / "obama.jpg")
    from ferkit.detect import crop_face, detect_faces

    face = crop_face(image, detect_faces(image).boxes[0], margin=0.1)
    x = eval_transform(ens.input_cfg)(face)[None]
    with torch.inference_mode():
        probs = ens.member_probs(x)
        own_grey = torch.softmax(grey_net(eval_transform(grey_meta["input"])(face)[None]) / grey_meta["temperature"], 1)
        own_rgb = torch.softmax(rgb_net(eval_transform(rgb_meta["input"])(face)[None]), 1)
    assert (probs[0] - own_grey).abs().max() < 0.03
    assert (probs[1] - own_rgb).abs().max() < 1e-4


# ------------------------------------------------------------------ ensembles as models in the commands
@pytest.fixture(scope="module")
def saved_soft(tmp_path_factory, one_thread):
    out = tmp_path_factory.mktemp("ens") / "soft_ens"
    r = subprocess.run([sys.executable, "-m", "ferkit", "ensemble", "build", *MEMBERS, "--method", "soft",
                        "--fit", "accuracy", "--data", str(FER), "--format", "fer2013-folder", "--split", "PublicTest",
                        "--limit", "300", "--out", f"{out}/"], check=False, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout and (out / "model.json").is_file()
    return out


def test_ensemble_works_in_predict_and_evaluate(saved_soft):
    rec = Recognizer(str(saved_soft))
    result = rec.predict(SAMPLES / "two_people.jpg")
    assert len(result.faces) == 2
    assert all(abs(sum(f.probabilities.values()) - 1) < 1e-6 for f in result.faces)
    r = subprocess.run([sys.executable, "-m", "ferkit", "evaluate", "--model", str(saved_soft), "--data", str(FER),
                        "--format", "fer2013-folder", "--split", "PrivateTest", "--limit", "200", "--json",
                        "--no-progress", "--out", str(saved_soft.parent / "eval")],
                       check=False, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["model"]["arch"] == "ensemble" and m["n_images"] == 200 and m["accuracy"] > 0.45


def test_build_refuses_bad_input(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "ferkit", "ensemble", "build", *args], check=False,
                              capture_output=True, text=True, timeout=120)

    r = cli("vgg_fer.w15_fer2013", "--out", str(tmp_path / "a"))
    assert r.returncode == 2 and "at least 2 models" in r.stderr
    r = cli("vgg_fer.w15_fer2013", "no_such_model", "--method", "vote", "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "no_such_model" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli(*MEMBERS, "--method", "soft", "--fit", "accuracy", "--out", str(tmp_path / "c"))
    assert r.returncode == 2 and "needs validation data" in r.stderr
    r = cli(*MEMBERS, "--method", "median", "--out", str(tmp_path / "d"))
    assert r.returncode == 2 and "unknown ensemble method" in r.stderr


# ------------------------------------------------------------------ the one-command report
def test_report_table_matches_evaluate_and_is_copied_into_docs(tmp_path):
    from ferkit.evaluate import run_evaluation

    doc = tmp_path / "README.md"
    doc.write_text("# Doc\n\nbefore\n\n<!-- ferkit-ensemble-report:start -->\nold: 99.9%\n"
                   "<!-- ferkit-ensemble-report:end -->\n\nafter\n")
    out = tmp_path / "rep"
    cmd = [sys.executable, "-m", "ferkit", "ensemble", "report", *MEMBERS, "--data", str(FER), "--format",
           "fer2013-folder", "--limit", "70", "--out", str(out)]
    r = subprocess.run([*cmd, "--update-docs", str(doc)], check=False, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "report.json").read_text())
    rows = {(row["name"], row["tta"]): row for row in report["rows"]}
    names = report["context"]["models"]
    assert {(n, t) for n in names for t in ("none", "flip", "ten-crop")} <= rows.keys()
    for key in [("soft voting, equal weights", "none"), ("soft voting, weights fitted for accuracy", "flip"),
                ("majority voting", "none"), ("stacking (logistic regression)", "none"),
                ("region voting (members x face + 5 dlib regions)", "none")]:
        assert key in rows, key
    # a member's row is what `ferkit evaluate` gives for that model on the same subset
    ev = run_evaluation(MEMBERS[1], FER, "fer2013-folder", "PrivateTest", tta="flip", limit=70, device="cpu",
                        n_boot=0)
    assert rows[names[1], "flip"]["splits"]["PrivateTest"]["accuracy"] == pytest.approx(ev.metrics["accuracy"])
    assert rows[names[1], "flip"]["splits"]["PrivateTest"]["n_images"] == 70
    # fitted rows are in-sample on PublicTest: never below equal weights there
    pub = {k: v["splits"]["PublicTest"]["accuracy"] for k, v in rows.items()}
    assert pub["soft voting, weights fitted for accuracy", "none"] >= pub["soft voting, equal weights", "none"]
    # the table went into the doc between the markers; the text around them is kept; one table line per row
    text = doc.read_text()
    assert text.startswith("# Doc\n\nbefore\n\n") and text.endswith("\n\nafter\n") and "99.9%" not in text
    assert sum(line.startswith("| ") for line in text.splitlines()) == len(report["rows"]) + 1
    assert "ferkit ensemble report" in text and "--limit 70" in text
    # a doc without the markers is refused in one line before any work is done
    bare = tmp_path / "bare.md"
    bare.write_text("no markers\n")
    r = subprocess.run([*cmd, "--update-docs", str(bare)], check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and str(bare) in r.stderr and len(r.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ models trained on one region
def test_region_model_trains_on_its_cut_and_votes_on_that_region_only(tmp_path, one_thread):
    from ferkit.data.regions import REGIONS, cut_regions
    from ferkit.evaluate import run_evaluation
    from ferkit.export import ExportError, export_onnx
    from ferkit.models import RegionNet

    env = {**os.environ, "FERKIT_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "ferkit", "train", str(REPO / "configs" / "default_vgg_fer.yaml"),
            f"data.path={FER}", f"output_dir={tmp_path / 'runs'}", "name=mouth", "data.subset=120",
            "data.val_subset=40", "trainer.max_epochs=1", "model.kwargs.width=0.5", "data.num_workers=0",
            "trainer.progress_bar=false"]
    r = subprocess.run([*base, "input.region=ear"], check=False, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and "input.region" in r.stderr and "'ear'" in r.stderr
    r = subprocess.run([*base, "input.region=mouth"], check=False, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr
    run = next((tmp_path / "runs").glob("mouth-*"))
    assert json.loads((run / "model.json").read_text())["input"]["region"] == "mouth"
    assert "mouth cut from each face: dlib found the face on" in r.stderr

    # the training crops are what RegionNet cuts at inference from the same (resized) faces: dlib ran
    # once per subset and its landmarks are cached; cutting from them gives RegionNet's cut
    cached = sorted((tmp_path / "cache" / "landmarks").glob("48-1-*.npz"))
    assert len(cached) == 2                                       # training and validation subsets
    val_faces = training_val_subset(40)
    x = torch.stack([eval_transform({"size": 48, "channels": 1, "mean": [0.0], "std": [1.0]})(val_faces.load_image(i))
                     for i in range(len(val_faces))])
    views, found = cut_regions(x)
    stored = [np.load(f) for f in cached]
    match = [z for z in stored if len(z["points"]) == len(x)]
    assert len(match) == 1 and (match[0]["found"] == found).mean() > 0.9
    from_cache, _ = cut_regions(x, (match[0]["points"], match[0]["found"]))
    mouth_at = REGIONS.index("mouth")
    assert (from_cache[mouth_at] - views[mouth_at]).abs().mean() < 0.01

    # every command takes it as a model; a region-voting ensemble gives it the mouth only
    model, _ = load_model(run)
    assert isinstance(model, RegionNet) and model.region == "mouth"
    ev = run_evaluation(run, FER, "fer2013-folder", "PublicTest", limit=30, device="cpu", n_boot=0)
    assert ev.metrics["n_images"] == 30
    members = load_members(["vgg_fer.w15_fer2013", run])
    ens = Ensemble(members, "regions").eval()
    inp = x[:8]
    with torch.no_grad():
        views, _ = cut_regions(inp)
        full = members[0][0](((views.flatten(0, 1)) - 0.5) / 0.5) / members[0][1].get("temperature", 1.0)
        mouth = (members[1][0].net((views[REGIONS.index("mouth")] - 0.5) / 0.5)
                 / (members[1][1].get("temperature") or 1.0))
        # the whole-face member votes on the face and the regions no member learnt (not the mouth)
        full = full.softmax(1).reshape(6, 8, -1)[[i for i in range(6) if i != mouth_at]]
        by_hand = majority_vote(torch.cat([full, mouth.softmax(1)[None]]).double())
        assert torch.allclose(ens(inp).exp(), by_hand.float(), atol=1e-5)
        # with weights: each member's probabilities averaged over its views, then weighted
        weighted = Ensemble(members, "regions", weights=[0.7, 0.3]).eval()
        by_hand = 0.7 * full.mean(0) + 0.3 * mouth.softmax(1)
        assert torch.allclose(weighted(inp).exp(), by_hand, atol=1e-5)
    with pytest.raises(ExportError, match="one facial region"):
        export_onnx(run, tmp_path / "m.onnx")


def training_val_subset(n: int):
    """The validation subset `ferkit train` takes with data.val_subset=n (seed 42)."""
    from ferkit.data import load_dataset, stratified_subset

    faces = load_dataset(FER, "fer2013-folder").split("PublicTest")
    return faces.select(stratified_subset(faces.labels, n, 42))


def test_region_cuts_leave_out_undecodable_images_and_bad_regions_are_one_line(tmp_path, one_thread):
    import shutil

    from ferkit.data import load_dataset
    from ferkit.data.regions import region_faceset
    from ferkit.models import create_model, save_model

    root = tmp_path / "set"
    for cls in ("happy", "sad"):
        (root / cls).mkdir(parents=True)
        for src in sorted((FER / "test" / cls).glob("PublicTest_*.jpg"))[:3]:
            shutil.copy(src, root / cls / src.name)
    (root / "sad" / "broken.jpg").write_bytes(b"not a jpeg at all")
    faces = load_dataset(root, "folder")
    cut = region_faceset(faces, {"size": 48, "channels": 1, "region": "nose"}, cache_dir=tmp_path / "cache")
    assert len(faces) == 7 and len(cut) == 6 and cut.images.shape == (6, 48, 48)
    assert any("broken.jpg" in n and "left out" in n for n in cut.notes)
    # every region is cut from one dlib pass: the landmarks are cached once per set and crop size
    (marks,) = (tmp_path / "cache" / "landmarks").glob("*.npz")
    mouth = region_faceset(faces, {"size": 48, "channels": 1, "region": "mouth"}, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache" / "landmarks").glob("*.npz")) == [marks]
    assert mouth.images.shape == (6, 48, 48) and not np.array_equal(mouth.images, cut.images)
    # a damaged cache is not trusted: dlib runs again and the cut is the same
    marks.write_bytes(b"not an npz")
    again = region_faceset(faces, {"size": 48, "channels": 1, "region": "nose"}, cache_dir=tmp_path / "cache")
    assert np.array_equal(again.images, cut.images) and np.load(marks)["points"].shape == (6, 68, 2)
    with pytest.raises(ConfigError, match=r"input.region: unknown region 'chin'"):
        region_faceset(faces, {"size": 48, "channels": 1, "region": "chin"})

    # a model file whose JSON names an unknown region is refused on load, naming the file and field
    meta = {"classes": ["happy", "sad"], "input": {"size": 48, "channels": 1, "mean": [0.5], "std": [0.5]},
            "model_kwargs": {"width": 0.5}}
    stem = tmp_path / "m"
    save_model(create_model("vgg_fer", num_classes=2, in_chans=1, width=0.5), stem, meta)
    doc = json.loads(stem.with_suffix(".json").read_text())
    doc["input"]["region"] = "chin"
    stem.with_suffix(".json").write_text(json.dumps(doc))
    with pytest.raises(WeightsError, match=r"m\.json.*input\.region"):
        load_model(stem)
