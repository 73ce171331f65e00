"""`ferkit papers`: each paper's runs load as configs, a table is built from real (short) runs on real
FER2013 faces, reused without retraining, and the ImageNet recipe runs from a TORCH_HOME cache."""
from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil

import numpy as np
import pytest
import torch
import yaml

from ferkit.cli import main
from ferkit.errors import ConfigError
from ferkit.models import resolve, shipped_models
from ferkit.papers import (
    PAPERS,
    SCRATCH_EPOCHS,
    choose_recipe,
    find_run,
    get_paper,
    recipe_config,
    run_state,
)
from ferkit.train.callbacks import read_epoch_metrics
from ferkit.train.config import TrainConfig

from _paths import REPO

SHARED = REPO.parent / "shared" / "data"   # the papers' configs name ../shared/data, relative to the repository
QUICK = ["--set", "data.subset=300", "--set", "data.val_subset=200", "--set", "trainer.max_epochs=1", "--limit", "140"]


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    if not (SHARED / "fer2013").is_dir():
        pytest.skip(f"the papers' configs read ../shared/data from the repository; not found at {SHARED}")
    monkeypatch.chdir(REPO)


def test_every_run_of_every_paper_is_a_loadable_config_in_both_recipes(tmp_path):
    for paper in PAPERS.values():
        for run in paper.runs:
            scratch = recipe_config(paper, run, "scratch48", tmp_path)
            assert (scratch.input.size, scratch.input.channels, scratch.model.pretrained) == (48, 1, False)
            assert scratch.phases == [] and scratch.name == f"{paper.key}_{run.key}_scratch48"
            exact = recipe_config(paper, run, "imagenet", tmp_path)
            assert exact.model.pretrained is True
            assert exact.input.size in (48, 224)
        for ens in paper.ensembles:      # the paper's runs, or shipped models by name
            assert all(m in {r.key for r in paper.runs} or m in shipped_models() for m in ens.members), ens.key
    with pytest.raises(Exception, match="no paper 'paper9'"):
        get_paper("paper9")
    # region voting's members: one run on the whole face and one per region of ferkit.data.regions
    from ferkit.data.regions import REGIONS

    regions = [recipe_config(PAPERS["paper2"], run, "scratch48", tmp_path).input.region
               for run in PAPERS["paper2"].runs if run.key.startswith("vgg_")]
    assert regions == [None, *(r for r in REGIONS if r != "face")]


def test_recipes_for_48px_faces_and_their_rows_in_both_recipes(tmp_path):
    """The rows that the paper's recipe leaves far below a network of their size have their own recipe for
    48 px faces (AdamW one-cycle at 3e-3, batches of 128, the whole schedule) under both recipes, so that
    even from ImageNet weights they are not a second copy of the paper's row."""
    for paper, key, paper_key in (("paper1", "mobilenet_v2_48", "mobilenet_v2"), ("paper1", "resnet50_48", "resnet50"),
                                  ("paper2", "spp_net_48", "spp_net"), ("paper2", "inception_v3_48", "inception_v3"),
                                  ("paper2", "resnet50_48", "resnet50")):
        p = PAPERS[paper]
        for recipe in ("scratch48", "imagenet"):
            cfg = recipe_config(p, p.run(key), recipe, tmp_path)
            assert (cfg.optim.name, cfg.optim.lr, cfg.schedule.name, cfg.data.batch_size) == ("adamw", 3e-3, "onecycle",
                                                                                             128)
            assert not cfg.trainer.early_stopping.enabled and (cfg.input.size, cfg.input.channels) == (48, 1)
            assert cfg.model.kwargs.get("stem_stride", 2) == (1 if key.startswith("mobilenet") else 2)
            theirs = recipe_config(p, p.run(paper_key), recipe, tmp_path)
            assert theirs.model.name == cfg.model.name and theirs.optim.name != "adamw"


def test_a_table_says_why_a_row_is_far_from_the_published_figure():
    """From the tracked paper2.json, written before the reasons existed: the reason stands beside each row
    more than 5 points from its published figure (AffectNet's 78.5% against SPP-net's 52.06% here), and
    not beside rows without a published figure; a run recorded before the precision was says so."""
    from ferkit.papers import GAP_POINTS, paper_markdown

    doc = json.loads((REPO / "reports" / "papers" / "paper2.json").read_text())
    assert all("differs" not in row for row in doc["rows"])
    table = paper_markdown(doc)
    reason = PAPERS["paper2"].differs
    first = table.split("\n## ")[1]                  # the first evaluation set's table
    checked = 0
    for row in doc["rows"]:
        line = next(ln for ln in first.splitlines() if ln.startswith(f"| {row['label']} |"))
        m = (row.get("metrics") or {}).get("test")
        pub = row["published"].get("accuracy")
        far = m is not None and pub is not None and abs(100 * m["accuracy"] - pub) > GAP_POINTS
        assert line.endswith(f"| {reason} |") == far, line
        checked += far
    assert checked >= 1
    # a run recorded before the precision and the CPU flags were: its row says so
    said = "precision and CPU flags not recorded then"
    assert said not in table                                              # every paper2 run records them now
    row = next(r for r in doc["rows"] if r["key"] == "spp_net")
    del row["run"]["precision"]
    row["run"]["machine"] = "AMD EPYC (x86_64), 2 cores, no GPU"
    notes = [ln for ln in paper_markdown(doc).splitlines() if said in ln]
    assert len(notes) == 1 and notes[0].startswith("- SPP-net, the paper's recipe: ")


