"""One decoder: the same photo stored four ways (8-bit PNG, 16-bit PNG, a JPEG stored sideways with
its EXIF orientation tag, palette PNG) gives the same faces and probabilities through the Python
API, the CLI and the server; the pixel limit and the errors are the same everywhere."""
from __future__ import annotations

import io
import json
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from ferkit.cli import main as ferkit_main
from ferkit.images import MAX_MEGAPIXELS, ImageReadError, decode, load_image

from _paths import SAMPLES, require
from _server import Server

require(SAMPLES)

TWO = SAMPLES / "two_people.jpg"
CONTENT_TYPE = {".png": "image/png", ".jpg": "image/jpeg"}
FORMAT_NAMES = ("BMP", "GIF", "JPEG", "PNG", "PPM", "TIFF", "WebP")  # what `ferkit predict` reads


@pytest.fixture(scope="module")
def variants(tmp_path_factory) -> dict[str, tuple[Path, np.ndarray]]:
    """name -> (file, the exact RGB pixels it holds, upright): the reference for every front end."""
    tmp = tmp_path_factory.mktemp("variants")
    photo = Image.open(TWO).convert("RGB")
    photo = photo.resize((480, round(480 * photo.height / photo.width)))
    rgb = np.asarray(photo)
    out = {}

    path = tmp / "photo8.png"
    photo.save(path)
    out["png8"] = (path, rgb)

    grey = np.asarray(photo.convert("L"))
    path = tmp / "photo16.png"
    Image.fromarray(grey.astype(np.uint16) * 257).save(path)  # 16-bit grey, full range
    assert Image.open(path).mode.startswith("I")
    out["png16"] = (path, np.repeat(grey[..., None], 3, axis=2))

    # stored turned 90 degrees counter-clockwise, tagged "rotate 90 clockwise to display" (orientation 6)
    path = tmp / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(np.rot90(rgb, 1))).save(path, quality=95, exif=exif)
    with Image.open(path) as im:
        stored = np.asarray(im.convert("RGB"))  # the JPEG's own pixels, orientation not applied
    assert stored.shape[:2] == (rgb.shape[1], rgb.shape[0])
    out["exif_jpeg"] = (path, np.ascontiguousarray(np.rot90(stored, -1)))

    path = tmp / "palette.png"
    pal = photo.quantize(256)
    pal.save(path)
    assert Image.open(path).mode == "P"
    out["palette"] = (path, np.asarray(pal.convert("RGB")))
    return out


def _faces(d: dict) -> list[tuple[list[int], dict[str, float]]]:
    return [(f["box"], f["probabilities"]) for f in d["faces"]]


def _same(got: list, want: list, what: str) -> None:
    assert len(got) == len(want) >= 1, f"{what}: {len(got)} faces, expected {len(want)}"
    for (box, probs), (wbox, wprobs) in zip(got, want):
        assert np.abs(np.subtract(box, wbox)).max() <= 2, f"{what}: box {box} vs {wbox}"
        diff = max(abs(probs[c] - wprobs[c]) for c in wprobs)
        assert diff <= 1e-3, f"{what}: probabilities differ by {diff:.2e}"


def test_decoder_gives_the_stored_pixels_upright(variants):
    for name, (path, ref) in variants.items():
        np.testing.assert_array_equal(load_image(path), ref, err_msg=name)
        rgb, size = decode(path.read_bytes())
        np.testing.assert_array_equal(rgb, ref, err_msg=name)
        assert size == (ref.shape[1], ref.shape[0])


