"""`ferkit batch`: the local engine (killed with SIGKILL and resumed), Ray Data on a local Ray and
on a two-node Ray cluster started on this machine by the test, against `ferkit predict` and the engine of
`ferkit video` (`Recognizer.stream`, with batch's detector) on the same ~100 real inputs; list files,
failures, refusals."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ferkit.batch import expand_inputs, read_table, run_batch
from ferkit.cli import main
from ferkit.errors import FerkitError
from ferkit.infer import Recognizer, open_source

from _paths import FER, SAMPLES, cut_clip, require
from _server import descendants, free_port, wait_gone

require(FER)
require(SAMPLES)

CLIP = SAMPLES / "short_hamilton_clip.mp4"
EVERY = 10
PHOTOS = ["obama.jpg", "biden.jpg", "two_people.jpg", "multi_face.jpg", "dogs.jpg", "obama_partial_face.jpg"]


class Inputs:
    def __init__(self, root: Path):
        self.crops = [str(p) for c in sorted((FER / "test").iterdir())
                      for p in sorted(c.glob("PublicTest_*.jpg"))[:12]]
        self.photos = [str(SAMPLES / n) for n in PHOTOS] + [str(p) for p in
                                                           sorted((SAMPLES / "voc_faces").glob("*.jpg"))[:4]]
        self.corrupt = root / "corrupt.jpg"
        self.corrupt.write_bytes((SAMPLES / "obama.jpg").read_bytes()[:3000])
        self.not_image = root / "notes.jpg"
        self.not_image.write_text("these are notes, not a photo\n")
        self.missing = root / "missing.jpg"
        self.not_video = root / "interview.mp4"
        self.not_video.write_text("not a video either\n")
        self.truncated = root / "cut.avi"
        cut_clip(self.truncated)
        self.images = self.crops + self.photos
        self.bad = [str(self.corrupt), str(self.not_image), str(self.missing), str(self.not_video)]
        self.all = self.images + self.bad + [str(CLIP), str(self.truncated)]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Inputs:
    return Inputs(tmp_path_factory.mktemp("batch_inputs"))


@pytest.fixture(scope="module")
def reference(inputs: Inputs, tmp_path_factory) -> dict:
    """`ferkit predict --format json` on the images, and `Recognizer.stream` (what `ferkit video`
    runs) on every EVERY-th frame of the clip with the photos' default detector, as batch uses."""
    out = tmp_path_factory.mktemp("batch_reference")
    assert main(["predict", *inputs.images, "--format", "json", "-o", str(out / "images.json")]) == 0
    images = {r["path"]: r for r in json.loads((out / "images.json").read_text())}
    with open_source(CLIP) as src:
        frames = [fr.to_dict() for fr in Recognizer().stream(src, stride=EVERY) if fr.processed]
    return {"images": images, "frames": {f["frame"]: f for f in frames}}


def assert_matches_reference(faces: pd.DataFrame, failures: pd.DataFrame, inputs: Inputs, reference: dict) -> None:
    """One row per face (or one box-less row per image/frame without one), equal to the reference:
    same boxes, emotions and track ids, probabilities within 1e-5; every input accounted for once."""
    dup = faces.duplicated(["path", "frame", "face"], keep=False)
    assert not dup.any(), faces[dup][["path", "frame", "face"]].head()
    probs = [c for c in faces.columns if c.startswith("prob_")]
    assert len(probs) == 7
    for path, ref in reference["images"].items():
        rows = faces[faces.path == path].sort_values("face")
        if not ref["faces"]:
            assert len(rows) == 1 and pd.isna(rows.face.iloc[0]) and pd.isna(rows.x.iloc[0]), path
            continue
        assert len(rows) == len(ref["faces"]), path
        for (_, row), f in zip(rows.iterrows(), ref["faces"], strict=True):
            assert [row.x, row.y, row.w, row.h] == f["box"], path
            assert row.emotion == f["emotion"]
            got = np.array([row[f"prob_{c}"] for c in f["probabilities"]])
            np.testing.assert_allclose(got, list(f["probabilities"].values()), atol=1e-5, rtol=0)
    clip = faces[faces.path == str(CLIP)]
    assert sorted(clip.frame.unique()) == sorted(reference["frames"])
    for frame, ref in reference["frames"].items():
        rows = clip[clip.frame == frame].sort_values("face")
        if not ref["faces"]:
            assert len(rows) == 1 and pd.isna(rows.face.iloc[0])
            continue
        assert [[r.x, r.y, r.w, r.h] for r in rows.itertuples()] == [f["box"] for f in ref["faces"]], frame
        assert rows.track_id.tolist() == [f["track_id"] for f in ref["faces"]]
        assert rows.emotion.tolist() == [f["emotion"] for f in ref["faces"]], frame
        np.testing.assert_allclose(rows[probs].to_numpy(float),
                                   [[f["probabilities"][c[5:]] for c in probs] for f in ref["faces"]],
                                   atol=1e-5, rtol=0)
        assert rows.time_s.iloc[0] == pytest.approx(ref["time_s"], abs=1e-3)
    # every input once: images and videos in the faces table, the bad ones in the failures table
    assert set(faces.path) == set(inputs.images) | {str(CLIP), str(inputs.truncated)}
    assert sorted(failures.path) == sorted([*inputs.bad, str(inputs.truncated)])
    reasons = dict(zip(failures.path, failures.reason, strict=True))
    assert ("truncated or corrupt" in reasons[str(inputs.corrupt)]
            and reasons[str(inputs.corrupt)].startswith(str(inputs.corrupt)))
    assert "not an image" in reasons[str(inputs.not_image)]
    assert "no such file" in reasons[str(inputs.missing)]
    assert "not a readable video" in reasons[str(inputs.not_video)]
    assert "truncated video: decoded" in reasons[str(inputs.truncated)]
    cut = failures[failures.path == str(inputs.truncated)]
    assert 20 < int(cut.frames_read.iloc[0]) < 60
    assert faces[faces.path == str(inputs.truncated)].frame.max() < int(cut.frames_read.iloc[0])
    for row in failures.itertuples():
        assert "\n" not in row.reason


