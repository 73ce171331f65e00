"""Recognizer.stream, the IoU tracker, `ferkit video` and `ferkit webcam` on real video: a clip made
from obama.jpg (one face, panning) and the 640x360 Hamilton clip; bad sources give one line."""
from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ferkit.cli import main
from ferkit.detect import VIDEO_DETECT_EVERY, Faces, get_detector, iou
from ferkit.infer import (
    DetectAndFollow,
    FlowFollower,
    IoUTracker,
    Recognizer,
    SourceError,
    VideoWriter,
    load_image,
    open_source,
)

from _paths import SAMPLES, cut_clip

HAMILTON = SAMPLES / "short_hamilton_clip.mp4"
PAN_FRAMES = 24


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread) -> None:
    """Every test of this module runs on one torch thread (see conftest.one_thread)."""


@pytest.fixture(scope="module")
def pan_clip(tmp_path_factory) -> Path:
    """320x240, 24 frames at 24 fps: obama.jpg (scaled so his face is ~95 px) panning left to right."""
    img = load_image(SAMPLES / "obama.jpg")
    img = cv2.resize(img, None, fx=0.35, fy=0.35, interpolation=cv2.INTER_AREA)  # 318 x 398
    canvas = cv2.copyMakeBorder(img, 0, 0, 60, 60, cv2.BORDER_REPLICATE)       # 438 wide
    path = tmp_path_factory.mktemp("video") / "obama_pan.mp4"
    with VideoWriter(path, 24, (320, 240)) as vw:
        for i in range(PAN_FRAMES):
            x = round(118 * i / (PAN_FRAMES - 1))
            vw.write(np.ascontiguousarray(canvas[20:260, x : x + 320]))
    return path


def _count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