def test_same_faces_through_api_cli_and_server(variants, rec, tmp_path, capsys):
    want = {name: _faces(rec.predict(ref).to_dict()) for name, (_, ref) in variants.items()}
    for name, (path, _) in variants.items():
        _same(_faces(rec.predict(path).to_dict()), want[name], f"API {name}")

    assert ferkit_main(["predict", *(str(p) for p, _ in variants.values()), "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in cli] == [str(p) for p, _ in variants.values()]
    for name, r in zip(variants, cli):
        _same(_faces(r), want[name], f"CLI {name}")

    srv = Server(tmp_path)
    try:
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            for name, (path, _) in variants.items():
                resp = c.post("/v1/predict", content=path.read_bytes(),
                              headers={"Content-Type": CONTENT_TYPE[path.suffix]})
                assert resp.status_code == 200, resp.text
                _same(_faces(resp.json()), want[name], f"server {name}")
    finally:
        srv.stop()


def _png_header(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")  # IHDR width, height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # and its checksum
    return bytes(data)


def test_pixel_limit_is_one_line_and_counts_decoded_pixels(tmp_path, capsys):
    big = tmp_path / "big.png"
    big.write_bytes(_png_header(9000, 6000))  # 54 MP claimed: over the default limit
    with pytest.raises(ImageReadError) as e:
        load_image(big)
    assert e.value.reason == "too_large"
    assert str(e.value).startswith(f"{big}: image too large") and "\n" not in str(e.value)
    assert f"{MAX_MEGAPIXELS:g} megapixels" in str(e.value)

    # the CLI reports it in one line, goes on with the other file, and takes --max-megapixels
    assert ferkit_main(["predict", str(big), str(TWO), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert [r["path"] for r in json.loads(out)] == [str(TWO)]
    assert f"{big}: image too large" in err
    assert ferkit_main(["predict", str(TWO), "--max-megapixels", "0.1"]) == 2  # the only input: an error
    assert "the limit is 0.1 megapixels" in capsys.readouterr().err

    # a large JPEG decoded at a reduced size for detection counts at that size
    photo = tmp_path / "large.jpg"
    Image.open(TWO).convert("RGB").resize((2000, 1500)).save(photo, quality=80)  # 3 MP
    with pytest.raises(ImageReadError, match="image too large"):
        decode(photo, max_pixels=2_000_000)
    rgb, size = decode(photo, max_pixels=2_000_000, reduce_to=500_000)  # decoded at 1/2: 0.75 MP
    assert rgb.shape == (750, 1000, 3) and size == (2000, 1500)


def _truncated_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()[:2000]  # the header and part of the pixel data


@pytest.mark.parametrize(("data", "reason", "text"), [
    (b"", "empty", "empty"),
    (b"not an image at all", "not_image", "Pillow cannot identify the 19 bytes"),
    (_truncated_png(), "corrupt", "truncated or corrupt image (PNG: "),
])
def test_bad_bytes_have_a_reason(data, reason, text):
    with pytest.raises(ImageReadError) as e:
        decode(data, name="upload.bin")
    assert e.value.reason == reason
    assert str(e.value).startswith("upload.bin: ") and text in str(e.value) and "\n" not in str(e.value)


def test_dataset_images_decode_the_same_way(tmp_path):
    """A class-per-folder data set reads EXIF-rotated and 16-bit files as the CLI does, grey kept grey."""
    from ferkit.data import load_dataset

    for cls in ("happy", "sad"):
        (tmp_path / cls).mkdir()
    grey = np.asarray(Image.open(TWO).convert("L").resize((64, 48)))
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "happy" / "a16.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(np.rot90(grey, 1))).save(tmp_path / "sad" / "b.png", exif=exif)
    faces = load_dataset(tmp_path, format="folder")
    by_name = {Path(p).name: faces.load_image(i) for i, p in enumerate(faces.paths)}
    np.testing.assert_array_equal(by_name["a16.png"], grey)
    np.testing.assert_array_equal(by_name["b.png"], grey)


def test_a_refused_format_costs_no_parse(tmp_path, capsys):
    """An 8.8 MB EPS (Pillow would scan it for seconds, then hand it to Ghostscript) is refused from its
    first bytes in < 0.5 s, in one line naming the file and the format: as a file, as bytes, by
    `ferkit predict` and by the real server, sent as image/jpeg."""
    import time

    from ferkit.serve.errors import InputError
    from ferkit.serve.images import decode_image

    eps = tmp_path / "big.eps"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (1200, 1200, 3), np.uint8)).save(eps, "EPS")
    data = eps.read_bytes()
    assert data.startswith(b"%!PS-Adobe") and len(data) > 8_000_000
    for source, name in ((eps, str(eps)), (data, "image")):
        start = time.perf_counter()
        with pytest.raises(ImageReadError) as e:
            decode(source)
        assert time.perf_counter() - start < 0.5
        assert e.value.reason == "format" and "\n" not in str(e.value)
        assert str(e.value).startswith(f"{name}: image format EPS is not accepted (accepted: BMP, GIF, JPEG, ")
    start = time.perf_counter()
    with pytest.raises(InputError) as e:
        decode_image(data, max_pixels=10**7)
    assert time.perf_counter() - start < 0.5 and e.value.status_code == 415

    assert ferkit_main(["predict", str(eps)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"ferkit: error: {eps}: image format EPS is not accepted (accepted: {', '.join(FORMAT_NAMES)})"

    srv = Server(tmp_path)
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            assert c.post("/v1/predict", content=TWO.read_bytes(),
                          headers={"Content-Type": "image/jpeg"}).status_code == 200
            start = time.perf_counter()
            resp = c.post("/v1/predict", content=data, headers={"Content-Type": "image/jpeg"})
            took = time.perf_counter() - start
        assert resp.status_code == 415 and "image format EPS is not accepted" in resp.json()["detail"], resp.text
        assert took < 0.5, f"the refusal took {took:.2f} s"
    finally:
        srv.stop()