def test_a_run_of_another_recipe_is_not_reused(tmp_path):
    p = PAPERS["paper4"]
    cfg = recipe_config(p, p.run("resnet18"), "scratch48", tmp_path)
    other = recipe_config(p, p.run("resnet18"), "scratch48", tmp_path, overrides=["optim.lr=0.5"])
    folder = tmp_path / f"{cfg.name}-20260101-000000"
    folder.mkdir()
    (folder / "config.yaml").write_text(other.to_yaml())
    assert find_run(tmp_path, cfg) is None
    assert find_run(tmp_path, other) == folder

    # how fast a run went (its precision, threads, loader workers) does not make it another run
    fast = recipe_config(p, p.run("resnet18"), "scratch48", tmp_path,
                         overrides=["trainer.precision=bf16-mixed", "trainer.threads=1", "data.num_workers=0"])
    folder.rename(tmp_path / f"{cfg.name}-gpu")
    (tmp_path / f"{cfg.name}-gpu" / "config.yaml").write_text(fast.to_yaml())
    assert find_run(tmp_path, cfg) == tmp_path / f"{cfg.name}-gpu"

    # of two folders of the same run, the complete one, whatever their names: here the one moved in as
    # -gpu is stopped after 3 epochs, a later-dated one complete
    (tmp_path / f"{cfg.name}-gpu" / "metrics.csv").write_text("epoch,val_acc,epoch_time_s\n0,0.3,10\n1,0.4,10\n"
                                                               "2,0.45,10\n")
    complete = tmp_path / f"{cfg.name}-20260102-000000"
    complete.mkdir()
    (complete / "config.yaml").write_text(cfg.to_yaml())
    (complete / "metrics.csv").write_text("epoch,val_acc,epoch_time_s\n" + "".join(
        f"{e},0.5,10\n" for e in range(cfg.planned_epochs)))
    os.utime(complete / "metrics.csv", (0, 0))              # older than the stopped one's
    assert find_run(tmp_path, cfg) == complete
    # a folder moved in with its config and no metrics (nothing trained yet) hides neither
    (tmp_path / f"{cfg.name}-zzz").mkdir()
    (tmp_path / f"{cfg.name}-zzz" / "config.yaml").write_text(cfg.to_yaml())
    assert find_run(tmp_path, cfg) == complete


def test_a_run_stopped_early_is_complete_by_its_own_metric(tmp_path):
    """A run that early stopping ended counts as complete: judged by the metric and min_delta it monitored
    (here the validation loss, whose gains under 0.01 do not count), not by the validation accuracy."""
    p = PAPERS["paper4"]
    cfg = recipe_config(p, p.run("resnet18"), "scratch48", tmp_path, overrides=[
        "trainer.early_stopping.enabled=true", "trainer.early_stopping.monitor=val/loss",
        "trainer.early_stopping.patience=2", "trainer.early_stopping.min_delta=0.01"])
    folder = tmp_path / "run"
    folder.mkdir()
    for losses, complete in (((1.5, 1.4, 1.395, 1.392), True), ((1.5, 1.4, 1.3, 1.395, 1.2), False)):
        (folder / "metrics.csv").write_text("epoch,val_acc,val_loss,epoch_time_s\n" + "".join(
            f"{e},{0.3 + 0.05 * e},{loss},10\n" for e, loss in enumerate(losses)))    # the accuracy always rises
        state = run_state(folder, cfg)
        assert state.complete is complete and state.epochs_done == len(losses) < state.epochs_planned, losses


