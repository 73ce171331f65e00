"""The page at ``/`` in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
a fake camera plays a video made from ../shared/data/samples/obama.jpg, the page sends its frames
over the WebSocket and must show the server's face box and emotion label; then the photo upload
for a browser with no camera."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _paths import SAMPLES

CHROMIUM = Path("/usr/bin/chromium")
OBAMA, TWO = SAMPLES / "obama.jpg", SAMPLES / "two_people.jpg"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (Debian's chromium package; "
                                "`apt-get install chromium chromium-driver`, as .ci/run does)")


def write_y4m(image: Path, dest: Path, width: int = 480, frames: int = 2) -> Path:
    """A short raw YUV 4:2:0 video (Chromium's fake camera format) showing ``image``."""
    import cv2

    bgr = cv2.imread(str(image))
    h = round(width * bgr.shape[0] / bgr.shape[1] / 2) * 2
    yuv = cv2.cvtColor(cv2.resize(bgr, (width, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2YUV_I420)
    with dest.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + yuv.tobytes())
    return dest


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """The real app under uvicorn on 127.0.0.1 (port chosen by the OS), in a thread of this process."""
    import uvicorn

    from ferkit.serve import Settings, create_app

    server = uvicorn.Server(uvicorn.Config(create_app(Settings()), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the server did not start")
        time.sleep(0.1)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    video = write_y4m(OBAMA, tmp_path_factory.mktemp("camera") / "obama.y4m")
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
            "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={video}"]
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        yield b
        b.close()


def _open(browser, url: str, init_script: str | None = None):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/")
    return context, page, requests, errors


def _edge_pixel(page) -> dict:
    """The server's first face and the overlay's pixels across the middle of its box's left edge."""
    return page.evaluate("""() => {
        const last = window.ferkit.last, f = last.faces[0], c = document.getElementById('overlay');
        const s = c.width / last.width;
        const x = Math.round(f.box[0] * s), y = Math.round((f.box[1] + f.box[3] / 2) * s);
        return {face: f, size: [last.width, last.height], overlay: [c.width, c.height],
                pixels: Array.from(c.getContext('2d').getImageData(x - 2, y, 5, 1).data)};
    }""")


def test_live_camera_shows_box_and_label(browser, server_url: str) -> None:
    from ferkit.viz import emotion_color

    context, page, requests, errors = _open(browser, server_url)
    try:
        page.wait_for_function("window.ferkit && window.ferkit.frames >= 3 && window.ferkit.last.faces.length > 0",
                               timeout=90_000)
        classes = page.evaluate("window.ferkit.classes")
        assert classes == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]

        # the label from the server, in the face list
        item = page.locator("#faces li[data-emotion]").first
        emotion = item.get_attribute("data-emotion")
        assert emotion in classes
        assert emotion in item.inner_text()
        info = _edge_pixel(page)
        assert (info["face"]["emotion"] == emotion
                and info["face"]["box"] == [int(v) for v in item.get_attribute("data-box").split(",")])

        # the box, drawn over the video in the emotion's colour, around the face (upper middle of the frame)
        w, h = info["size"]  # the frames sent (Chromium may crop the 480x600 video to the asked 4:3 or 1:1)
        assert w == 480 and 480 <= h <= 600
        assert info["overlay"] == page.evaluate("[video.videoWidth, video.videoHeight]") == [w, h]
        x, y, bw, bh = info["face"]["box"]
        assert 0.25 * w < x + bw / 2 < 0.75 * w and y + bh / 2 < 0.5 * h and bw > 60
        px = np.array(info["pixels"]).reshape(-1, 4)
        opaque = px[px[:, 3] > 200]
        assert len(opaque), f"no box stroke at the left edge of {info['face']['box']}"
        assert np.abs(opaque[:, :3] - np.array(emotion_color(emotion))).max() <= 10

        # FPS, the running chart and the status
        fps = float(page.inner_text("#fps").split()[0])
        assert fps > 0
        assert page.evaluate("window.ferkit.history.filter(p => p).length") >= 3
        chart_ink = page.evaluate("""() => {
            const d = document.getElementById('chart').getContext('2d').getImageData(0, 0, 480, 200).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4) if (d[i + 3] && (d[i] > 120 || d[i + 1] > 120 || d[i + 2] > 120)) n++;
            return n; }""")
        assert chart_ink > 0
        assert page.inner_text("#status").startswith("live")

        # everything came from ferkit: no CDN, no other host
        assert all(u.startswith((server_url, "data:", "blob:", server_url.replace("http", "ws")))
                   for u in requests), requests
        assert not errors
    finally:
        context.close()


def test_photo_upload_when_there_is_no_camera(browser, server_url: str) -> None:
    no_camera = ("navigator.mediaDevices.getUserMedia = () => "
                 "Promise.reject(new DOMException('Requested device not found', 'NotFoundError'));")
    context, page, _requests, errors = _open(browser, server_url, no_camera)
    try:
        page.wait_for_selector("#camera-note:not([hidden])", timeout=30_000)
        assert "NotFoundError" in page.inner_text("#camera-note")
        assert page.inner_text("#status") == "no camera"
        page.set_input_files("#photo", str(TWO))
        page.wait_for_function("window.ferkit.last && window.ferkit.last.faces.length === 2", timeout=60_000)
        assert page.locator("#faces li[data-emotion]").count() == 2
        assert page.inner_text("#status") == "photo · 2 faces"
        assert page.evaluate("window.ferkit.frames") == 0  # nothing went over the WebSocket
        info = _edge_pixel(page)
        assert info["overlay"] == info["size"] == list(Image.open(TWO).size)
        assert any(a > 200 for a in info["pixels"][3::4])
        assert not errors
    finally:
        context.close()