def _shards(out: Path) -> int:
    try:
        return len(json.loads((out / "manifest.json").read_text())["shards"])
    except (OSError, ValueError):
        return 0


@pytest.fixture(scope="module")
def local_run(inputs: Inputs, tmp_path_factory) -> Path:
    """`ferkit batch` on 2 worker processes, killed with SIGKILL (the workers too) after its second
    shard, then the same command again to the end."""
    out = tmp_path_factory.mktemp("batch_local") / "out"
    argv = [sys.executable, "-m", "ferkit", "batch", *inputs.all, "--out", str(out), "--workers", "2",
            "--every", str(EVERY), "--shard-size", "8"]
    proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while _shards(out) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _shards(out)
    assert 2 <= killed_at
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "resuming:" in done.stderr and "already in" in done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["shards"]) > killed_at  # the second run did the rest
    assert manifest["totals"]["inputs"] == len(inputs.all)
    return out


def test_local_engine_killed_and_resumed_matches_predict(local_run: Path, inputs: Inputs, reference: dict) -> None:
    assert_matches_reference(read_table(local_run), read_table(local_run, "failures"), inputs, reference)
    # nothing half-written is left behind, and the folders load as Parquet data sets as they are
    assert not [p for p in local_run.rglob(".*")]
    table = pq.read_table(local_run / "faces")
    assert table.schema.field("prob_happy").type == "double" and table.schema.field("x").type == "int32"
    assert len(pd.read_parquet(local_run / "faces")) == table.num_rows == json.loads(
        (local_run / "manifest.json").read_text())["totals"]["rows"]
    assert set(pd.read_parquet(local_run / "failures").path) == set(read_table(local_run, "failures").path)
    # a third run has nothing left to do and writes nothing
    before = sorted(p.name for p in (local_run / "faces").iterdir())
    s = run_batch(inputs.all, local_run, workers=1, every=EVERY)
    assert (s.processed, s.skipped, s.shards) == (0, len(inputs.all), 0)
    assert sorted(p.name for p in (local_run / "faces").iterdir()) == before


def test_killed_driver_leaves_no_pool_workers(inputs: Inputs, tmp_path: Path) -> None:
    """`kill -9` of `ferkit batch`'s driver alone (not its process group): its pool workers (and a
    resource tracker, if any) are gone within 5 s."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "ferkit", "batch", *inputs.all, "--out", str(out), "--workers", "2",
                             "--every", str(EVERY), "--shard-size", "8"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while _shards(out) < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        children = descendants(proc.pid)
        assert len(children) >= 2, children
    finally:
        proc.kill()
        proc.wait()
    assert wait_gone(children, 5) == []


def test_ray_engine_on_local_ray(inputs: Inputs, reference: dict, tmp_path: Path) -> None:
    """Ray Data on a real local Ray (`ray.init(num_cpus=2)`), JSON lines output."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        s = run_batch(inputs.all, tmp_path / "out", engine="ray", every=EVERY, format="jsonl")
    finally:
        ray.shutdown()
    assert s.processed == len(inputs.all) and s.failures == 5
    assert len(s.workers) == 2  # both actors of the pool took work
    assert sorted(p.suffix for p in (tmp_path / "out" / "faces").iterdir()) == [".jsonl"] * s.shards
    faces = read_table(tmp_path / "out")
    assert_matches_reference(faces, read_table(tmp_path / "out", "failures"), inputs, reference)


