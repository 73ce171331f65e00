"""One set of options for every entry point (``ferkit.infer.RecognizerOptions`` / ``StreamOptions``):
every flag of predict, video, webcam, batch and serve is a field (or one of the command's own few),
every field reaches every entry point, and the same options give the same faces everywhere."""
from __future__ import annotations

import argparse
import json
from dataclasses import fields, replace
from pathlib import Path
from typing import get_type_hints

import numpy as np
import pytest

from ferkit.cli import build_parser, main
from ferkit.errors import FerkitError
from ferkit.infer import RecognizerOptions, StreamOptions, options_from_namespace

from _paths import SAMPLES, require

require(SAMPLES)

#: each command's own flags, which are not options of the main job (where results go, how many workers...)
OWN_FLAGS = {
    "predict": {"paths", "format", "output", "annotate", "recursive", "strict"},
    "video": {"source", "out"},
    "webcam": {"device", "source", "headless", "record", "label_duration"},
    "batch": {"inputs", "out", "engine", "workers", "address", "gpus", "every", "fps", "format", "shard_size",
              "strict"},
    "serve": {"host", "port", "workers", "max_upload_mb", "max_batch", "batch_wait_ms", "max_pending",
              "request_budget_s", "head_timeout_s", "body_timeout_s", "min_body_rate_kb_s", "allowed_hosts", "token"},
}
#: the RecognizerOptions fields a command does not take, and why
NOT_TAKEN = {"serve": {"batch_size"}}  # the server batches faces across requests (--max-batch)
#: fields whose flag is renamed in a command: webcam's --device is its camera
RENAMED = {"webcam": {"device": "torch_device"}}
#: StreamOptions fields a command takes (batch's stride comes from --every / --fps)
STREAM_FIELDS = {"video": {"stride", "detect_every", "smoothing", "max_frames"},
                 "webcam": {"stride", "detect_every", "smoothing", "max_frames"},
                 "batch": {"detect_every", "smoothing"}}

#: a value other than the default for every option field, as a flag's text; a new field needs one here,
#: which makes the test below prove that it reaches every entry point
SAMPLE = {
    "model": "ferplus", "detector": "dlib-hog", "min_size": "50", "min_score": "0.25", "max_detect_megapixels": "0.5",
    "max_megapixels": "20", "margin": "0.1", "align": None, "landmarks": "68", "max_faces": "3", "batch_size": "8",
    "backend": "torch", "device": "cpu:0", "prior": "uniform",
    "stride": "2", "detect_every": "3", "smoothing": "0.25", "max_frames": "9",
}