def test_damaged_records_are_one_line(tmp_path, capsys, caplog):
    """A run folder's unreadable machine.json is named in one warning (the run still counts, its machine
    unknown); a damaged <paper>.json and a missing reports folder are one-line errors naming the path."""
    p = PAPERS["paper4"]
    cfg = recipe_config(p, p.run("resnet18"), "scratch48", tmp_path)
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "metrics.csv").write_text("epoch,val_acc,epoch_time_s\n0,0.3,10\n")
    (folder / "machine.json").write_text("{cut short")
    with caplog.at_level(logging.WARNING, logger="ferkit"):
        state = run_state(folder, cfg)
    assert state.machine is None and state.epochs_done == 1
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and warned[0].startswith(f"{folder / 'machine.json'}: not readable JSON")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "paper1.json").write_text("[]")
    assert main(["papers", "table", "paper4", "--reports-dir", str(reports), "--runs-dir", str(tmp_path / "none"),
                 "--recipe", "scratch48"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"ferkit: error: {reports / 'paper1.json'}: not a ferkit-paper/1 table "
                   "(`ferkit papers table paper1` writes it again)"]
    assert main(["papers", "figures", "--reports-dir", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"ferkit: error: {tmp_path / 'nothing'}: no recorded rows here (`ferkit papers run` writes them)"]
    # a row's damaged outputs.npz (cut short, empty, or arrays that do not fit its ids) is one warning naming it
    from ferkit.papers._outputs import MemberOutputs, read_outputs, write_outputs

    row = tmp_path / "row"
    good = MemberOutputs("m", "sha", None, ["a", "b"], None, {"size": 48, "channels": 1}, {"test": np.array(["x"])},
                         {"test": {"face": np.array([[0.25, 0.75]])}}, {}, {"test": {"data": "d", "format": "f",
                                                                                      "split": "s"}})
    write_outputs(good, row)
    back = read_outputs(row, print)
    assert back.probs["test"]["face"].tolist() == [[0.25, 0.75]] and back.sets == good.sets
    whole = (row / "outputs.npz").read_bytes()
    bad_shape = MemberOutputs(**{**vars(good), "probs": {"test": {"face": np.array([[0.25, 0.75, 0.0]])}}})
    for damage in (lambda: (row / "outputs.npz").write_bytes(whole[: len(whole) // 2]),
                   lambda: (row / "outputs.npz").write_bytes(b""), lambda: write_outputs(bad_shape, row)):
        damage()
        warned = []
        assert read_outputs(row, warned.append) is None
        assert len(warned) == 1 and warned[0].startswith(f"{row / 'outputs.npz'}: unreadable (")


def test_papers_config_writes_each_runs_training_config(tmp_path, capsys):
    """`ferkit papers config`: the configs `ferkit papers run` trains (with the overrides a recorded row was
    trained with), as YAML to train elsewhere; --missing leaves out the runs the tables have."""
    reports, p4 = tmp_path / "reports", PAPERS["paper4"]
    (reports / "paper4" / "resnet50" / "test").mkdir(parents=True)    # a recorded row: row.json and its metrics
    (reports / "paper4" / "resnet50" / "row.json").write_text(json.dumps(
        {"config": p4.run("resnet50").config, "recipe": "scratch48", "overrides": ["trainer.max_epochs=3"],
         "status": "complete", "eval_key": {"limit": None}}))
    (reports / "paper4" / "resnet50" / "test" / "metrics.json").write_text("{}")
    base = ["--recipe", "scratch48", "--reports-dir", str(reports), "--runs-dir", str(tmp_path / "runs")]
    assert main(["papers", "config", "paper4", *base]) == 0
    want = [recipe_config(p4, p4.run(k), "scratch48", tmp_path / "runs",
                          overrides=["trainer.max_epochs=3"] if k == "resnet50" else [])
            for k in ("resnet18", "resnet34", "resnet50")]
    assert capsys.readouterr().out == "---\n".join(c.to_yaml() for c in want)
    assert want[2].trainer.max_epochs == 3
    assert main(["papers", "config", "paper4", "--runs", "resnet50", *base]) == 0    # named: no recorded overrides
    named = capsys.readouterr().out
    assert TrainConfig.from_dict(yaml.safe_load(named)).trainer.max_epochs == SCRATCH_EPOCHS
    assert main(["papers", "config", *base, "--runs", "resnet50", "paper4"]) == 0   # the paper after --runs
    assert capsys.readouterr().out == named
    assert main(["papers", "config", *base, "paper4"]) == 0      # the paper after the options
    assert capsys.readouterr().out == "---\n".join(c.to_yaml() for c in want)
    for bad, said in ((["--runs", "paper4"], "--runs needs a run key before the paper (paper4)"),
                      (["paper4", "resnet50"], "unrecognized arguments: paper4 resnet50")):
        with pytest.raises(SystemExit) as exit_:
            main(["papers", "config", *base, *bad])
        assert exit_.value.code == 2 and said in capsys.readouterr().err
    out = tmp_path / "configs"
    assert main(["papers", "config", *base, "--out", str(out)]) == 0
    written = capsys.readouterr().out.split()
    assert written == [str(out / f"{p.key}_{r.key}_scratch48.yaml") for p in PAPERS.values() for r in p.runs]
    p2 = PAPERS["paper2"]
    assert (TrainConfig.load(out / "paper2_spp_net_48_scratch48.yaml").to_dict()
            == recipe_config(p2, p2.run("spp_net_48"), "scratch48", tmp_path / "runs").to_dict())
    # --missing: not paper4's resnet50 (recorded complete) nor resnet18 (complete in the runs folder)
    done = tmp_path / "runs" / f"{want[0].name}-20260101-000000"
    done.mkdir(parents=True)
    (done / "config.yaml").write_text(want[0].to_yaml())
    (done / "metrics.csv").write_text("epoch,val_acc,epoch_time_s\n" + "".join(
        f"{e},0.5,10\n" for e in range(SCRATCH_EPOCHS)))
    assert main(["papers", "config", "paper4", "--missing", *base]) == 0
    assert capsys.readouterr().out == want[1].to_yaml()
    # ... and lists a recorded run while an ensemble of it has no row recorded with its members' weights:
    # building that needs the run's folder
    p1 = PAPERS["paper1"]

    def record(key: str, row: dict) -> None:
        for ev in p1.evals:
            (reports / "paper1" / key / ev.key).mkdir(parents=True, exist_ok=True)
            (reports / "paper1" / key / ev.key / "metrics.json").write_text("{}")
        (reports / "paper1" / key / "row.json").write_text(json.dumps({**row, "status": "complete"}))

    shas = {key: f"sha-{key}" for key in p1.run_keys}
    for key in p1.run_keys:
        record(key, {"config": p1.run(key).config, "recipe": "scratch48", "overrides": [],
                     "eval_key": {"sha256": shas[key], "limit": None}})

    def missing_runs() -> list[str]:
        assert main(["papers", "config", "paper1", "--missing", *base]) == 0
        return [d["name"] for d in yaml.safe_load_all(capsys.readouterr().out) if d]

    assert missing_runs() == [f"paper1_{k}_scratch48" for k in p1.run_keys]
    assert len(p1.ensembles) >= 2
    stales = [i == 1 for i in range(len(p1.ensembles))]     # the second ensemble recorded with other weights
    for ens, stale in zip(p1.ensembles, stales, strict=True):
        record(ens.key, {"members": list(ens.members), "method": ens.method, "fit": ens.fit,
                         "fit_split": ens.fit_split, "eval_key": {"limit": None, "sha256": [
                             "x" if stale and m != "resnet50" else shas[m] for m in ens.members]}})
    stale = set(p1.ensembles[1].members)
    assert missing_runs() == [f"paper1_{k}_scratch48" for k in p1.run_keys if k in stale]
    # ... unless the run's row recorded its outputs (what its ensembles are measured from) with its weights
    from ferkit.papers._outputs import MemberOutputs, member_needs, write_outputs

    recorded, other = sorted(stale)
    views, sets = member_needs(p1, recorded)
    probs = {s.key: {v: np.full((2, 8), 1 / 8) for v in views} for s in sets}
    ids = {s.key: np.array(["a.png", "b.png"]) for s in sets}
    defs = {s.key: {"data": s.data, "format": s.format, "split": s.split} for s in sets}
    outputs = MemberOutputs(recorded, shas[recorded], None, ["c"] * 8, None, {"size": 48, "channels": 1}, ids, probs,
                            {}, defs)
    write_outputs(outputs, reports / "paper1" / recorded)
    assert missing_runs() == [f"paper1_{other}_scratch48"]
    write_outputs(MemberOutputs(**{**vars(outputs), "sha256": "other weights"}), reports / "paper1" / recorded)
    assert missing_runs() == [f"paper1_{k}_scratch48" for k in p1.run_keys if k in stale]
    for bad in (["--runs", "resnet18"], ["--pretrained", "resnet18=x.pth"]):
        assert main(["papers", "config", *bad]) == 2
        assert f"{bad[0]} needs a paper" in capsys.readouterr().err
    assert main(["papers", "config", "paper4", "--recipe", "scratch48", "--pretrained", "resnet18=x.pth"]) == 2
    assert "--pretrained resnet18=x.pth: the scratch48 recipe trains from scratch" in capsys.readouterr().err
    # an option the action does not use is refused, not ignored
    for action, bad, said in (("table", ["paper4", "--missing"], "--missing"), ("config", ["--limit", "5"], "--limit"),
                              ("figures", ["--runs", "resnet18"], "--runs"), ("list", ["paper1"], "paper1")):
        with pytest.raises(SystemExit) as exit_:
            main(["papers", action, *bad])
        assert exit_.value.code == 2 and f"papers {action} does not take {said}" in capsys.readouterr().err


def test_papers_run_writes_the_table_from_the_rows_metrics_and_table_reuses_it(tmp_path, capsys, caplog):
    runs, reports = tmp_path / "runs", tmp_path / "reports"
    args = ["--runs-dir", str(runs), "--reports-dir", str(reports), "--recipe", "scratch48", *QUICK]
    assert main(["papers", "run", "paper4", "--runs", "resnet18", *args]) == 0
    table = capsys.readouterr().out
    row = reports / "paper4" / "resnet18"
    metrics = json.loads((row / "test" / "metrics.json").read_text())
    assert metrics["n_images"] == 140 and metrics["dataset"]["split"] == "PublicTest+PrivateTest"
    assert metrics["output_dir"] == str(row / "test")      # not the temporary folder it was written in
    info = json.loads((row / "row.json").read_text())
    assert info["recipe"] == "scratch48" and info["run"]["epochs_done"] == 1 and info["status"] == "complete"
    assert (row / "curves.png").is_file() and (row / "test" / "confusion_matrix.png").is_file()
    line = next(ln for ln in table.splitlines() if ln.startswith("| ResNet18 |"))
    assert f"[{100 * metrics['accuracy']:.2f}](paper4/resnet18/test/report.md)" in line
    assert f"{100 * metrics['weighted_f1']:.2f}" in line and f"{metrics['mean_auc']:.3f}" in line
    assert "| 65.00 | 0.898 |" in line                            # the paper's figures beside ours
    # more than 5 points below the published figure (one epoch on 300 faces): the row says why
    assert 100 * metrics["accuracy"] < 60 and line.endswith(f"| {PAPERS['paper4'].differs} |")
    index = (reports / "README.md").read_text()
    assert re.search(rf"\| ResNet18 \| .*\| 65\.00 \(.*\) \| {re.escape(PAPERS['paper4'].differs)} \|", index)
    # the recipes' notes give each run's training time, precision and machine
    assert re.search(r"- ResNet18: .* trained \d+ (min|s) in (32-true|bf16-mixed|16-mixed) on .*, \d+ cores", table)
    assert re.search(r"\| ResNet34 \| scratch48 \(not trained\) \|", table)
    assert (reports / "paper4.md").read_text() == table
    assert (json.loads((reports / "paper4.json").read_text())["rows"][0]["metrics"]["test"]["accuracy"]
            == metrics["accuracy"])
    assert ".new-" not in (reports / "paper4.json").read_text()

    # `table` trains nothing and reuses the evaluation of unchanged weights; without --set, each row
    # keeps the overrides it was trained with (a run given a shorter budget, say)
    base = ["--runs-dir", str(runs), "--reports-dir", str(reports), "--recipe", "scratch48", "--limit", "140"]
    stamp = (row / "test" / "metrics.json").stat().st_mtime_ns
    assert main(["papers", "table", "paper4", *base]) == 0
    assert capsys.readouterr().out == table
    assert len(list(runs.iterdir())) == 1
    assert (row / "test" / "metrics.json").stat().st_mtime_ns == stamp

    # a run stopped before its last epoch is resumed, in its own folder, by the same command
    (folder,) = runs.iterdir()
    cfg = TrainConfig.load(folder / "config.yaml")
    cfg.trainer.max_epochs = 2                     # as if it had been started for 2 epochs and killed after 1
    (folder / "config.yaml").write_text(cfg.to_yaml())
    longer = [a if a != "trainer.max_epochs=1" else "trainer.max_epochs=2" for a in args]
    killed = row / ".test.new-99999999"       # what an evaluation killed midway left: removed by the next one
    killed.mkdir()
    (killed / "metrics.json").write_text("{}")
    assert main(["papers", "run", "paper4", "--runs", "resnet18", *longer]) == 0
    capsys.readouterr()
    assert list(runs.iterdir()) == [folder] and not killed.exists()
    assert not [p.name for p in row.iterdir() if p.name.startswith(".")]
    assert [r["epoch"] for r in read_epoch_metrics(folder / "metrics.csv")] == [0, 1]
    assert json.loads((row / "row.json").read_text())["run"]["epochs_done"] == 2

    assert main(["papers", "table", "paper4", *base]) == 0
    kept = capsys.readouterr().out
    line = next(ln for ln in kept.splitlines() if ln.startswith("| ResNet18 |"))
    accuracy = json.loads((row / "test" / "metrics.json").read_text())["accuracy"]
    assert "| scratch48, 2 epochs |" in line and f"[{100 * accuracy:.2f}](paper4/resnet18/test/report.md)" in line
    assert "overrides data.subset=300 data.val_subset=200 trainer.max_epochs=2" in kept
    assert "Command: `ferkit papers run paper4 --recipe scratch48 --limit 140`" in kept
    assert list(runs.iterdir()) == [folder]

    # a fresh clone has the reports but not the run folders (runs/ is not in the repository): the
    # table keeps the recorded rows instead of calling them untrained, and rewrites none of them
    recorded = (row / "row.json").read_text()
    folder.rename(tmp_path / "elsewhere")
    assert main(["papers", "table", "paper4", *longer]) == 0
    again = capsys.readouterr().out
    line = next(ln for ln in again.splitlines() if ln.startswith("| ResNet18 |"))
    metrics = json.loads((row / "test" / "metrics.json").read_text())
    assert f"[{100 * metrics['accuracy']:.2f}](paper4/resnet18/test/report.md)" in line and "2 epochs" in line
    assert "the run folder is not on this machine" in again and (row / "row.json").read_text() == recorded
    assert main(["papers", "table", "paper4", *args]) == 0          # other overrides: not the recorded row
    assert re.search(r"\| ResNet18 \| scratch48 \(not trained\) \|", capsys.readouterr().out)

    # a damaged recorded file is named in one warning, the row is not taken as recorded, the file is kept
    (row / "test" / "metrics.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="ferkit"):
        assert main(["papers", "table", "paper4", *longer]) == 0
    assert re.search(r"\| ResNet18 \| scratch48 \(not trained\) \|", capsys.readouterr().out)
    warned = [r.getMessage() for r in caplog.records if "metrics.json" in r.getMessage()]
    assert len(warned) == 1 and "not readable JSON" in warned[0] and warned[0].endswith("not reused")
    assert (row / "test" / "metrics.json").read_text() == "{not json"


def test_the_imagenet_recipe_runs_from_a_torch_home_cache(tmp_path, monkeypatch, capsys):
    """auto picks the paper's exact recipe when torchvision's weights file is in TORCH_HOME: layer4 and
    the head learn, every other weight keeps the cached ImageNet one (a state_dict this test made; the
    first convolution's RGB kernels summed for grey faces); batch-norm running statistics are buffers, not
    weights, and follow the faces as torchvision's fine-tuning does."""
    from safetensors.torch import load_file
    from torchvision.models import resnet18

    from ferkit.models import imagenet_cache_file

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(0)
    imagenet = resnet18()
    state = imagenet.state_dict()
    cached = imagenet_cache_file("resnet18")
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)
    p = PAPERS["paper4"]
    assert choose_recipe(p.run("resnet18"), "auto") == "imagenet"
    assert choose_recipe(p.run("resnet34"), "auto") == "scratch48"
    # a network torchvision has no ImageNet weights of is trained from scratch under either recipe, its
    # region kept (region voting's members)
    nose = PAPERS["paper2"].run("vgg_nose")
    assert choose_recipe(nose, "imagenet") == "scratch48"
    assert recipe_config(PAPERS["paper2"], nose, "scratch48", tmp_path).input.region == "nose"
    assert main(["papers", "run", "paper4", "--runs", "resnet18", "--runs-dir", str(tmp_path / "runs"),
                 "--reports-dir", str(tmp_path / "reports"), *QUICK]) == 0
    assert "| ResNet18 | imagenet, 1 epoch |" in capsys.readouterr().out
    (folder,) = (tmp_path / "runs").iterdir()
    trained = load_file(folder / "model.safetensors")
    weights = [name for name, _ in imagenet.named_parameters()]
    for name in weights:
        cached = state[name].sum(1, keepdim=True) if name == "conv1.weight" else state[name]
        if name.startswith(("layer4.", "fc.")):
            assert name.startswith("fc.") or not torch.equal(trained[name], cached), name     # learnt
        else:
            assert torch.equal(trained[name], cached), name                                   # frozen
    assert trained["fc.weight"].shape == (7, 512) and trained["fc.bias"].shape == (7,)       # a new head


def test_region_voting_rows_of_region_trained_runs_and_a_shipped_model(tmp_path, monkeypatch, capsys):
    """paper2's region voting: a vgg_fer member per dlib region (landmarks found once per subset and
    cached) with a whole-face run, and with the shipped model as the whole-face member."""
    monkeypatch.setenv("FERKIT_CACHE_DIR", str(tmp_path / "cache"))
    runs, reports = tmp_path / "runs", tmp_path / "reports"
    keys = ["vgg_face", "vgg_left_eye", "vgg_right_eye", "vgg_nose", "vgg_mouth", "vgg_rest"]
    args = ["--runs-dir", str(runs), "--reports-dir", str(reports), *QUICK, "--limit", "60"]
    assert main(["papers", "run", "paper2", "--runs", *keys, *args]) == 0
    table = capsys.readouterr().out
    assert len(list(runs.iterdir())) == 6
    assert len(list((tmp_path / "cache" / "landmarks").glob("48-1-*.npz"))) == 2     # train and validation subsets
    for key in keys[1:]:
        cfg = json.loads((next(runs.glob(f"paper2_{key}_scratch48-*")) / "model.json").read_text())
        assert cfg["input"]["region"] == key.removeprefix("vgg_")
    row = reports / "paper2" / "region_vote_shipped"
    info = json.loads((row / "row.json").read_text())
    assert info["status"] == "complete" and info["members"][0] == "vgg_fer.w15_fer2013"
    assert info["eval_key"]["sha256"][0] == resolve("vgg_fer.w15_fer2013").sha256
    evaluated = {ev: json.loads((row / ev / "metrics.json").read_text()) for ev in ("test", "ferplus_test", "private")}
    assert all(m["region_landmarks"]["faces"] == m["n_images"] for m in evaluated.values())   # cut once per face
    found = evaluated["test"]["region_landmarks"]
    notes = (reports / "paper2.md").read_text()
    assert (f"dlib found the face on the upscaled crop for {found['faces'] - found['fallback']} of 60 faces of the "
            "FER2013 test (7,178)") in notes
    # the same votes with weights fitted for accuracy on (a subset of) PublicTest, and the shipped model alone
    fitted = json.loads((reports / "paper2" / "region_fitted_shipped" / "row.json").read_text())
    assert len(fitted["weights"]) == 6 and abs(sum(fitted["weights"]) - 1) < 1e-6
    assert "regions, weights " in table and "(fitted for accuracy on PublicTest)" in table
    alone = json.loads((reports / "paper2" / "shipped_vgg_fer" / "private" / "metrics.json").read_text())
    assert (alone["n_images"] == 60
            and f"[{100 * alone['accuracy']:.2f}](paper2/shipped_vgg_fer/private/report.md)" in table)
    assert "epoch chosen on PublicTest" in notes
    private = evaluated["private"]
    assert private["n_images"] == 60 and private["dataset"]["split"] == "PrivateTest"
    link = f"[{100 * private['accuracy']:.2f}](paper2/region_vote_shipped/private/report.md)"
    line = next(ln for ln in table.splitlines() if ln.startswith("| facial-region voting (shipped"))
    assert link in table and "(not trained)" not in line
    assert re.search(r"\| majority voting \| vote \(members not trained: inception_v3, resnet50, spp_net\) \|", table)

    # each run row recorded its outputs on the views it votes on, and the row measured from them is the
    # Ensemble module's: the same members through ferkit.ensemble, evaluated as one model
    from ferkit.ensemble import build_ensemble
    from ferkit.evaluate import run_evaluation
    from ferkit.papers._outputs import read_outputs

    face = read_outputs(reports / "paper2" / "vgg_face", print)
    mouth_out = read_outputs(reports / "paper2" / "vgg_mouth", print)
    assert sorted(face.probs["test"]) == ["face"] and sorted(mouth_out.probs["test"]) == ["mouth"]
    assert set(face.probs) == {"test", "ferplus_test", "private", "fit_PublicTest"} and len(face.ids["test"]) == 60
    folders = [str(next(runs.glob(f"paper2_{key}_scratch48-*"))) for key in keys[1:]]
    module = build_ensemble(["vgg_fer.w15_fer2013", *folders], "regions")
    direct = run_evaluation(module, "../shared/data/fer2013", "fer2013-folder", "PrivateTest", limit=60, prior="train")
    with (row / "private" / "predictions.csv").open() as f:
        recorded = {r["file"]: r["predicted"] for r in csv.DictReader(f)}
    assert sorted(recorded) == sorted(direct.faces.ids)
    differ = [i for i, c in zip(direct.faces.ids, direct.y_pred) if recorded[i] != direct.classes[c]]
    assert len(differ) <= 1, differ         # the outputs are float16: a near tie at most

    # the table again, with the run folders here: the ensembles' rows are reused (their members' weights are
    # unchanged), no model runs, no weights are fitted
    import ferkit.ensemble.voting
    import ferkit.evaluate.inference

    stamps = {p: p.stat().st_mtime_ns for p in (reports / "paper2").rglob("metrics.json")}
    outputs = {p: p.stat().st_mtime_ns for p in (reports / "paper2").rglob("outputs.npz")}
    assert len(outputs) == 6

    def refuse(*_args, **_kwargs):
        raise AssertionError("a model ran or an unchanged ensemble was fitted again")

    with monkeypatch.context() as m:
        m.setattr(ferkit.ensemble.voting, "fit_weights", refuse)
        m.setattr(ferkit.evaluate.inference, "predict_logits", refuse)
        assert main(["papers", "table", "paper2", *args]) == 0
    voting = [ln for ln in table.splitlines() if ln.startswith("| facial-region voting")]
    assert len(voting) >= 4 and set(voting) <= set(capsys.readouterr().out.splitlines())
    assert {p: p.stat().st_mtime_ns for p in (reports / "paper2").rglob("metrics.json")} == stamps
    assert {p: p.stat().st_mtime_ns for p in (reports / "paper2").rglob("outputs.npz")} == outputs

    # a fresh clone (no run folders) keeps the recorded region-voting rows, and measures an ensemble row
    # again from its members' recorded outputs (the shipped member's computed): the same figures
    runs.rename(tmp_path / "elsewhere")
    assert main(["papers", "table", "paper2", *args]) == 0
    assert link in capsys.readouterr().out
    shutil.rmtree(row)
    assert main(["papers", "table", "paper2", *args]) == 0
    assert link in capsys.readouterr().out
    again = json.loads((row / "private" / "metrics.json").read_text())
    assert again["confusion"] == private["confusion"] and again["region_landmarks"] == private["region_landmarks"]
    # FER+'s contempt faces (a class no member has) left out and counted, as for one model
    ferplus = json.loads((row / "ferplus_test" / "metrics.json").read_text())
    alone = json.loads((reports / "paper2" / "vgg_face" / "ferplus_test" / "metrics.json").read_text())
    assert alone["class_restriction"]["dropped_dataset_classes"].get("contempt", 0) > 0
    assert ferplus["class_restriction"] == alone["class_restriction"] and ferplus["n_images"] == alone["n_images"]
    # ... but not once a member's row records other weights than those its outputs were recorded with
    mouth = reports / "paper2" / "vgg_mouth" / "row.json"
    doc = json.loads(mouth.read_text())
    doc["eval_key"]["sha256"] = "0" * 64
    mouth.write_text(json.dumps(doc))
    assert main(["papers", "table", "paper2", *args]) == 0
    again = capsys.readouterr().out
    line = next(ln for ln in again.splitlines() if ln.startswith("| facial-region voting (shipped"))
    assert link not in again and "(outputs not recorded, run folders not on this machine: vgg_mouth) |" in line


def test_an_ensemble_of_recorded_outputs_with_images_missing(tmp_path):
    """Members' recorded outputs on the real sets' images: one member lacking some images leaves them out
    with a note in the ensemble's report, a set no image of which every member has is a one-line error;
    an ensemble that fits weights names the split it fits them on."""
    from ferkit.ensemble import labelled_faces
    from ferkit.papers import PaperEnsemble
    from ferkit.papers._outputs import MemberOutputs, combine_outputs

    paper = PAPERS["paper2"]
    ens = next(e for e in paper.ensembles if e.key == "majority_vote")
    classes = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    ids, labels = {}, {}
    for s in paper.evals:
        faces, _ = labelled_faces(s.data, s.format, s.split, classes, limit=40)
        ids[s.key] = faces.ids
        labels[s.key] = np.asarray([classes.index(faces.classes[k]) for k in faces.labels])
    rng = np.random.default_rng(0)

    def member(name: str, right: float) -> MemberOutputs:
        probs = {}
        for key, y in labels.items():     # right on a share of the faces, a random class on the others
            pred = np.where(rng.random(len(y)) < right, y, rng.integers(0, 7, len(y)))
            probs[key] = {"face": np.eye(7)[pred] * 0.9 + 0.1 / 7}
        return MemberOutputs(name, f"sha-{name}", 40, classes, None, {"size": 48, "channels": 1}, dict(ids), probs, {},
                             {s.key: {"data": s.data, "format": s.format, "split": s.split} for s in paper.evals})

    members = [member(m, 0.8) for m in ens.members]
    members[1].ids = {**ids, "test": ids["test"][3:]}
    members[1].probs = {**members[1].probs, "test": {"face": members[1].probs["test"]["face"][3:]}}
    measured = {}
    assert combine_outputs(paper, ens, members, 40, lambda s, ev: measured.update({s.key: ev})) is None
    test = measured["test"].metrics
    assert test["n_images"] == 37 and "3 images without every member's outputs" in " ".join(test["dataset"]["notes"])
    assert measured["private"].metrics["n_images"] == 40
    # the vote of three members right on 80% of the faces beats each member alone
    alone = np.mean(members[0].probs["private"]["face"].argmax(1) == labels["private"])
    assert measured["private"].metrics["accuracy"] > alone
    members[2].ids = {**ids, "private": ids["private"][:0]}
    members[2].probs = {**members[2].probs, "private": {"face": np.zeros((0, 7))}}
    with pytest.raises(ConfigError, match=r"^private: no image has every member's outputs \(inception_v3, resnet50, "
                                          r"spp_net\); record them again$"):
        combine_outputs(paper, ens, members, 40, lambda s, ev: None)
    with pytest.raises(ConfigError, match="ensemble fitted: fit and fit_split go together"):
        PaperEnsemble("fitted", "fitted", "soft", ("a", "b"), fit="accuracy")