def test_ray_engine_on_two_node_cluster(inputs: Inputs, reference: dict, tmp_path: Path) -> None:
    """A head and a worker node started with `ray start` on this machine (as the README shows),
    `ferkit batch --engine ray --address` sends work to both."""
    port = free_port()
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_TMPDIR": ray_tmp, "RAY_USAGE_STATS_ENABLED": "0"}
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
    try:
        for extra in (["--head", f"--port={port}", "--include-dashboard=false"], [f"--address=127.0.0.1:{port}"]):
            r = subprocess.run([*ray_cli, "start", "--num-cpus=1", "--node-ip-address=127.0.0.1", *extra],
                               env=env, check=False, capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stderr[-2000:]
        out = tmp_path / "out"
        r = subprocess.run([sys.executable, "-m", "ferkit", "batch", *inputs.all, "--out", str(out), "--engine", "ray",
                            "--address", f"127.0.0.1:{port}", "--every", str(EVERY)],
                           env=env, check=False, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
    finally:
        subprocess.run([*ray_cli, "stop", "--force"], env=env, check=False, capture_output=True, timeout=120)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert "Traceback" not in r.stderr and "error" not in r.stderr.lower(), r.stderr[-2000:]
    workers = json.loads((out / "manifest.json").read_text())["runs"][-1]["workers"]
    assert len({w.split(":")[0] for w in workers}) == 2, workers  # actors on both nodes
    assert_matches_reference(read_table(out), read_table(out, "failures"), inputs, reference)


def test_path_lists_and_bad_lists(tmp_path: Path) -> None:
    crops = sorted((FER / "test" / "happy").glob("PublicTest_*.jpg"))[:3]
    (tmp_path / "list.txt").write_text(f"# three crops\n{crops[0]}\n\n{crops[1]}\n")
    pd.DataFrame({"path": [str(crops[2]), str(crops[0])]}).to_parquet(tmp_path / "list.parquet")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "list.csv").write_text("id,path\n1,../missing.jpg\n")
    items, problems = expand_inputs([tmp_path / "list.txt", tmp_path / "list.parquet", tmp_path / "sub" / "list.csv",
                                     str(tmp_path / "nothing*.jpg"), SAMPLES / "voc_faces"])
    paths = [i.path for i in items]
    assert paths[:3] == [str(crops[0]), str(crops[1]), str(crops[2])]  # duplicates dropped, order kept
    assert paths[3] == os.path.join(tmp_path / "sub", "../missing.jpg") and items[3].size == -1
    assert len(paths) == 4 + len(list((SAMPLES / "voc_faces").glob("*.jpg")))
    assert problems == [f"{tmp_path / 'nothing*.jpg'}: no file matches"]
    assert {i.kind for i in items} == {"image"}
    (tmp_path / "bad.csv").write_text("id,path\n1,\n")
    with pytest.raises(FerkitError, match=r"bad.csv: row 2: no path"):
        expand_inputs([tmp_path / "bad.csv"])
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(FerkitError, match=r"bad.parquet: not a readable Parquet file"):
        expand_inputs([tmp_path / "bad.parquet"])
    pd.DataFrame({"file": ["a.jpg"]}).to_parquet(tmp_path / "nocol.parquet")
    with pytest.raises(FerkitError, match=r"nocol.parquet: no 'path' column \(columns: file\)"):
        expand_inputs([tmp_path / "nocol.parquet"])


def test_output_folder_is_never_taken_over(tmp_path: Path, capfd) -> None:
    photo = str(SAMPLES / "obama.jpg")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious")
    assert main(["batch", photo, "--out", str(mine)]) == 2
    assert "not empty and holds no manifest.json" in capfd.readouterr().err
    assert (mine / "thesis.txt").read_text() == "precious" and sorted(os.listdir(mine)) == ["thesis.txt"]
    out = tmp_path / "out"
    s = run_batch([photo], out, workers=1, format="jsonl")
    assert (s.processed, s.faces, s.failures) == (1, 1, 0)
    # another configuration is refused; a shard no manifest lists (a killed commit) is dropped on resume
    assert main(["batch", photo, "--out", str(out), "--detector", "haar", "--format", "jsonl"]) == 2
    err = capfd.readouterr().err.strip()
    assert err.count("\n") == 0 and "holds a batch run with other detector" in err
    stray = out / "faces" / "part-000042.jsonl"
    stray.write_text('{"path": "x"}\n')
    s = run_batch([photo, str(SAMPLES / "biden.jpg")], out, workers=1, format="jsonl")
    assert (s.processed, s.skipped) == (1, 1) and not stray.exists()
    df = read_table(out)
    assert sorted(df.path) == sorted([photo, str(SAMPLES / "biden.jpg")])
    for argv, msg in ((["--every", "0"], "--every must be >= 1"), (["--fps", "0"], "--fps must be > 0"),
                      (["--workers", "0"], "--workers must be >= 1"),
                      (["--engine", "ray", "--address", f"127.0.0.1:{free_port()}"], "no Ray cluster answers there")):
        assert main(["batch", photo, "--out", str(tmp_path / "o2"), *argv]) == 2
        err = capfd.readouterr().err.strip()
        assert err.count("\n") == 0 and msg in err, err