def subparser(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


def dests(command: str) -> set[str]:
    return {a.dest for a in subparser(command)._actions if a.dest != "help"}


def flag_of(command: str, name: str) -> str:
    dest = RENAMED.get(command, {}).get(name, name)
    return next(a.option_strings[0] for a in subparser(command)._actions if a.dest == dest)


@pytest.mark.parametrize("command", sorted(OWN_FLAGS))
def test_every_flag_is_an_option_field_or_the_commands_own(command: str) -> None:
    renamed = RENAMED.get(command, {})
    options = {renamed.get(f.name, f.name) for f in fields(RecognizerOptions)} - NOT_TAKEN.get(command, set())
    stream = STREAM_FIELDS.get(command, set())
    assert (dests(command) - {"func"} - {d for d in dests(command) if d.startswith("_")}
            == options | stream | OWN_FLAGS[command])


@pytest.mark.parametrize("command", sorted(OWN_FLAGS))
def test_every_option_reaches_the_entry_point(command: str) -> None:
    """Each field set on the command line arrives, with its value and unit, in the options the entry
    point builds its Recognizer from (predict, video, webcam, batch: ``options_from_namespace``; serve:
    its settings' ``recognizer_options()``)."""
    taken = [f.name for f in fields(RecognizerOptions) if f.name not in NOT_TAKEN.get(command, set())]
    stream = sorted(STREAM_FIELDS.get(command, set()))
    missing = [name for name in taken + stream if name not in SAMPLE]
    assert not missing, f"give the new option(s) {missing} a sample value in SAMPLE"
    required = {"predict": [], "video": ["clip.mp4"], "webcam": [], "batch": ["x.jpg", "--out", "o"], "serve": []}
    argv = [command, *required[command]]
    for name in taken + stream:
        argv += [flag_of(command, name)] + ([] if SAMPLE[name] is None else [SAMPLE[name]])
    a = build_parser().parse_args(argv)
    if command == "serve":
        from ferkit.cli.serve import settings_from_args

        got = settings_from_args(a).recognizer_options()
    else:
        got = options_from_namespace(a, RecognizerOptions)
    expected = RecognizerOptions(**{n: _typed(RecognizerOptions, n) for n in taken})
    assert {n: getattr(got, n) for n in taken} == {n: getattr(expected, n) for n in taken}
    if stream:
        got_stream = options_from_namespace(a, StreamOptions)
        assert {n: getattr(got_stream, n) for n in stream} == {n: _typed(StreamOptions, n) for n in stream}


def _typed(cls: type, name: str):
    """SAMPLE[name] as the field's type (True for a switch)."""
    if SAMPLE[name] is None:
        return True
    hint = get_type_hints(cls)[name]
    kind = next((t for t in getattr(hint, "__args__", (hint,)) if t is not type(None)), hint)
    return kind(SAMPLE[name])


def test_options_are_checked_once_with_the_field_named() -> None:
    with pytest.raises(FerkitError, match=r"^min_size: must be >= 1, not 0$"):
        RecognizerOptions(min_size=0)
    with pytest.raises(FerkitError, match=r"^max_detect_megapixels: must be >= 0"):
        RecognizerOptions(max_detect_megapixels=-1.0)
    with pytest.raises(FerkitError, match=r"^detector: 'nope' is not one of"):
        RecognizerOptions(detector="nope")
    with pytest.raises(FerkitError, match=r"^smoothing: must be >= 0 and < 1"):
        StreamOptions(smoothing=1.0)
    # an option the detector cannot take: refused by every entry point in the same line
    with pytest.raises(FerkitError, match="dlib-hog\\+blazeface takes only min_size, not threshold"):
        RecognizerOptions(min_score=0.5).check()
    assert RecognizerOptions(detector="dlib-hog", min_score=0.5).check().min_score == 0.5


@pytest.mark.parametrize("command", ["predict", "batch"])
def test_an_option_the_detector_cannot_take_is_refused_by_the_cli(command: str, tmp_path: Path, capsys) -> None:
    extra = ["--out", str(tmp_path / "out")] if command == "batch" else []
    assert main([command, str(SAMPLES / "obama.jpg"), "--min-score", "0.5", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dlib-hog+blazeface takes only min_size, not threshold" in err[0]
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ same options, same faces
FLAGS = ["--detector", "dlib-hog", "--min-score", "0.3", "--max-detect-megapixels", "0.5"]
OPTIONS = RecognizerOptions(detector="dlib-hog", min_score=0.3, max_detect_megapixels=0.5)
DEFAULTS = RecognizerOptions()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    """Three real photos, one of them a 4001x2001 JPEG (decoded at a reduced size for detection)."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("same_faces")
    big = folder / "big_4001x2001.jpg"
    src = Image.open(SAMPLES / "two_people.jpg").convert("RGB")
    canvas = Image.new("RGB", (4001, 2001), (90, 90, 90))
    canvas.paste(src.resize((2 * src.width, 2 * src.height)), (700, 300))
    canvas.save(big, quality=92)
    return [SAMPLES / "multi_face.jpg", SAMPLES / "bald_guys.jpg", big]


def _faces(boxes_probs: list[tuple[list[int], dict[str, float]]]) -> tuple[list[list[int]], np.ndarray]:
    boxes = [list(map(int, b)) for b, _ in boxes_probs]
    probs = np.array([[p[c] for c in sorted(p)] for _, p in boxes_probs])
    return boxes, probs


def test_same_options_same_faces_everywhere(photos: list[Path], tmp_path: Path, capsys) -> None:
    """predict, batch, serve and the Python API with a non-default detector, score threshold and
    working size: the same boxes to the pixel and probabilities within 1e-5, on every photo."""
    import httpx
    import pandas as pd

    import ferkit

    from _server import Server

    api = {Path(r.path).name: _faces([(f.box, f.probabilities) for f in r.faces])
           for r in ferkit.predict(photos, options=OPTIONS)}
    assert all(len(b) for b, _ in api.values())
    # each option set here changes the faces found on these photos (the 4001x2001 one is detected on a
    # copy of at most 0.5 megapixels), so an entry point that dropped one would differ below
    for change in ({"detector": "blazeface"}, {"min_score": DEFAULTS.min_score},
                   {"max_detect_megapixels": DEFAULTS.max_detect_megapixels}):
        assert change.keys() <= {f.name for f in fields(OPTIONS)} and OPTIONS != replace(OPTIONS, **change)
        changed = {Path(r.path).name: [list(map(int, f.box)) for f in r.faces]
                   for r in ferkit.predict(photos, options=replace(OPTIONS, **change))}
        assert changed != {name: boxes for name, (boxes, _) in api.items()}, change

    assert main(["predict", *map(str, photos), "--format", "json", *FLAGS]) == 0
    cli = {Path(r["path"]).name: _faces([(f["box"], f["probabilities"]) for f in r["faces"]])
           for r in json.loads(capsys.readouterr().out)}

    out = tmp_path / "batch"
    assert main(["batch", *map(str, photos), "--out", str(out), "--workers", "1", "--format", "jsonl", *FLAGS]) == 0
    df = pd.concat(pd.read_json(p, lines=True) for p in sorted((out / "faces").glob("*.jsonl")))
    prob_cols = sorted(c for c in df.columns if c.startswith("prob_"))
    batch = {Path(path).name: ([[int(v) for v in row] for row in g[["x", "y", "w", "h"]].to_numpy()],
                               g[prob_cols].to_numpy())
             for path, g in df.sort_values("face").groupby("path")}

    server = Server(tmp_path, *FLAGS)
    try:
        served = {}
        for p in photos:
            r = httpx.post(server.url + "/v1/predict", files={"file": (p.name, p.read_bytes(), "image/jpeg")},
                           timeout=120)
            assert r.status_code == 200, r.text
            served[p.name] = _faces([(f["box"], f["probabilities"]) for f in r.json()["faces"]])
    finally:
        server.stop()

    for name, (boxes, probs) in api.items():
        for other in (cli, batch, served):
            assert other[name][0] == boxes, name
            np.testing.assert_allclose(other[name][1], probs, atol=1e-5, err_msg=name)