# --------------------------------------------------------------------------------------- tracker
def test_tracker_ids_and_smoothing() -> None:
    t = IoUTracker(iou_threshold=0.3, max_missed=1, smoothing=0.5)
    ids, p = t.update([[0, 0, 10, 10], [50, 50, 10, 10]], [[1.0, 0.0], [0.0, 1.0]])
    assert ids == [1, 2]
    ids, p = t.update([[52, 51, 10, 10], [1, 1, 10, 10], [100, 0, 10, 10]], [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    assert ids == [2, 1, 3]
    assert np.allclose(p, [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])  # EMA: 0.5 * previous + 0.5 * new
    t.update(np.zeros((0, 4)), np.zeros((0, 2)))                 # nobody for one frame: kept
    assert t.update([[1, 1, 10, 10]], [[1.0, 0.0]])[0] == [1]
    t.update(np.zeros((0, 4)))
    t.update(np.zeros((0, 4)))                                   # gone for 2 > max_missed: dropped
    assert t.update([[1, 1, 10, 10]])[0] == [4]                   # ids are never reused


# --------------------------------------------------------------------------------------- stream
def _warp(img: np.ndarray, dx: float, dy: float, scale: float = 1.0) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 0, scale)
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def test_flow_follower_moves_boxes_with_the_faces() -> None:
    """Boxes follow a shift and a zoom of a real photo (to a pixel), and a face that vanishes is lost."""
    img = load_image(SAMPLES / "multi_face.jpg")
    boxes = get_detector("dlib-hog").detect(img).boxes
    assert len(boxes) == 6
    f = FlowFollower()
    f.start(img, boxes)
    moved, ok = f.follow(_warp(img, 9, -5))
    assert ok.all() and np.abs(moved - (boxes + [9, -5, 0, 0])).max() <= 1.0
    h, w = img.shape[:2]
    f.start(img, boxes)
    zoomed, ok = f.follow(_warp(img, 0, 0, 1.08))
    centre = np.array([w / 2, h / 2])
    expect = np.concatenate([(boxes[:, :2] + boxes[:, 2:] / 2 - centre) * 1.08 + centre - boxes[:, 2:] * 1.08 / 2,
                             boxes[:, 2:] * 1.08], 1)
    assert ok.all() and np.abs(zoomed - expect).max() <= 1.5
    img = load_image(SAMPLES / "two_people.jpg")
    boxes = get_detector("dlib-hog").detect(img).boxes
    for cover in (128, img[::-1, ::-1]):  # the first face hidden behind a grey card, or another picture
        f.start(img, boxes)
        hidden = img.copy()
        x, y, bw, bh = boxes[0]
        hidden[y : y + bh, x : x + bw] = cover if np.isscalar(cover) else cover[:bh, :bw]
        assert f.follow(hidden)[1].tolist() == [False, True]


def test_detect_and_follow_detects_every_k_frames_and_when_a_face_is_lost(pan_clip: Path) -> None:
    detector, calls = get_detector("blazeface", min_size=40), []

    def detect(rgb: np.ndarray) -> Faces:
        calls.append(len(calls))
        return detector.detect(rgb)

    with open_source(pan_clip) as src:
        frames = [rgb for _, _, rgb in src]
    track = DetectAndFollow(detect, every=4)
    found = [track(rgb) for rgb in frames]
    assert len(calls) == PAN_FRAMES // 4 and all(len(f) == 1 for f in found)
    for followed, rgb in zip(found, frames):  # every followed box on the face the detector finds there
        assert iou(followed.boxes, detector.detect(rgb).boxes)[0, 0] > 0.7
    calls.clear()
    track = DetectAndFollow(detect, every=4)
    for i, rgb in enumerate(frames[:8]):
        faces = track(np.zeros_like(rgb) if i == 2 else rgb)  # a black frame: the face is lost, detect again
        assert len(faces) == (0 if i == 2 else 1)
    assert len(calls) == 4  # frames 0 (first), 2 (lost), 3 (nothing followed: detect), 7 (4 frames later)


def test_stream_keeps_track_ids_through_the_hamilton_clip(rec: Recognizer) -> None:
    """Video's defaults (blazeface, min size 40, detection every VIDEO_DETECT_EVERY frames): the people
    on screen at the end (the speaker, on screen from frame ~33, and three in the audience) keep
    one id each since they appeared, and an id never jumps to another face (successive boxes of a
    track overlap)."""
    rec = Recognizer(model=(rec.model, rec.meta), detector="blazeface", min_size=40)
    frames = list(rec.stream(HAMILTON, detect_every=VIDEO_DETECT_EVERY, frames=False))
    assert len(frames) == 275
    tracks: dict[int, list[tuple[int, tuple[int, int, int, int]]]] = {}
    for fr in frames:
        assert len({f.track_id for f in fr.faces}) == len(fr.faces)
        for f in fr.faces:
            tracks.setdefault(f.track_id, []).append((fr.frame, f.box))
    for seen in tracks.values():
        for (_, a), (_, b) in itertools.pairwise(seen):
            assert iou(np.array([a]), np.array([b]))[0, 0] > 0.3
    last = [f.track_id for f in frames[-1].faces]
    assert len(last) >= 3
    for tid in last:
        first = tracks[tid][0][0]
        assert 274 - first >= 30 and len(tracks[tid]) >= 0.75 * (275 - first)
    assert max(len(seen) for seen in tracks.values()) >= 200  # the speaker: one id for 200+ frames
    assert len(tracks) <= 10


def test_stream_single_face_keeps_its_track(rec: Recognizer, pan_clip: Path) -> None:
    frames = list(rec.stream(pan_clip, frames=False))
    assert [f.frame for f in frames] == list(range(PAN_FRAMES)) and all(f.processed for f in frames)
    assert all(len(f.faces) == 1 for f in frames)
    assert {f.faces[0].track_id for f in frames} == {1}
    xs = [f.faces[0].box[0] for f in frames]
    assert xs[0] > xs[-1] + 60  # the face moved across the frame (the camera pans right)
    assert frames[1].time_s == pytest.approx(1 / 24, abs=1e-3)
    for f in frames:
        assert sum(f.faces[0].probabilities.values()) == pytest.approx(1.0, abs=1e-6)
        assert f.image is None and "image" not in f.to_dict()


def test_stream_stride_and_smoothing(rec: Recognizer, pan_clip: Path) -> None:
    frames = list(rec.stream(pan_clip, stride=4, smoothing=0.6, max_frames=10))
    assert len(frames) == 10 and [f.frame for f in frames if f.processed] == [0, 4, 8]
    assert frames[1].faces[0].box == frames[0].faces[0].box  # skipped frames repeat the last faces
    assert all(f.image is not None and f.image.shape == (240, 320, 3) for f in frames)
    raw = {f.frame: f.faces[0].probabilities
           for f in rec.stream(pan_clip, stride=4, smoothing=0.0, max_frames=10, frames=False) if f.processed}
    smooth = {f.frame: f.faces[0].probabilities for f in frames if f.processed}
    assert smooth[0] == pytest.approx(raw[0])
    assert smooth[4] == pytest.approx({c: 0.6 * smooth[0][c] + 0.4 * raw[4][c] for c in raw[4]}, abs=1e-6)


@pytest.mark.parametrize("source,message", [
    ("missing.mp4", "missing.mp4: no such file"),
    ("text.mp4", "text.mp4: not a readable video"),
    ("7", "camera 7: cannot open it"),
])
def test_bad_sources(tmp_path: Path, capfd, source: str, message: str) -> None:
    (tmp_path / "text.mp4").write_text("not a video\n")
    src = source if source.isdigit() else str(tmp_path / source)
    with pytest.raises(SourceError, match=message):
        open_source(src)
    assert capfd.readouterr().err == ""  # OpenCV and FFmpeg kept quiet


# --------------------------------------------------------------------------------------- ferkit video
def test_cli_video_outputs(pan_clip: Path, tmp_path: Path, capfd) -> None:
    out = tmp_path / "out"
    assert main(["video", str(pan_clip), "--out", str(out), "--stride", "2"]) == 0
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and f"{PAN_FRAMES} frames ({PAN_FRAMES // 2} processed)" in err
    assert sorted(p.name for p in out.iterdir()) == [
        "obama_pan_annotated.mp4", "obama_pan_emotions.png", "obama_pan_faces.csv", "obama_pan_faces.json"]
    assert _count_frames(out / "obama_pan_annotated.mp4") == PAN_FRAMES
    rows = list(csv.DictReader((out / "obama_pan_faces.csv").open()))
    assert len(rows) == PAN_FRAMES // 2 and [int(r["frame"]) for r in rows] == list(range(0, PAN_FRAMES, 2))
    assert {r["track_id"] for r in rows} == {"1"}
    data = json.loads((out / "obama_pan_faces.json").read_text())
    assert (len(data["frames"]) == PAN_FRAMES // 2
            and data["classes"] == list(data["frames"][0]["faces"][0]["probabilities"]))
    for r in rows:
        assert sum(float(r[f"prob_{c}"]) for c in data["classes"]) == pytest.approx(1.0, abs=1e-4)
    assert cv2.imread(str(out / "obama_pan_emotions.png")) is not None


def test_cli_video_real_clip(tmp_path: Path, capfd) -> None:
    """The Hamilton clip (640x360, 275 frames, several people), every 5th frame classified."""
    out = tmp_path / "ham"
    assert main(["video", str(HAMILTON), "--out", str(out), "--stride", "5", "--smoothing", "0.5"]) == 0
    capfd.readouterr()
    assert _count_frames(out / "short_hamilton_clip_annotated.mp4") == _count_frames(HAMILTON) == 275
    # H.264 (what browsers play) with the source's AAC audio, copied up to the end of the frames
    import av

    with av.open(str(out / "short_hamilton_clip_annotated.mp4")) as mp4, av.open(str(HAMILTON)) as src:
        video, audio = mp4.streams.video[0], mp4.streams.audio[0]
        assert video.codec_context.name == "h264" and video.codec_context.pix_fmt == "yuv420p"
        assert sum(1 for _ in mp4.decode(video=0)) == 275
        assert audio.codec_context.name == src.streams.audio[0].codec_context.name == "aac"
        seconds = 275 / float(video.average_rate)
        audio_s = float(audio.duration * audio.time_base)
        assert seconds - 0.1 < audio_s < seconds + 0.1 and audio.frames > 300
    data = json.loads((out / "short_hamilton_clip_faces.json").read_text())
    rows = list(csv.DictReader((out / "short_hamilton_clip_faces.csv").open()))
    assert len(data["frames"]) == 55 and len(rows) == sum(len(f["faces"]) for f in data["frames"]) > 20
    per_frame = {f["frame"]: len(f["faces"]) for f in data["frames"]}
    assert all(sum(int(r["frame"]) == k for r in rows) == n for k, n in per_frame.items())
    assert all(len({f["track_id"] for f in fr["faces"]}) == len(fr["faces"]) for fr in data["frames"])


def test_video_writes_as_it_goes_and_a_crash_keeps_the_earlier_outputs(pan_clip: Path, tmp_path: Path) -> None:
    """ferkit.video writes its CSV and JSON frame by frame into temporary files, renamed at the end: while
    it runs they grow and the previous run's files stay; a run that fails midway leaves those files as they
    were and no temporary file; a killed run's temporary files are removed by the next run."""
    import ferkit

    out = tmp_path / "out"
    seen: list[tuple[int, bool]] = []
    sizes: list[int] = []

    def watch(fr) -> None:     # the rows go into the temporary files; the final ones appear at the end
        temporary = list(out.glob(".obama_pan_faces.*.tmp.*"))
        seen.append((len(temporary), (out / "obama_pan_faces.csv").exists()))
        sizes.append(sum(p.stat().st_size for p in temporary))

    first = ferkit.video(pan_clip, out, on_frame=watch)
    assert first.processed == PAN_FRAMES and first.tracks == 1
    assert seen == [(2, False)] * PAN_FRAMES and not list(out.glob(".*"))
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]     # written through a buffer, before the end
    doc = json.loads((out / "obama_pan_faces.json").read_text())
    assert (out / "obama_pan_faces.json").read_text() == json.dumps(doc) + "\n"
    assert len(doc["frames"]) == PAN_FRAMES
    assert len(list(csv.DictReader((out / "obama_pan_faces.csv").open()))) == first.faces == PAN_FRAMES
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / ".obama_pan_faces.999999999.0123abcd.tmp.csv").write_text("left by a killed run\n")

    def fail_midway(fr) -> None:
        assert (out / "obama_pan_faces.csv").read_bytes() == before["obama_pan_faces.csv"]
        if fr.frame == 10:
            raise RuntimeError("the caller's callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        ferkit.video(pan_clip, out, on_frame=fail_midway)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_track_series_draws_every_kth_face_of_long_videos(monkeypatch) -> None:
    from ferkit import api

    monkeypatch.setattr(api._TrackSeries, "MAX_POINTS", 10)
    series = api._TrackSeries(["happy", "sad"])
    series.add({"track_id": t, "time_s": i / 10, "prob_happy": 0.25, "prob_sad": 0.75}
               for i in range(30) for t in (1, 2))
    points = series.points()
    assert len(points) == 2 * 5 and {p["track_id"] for p in points} == {1, 2}    # 60 faces, every 6th
    assert [p["time_s"] for p in points if p["track_id"] == 1] == pytest.approx([0.0, 0.6, 1.2, 1.8, 2.4])
    assert points[0]["probabilities"] == {"happy": 0.25, "sad": 0.75}


def test_video_writer_even_size_no_audio_and_discard(pan_clip: Path, tmp_path: Path) -> None:
    """Odd sizes become even (yuv420p); a source without audio, or not a video, adds no audio; a
    writer closed without commit leaves nothing, not even its temporary file."""
    import av

    frame = load_image(SAMPLES / "obama.jpg")
    for audio_from in (pan_clip, tmp_path / "notes.txt", None):
        (tmp_path / "notes.txt").write_text("not a video\n")
        out = tmp_path / "odd.mp4"
        with VideoWriter(out, 25, (321, 241), audio_from=audio_from) as vw:
            for _ in range(5):
                vw.write(frame)
        with av.open(str(out)) as mp4:
            assert [s.type for s in mp4.streams] == ["video"]
            assert (mp4.streams.video[0].width, mp4.streams.video[0].height) == (320, 240)
        assert _count_frames(out) == 5
    vw = VideoWriter(tmp_path / "gone.mp4", 25, (64, 64))
    vw.write(frame)
    vw.close(commit=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "odd.mp4"]


def test_cli_video_warns_about_a_truncated_clip(tmp_path: Path, capfd) -> None:
    """A clip cut in half: the frames that decode are processed, and a warning says how many of
    those its header announces are missing; --max-frames stopping early is not a truncation."""
    clip = tmp_path / "cut.avi"
    cut_clip(clip, frames=60)
    assert main(["video", str(clip), "--out", str(tmp_path / "o"), "--stride", "10"]) == 0
    err = capfd.readouterr().err.splitlines()
    warning = [line for line in err if line.startswith("warning:")]
    decoded = _count_frames(clip)      # what OpenCV reads of the cut file itself
    assert _count_frames(tmp_path / "o" / "cut_annotated.mp4") == decoded
    expected = (f"warning: {clip}: truncated video: decoded {decoded} of the 60 frames its header announces "
                f"({60 - decoded} missing); the outputs cover the frames that decoded")
    assert 0 < decoded < 60 and warning == [expected]
    assert main(["video", str(clip), "--out", str(tmp_path / "p"), "--max-frames", "5"]) == 0
    assert "warning" not in capfd.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["video", "{tmp}/missing.mp4"], "{tmp}/missing.mp4: no such file"),
    (["video", "{tmp}/text.mp4"], "{tmp}/text.mp4: not a readable video"),
    (["webcam", "--device", "7", "--headless"], "camera 7: cannot open it"),
    (["video", str(HAMILTON), "--detect-every", "0"], "detect_every: must be >= 1, not 0"),
])
def test_cli_bad_sources_one_line(tmp_path: Path, capfd, argv: list[str], message: str) -> None:
    (tmp_path / "text.mp4").write_text("not a video\n")
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(argv + ["--out", str(tmp_path / "o")] if argv[0] == "video" else argv) == 2
    out, err = capfd.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("ferkit: error: " + message.format(tmp=tmp_path))
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------------------- ferkit webcam
def test_webcam_loop_on_a_file(pan_clip: Path, tmp_path: Path, capfd, monkeypatch) -> None:
    record = tmp_path / "rec.mp4"
    assert main(["webcam", "--source", str(pan_clip), "--headless", "--record", str(record)]) == 0
    err = capfd.readouterr().err
    assert f"{PAN_FRAMES} frames" in err and _count_frames(record) == PAN_FRAMES
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["webcam", "--source", str(pan_clip)]) == 2  # a window needs a screen
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "--headless" in err
