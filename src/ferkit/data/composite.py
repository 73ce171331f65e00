"""Uncropped test photos made from cropped faces: each face of a FaceSet (FER2013's 48x48 crops)
enlarged and placed into a real photo background, so that a face detector has something to find
and the place it should find it is known.

>>> from ferkit.data.composite import build_composites
>>> faces, _ = ferkit.evaluate.load_eval_data("../shared/data/fer2013", "fer2013-folder", "PublicTest", limit=600)
>>> made = build_composites(faces, "/tmp/uncropped")      # /tmp/uncropped/<class>/*.jpg + boxes.csv
>>> made[0].path, made[0].label, made[0].box              # ground-truth [x, y, w, h] of the pasted crop

The output is a class-per-folder set (``--format folder``). The ground-truth box is the whole
pasted crop, i.e. FER2013's own framing of the face (the framing the models were trained on); a
detector box that frames the face the same way has IoU 1 with it. The outer ``feather`` band of the
crop is blended into the background (a hard square edge would be an artefact no real photo has);
inside that band the pixels are exactly the enlarged face.
"""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferkit.data.faceset import FaceSet
from ferkit.errors import DataError

__all__ = [
    "BACKGROUNDS",
    "SAMPLES_DIR",
    "SCALES",
    "Background",
    "Composite",
    "build_composites",
    "compose",
    "load_background",
]

#: where the sample photos are, relative to the repository root (as the other defaults)
SAMPLES_DIR = "../shared/data/samples"
#: side in pixels of the enlarged face crop, cycled over the faces
SCALES: tuple[int, ...] = (96, 128, 160, 224, 320)


@dataclass(frozen=True)
class Background:
    """A region of a sample photo with no human face in it: ``region`` ``[x, y, w, h]`` in the
    photo's pixels, None for the whole photo (dlib-hog finds no face in any of them)."""

    file: str
    region: tuple[int, int, int, int] | None = None


#: face-free regions of ``../shared/data/samples``: the four dogs, and the suits, flags and rooms
#: below or beside the faces of the portraits (the faces are at least 100 px outside each region)
BACKGROUNDS: tuple[Background, ...] = (
    Background("dogs.jpg"),
    Background("biden.jpg", (0, 900, 970, 1304)),
    Background("obama.jpg", (0, 560, 910, 577)),
    Background("obama-720p.jpg", (0, 0, 470, 720)),
    Background("obama-720p.jpg", (860, 0, 420, 720)),
    Background("two_people.jpg", (0, 330, 1126, 331)),
)


@dataclass(frozen=True)
class Composite:
    """One written photo: its path, class name, the ground-truth ``[x, y, w, h]`` box of the pasted
    face crop, the id of the source face in the FaceSet and the background it was placed into."""

    path: Path
    label: str
    box: tuple[int, int, int, int]
    source: str
    background: str


def load_background(background: Background, samples_dir: str | os.PathLike[str] = SAMPLES_DIR) -> np.ndarray:
    """The background region as an RGB uint8 array; DataError naming the file if it is missing,
    unreadable or the region lies outside it."""
    from ferkit.images import ImageReadError, load_image

    path = Path(samples_dir) / background.file
    try:
        rgb = load_image(path)
    except ImageReadError as e:
        raise DataError(f"{path}: cannot read the background photo ({e.detail})") from None
    if background.region is None:
        return rgb
    x, y, w, h = background.region
    if x < 0 or y < 0 or w < 1 or h < 1 or x + w > rgb.shape[1] or y + h > rgb.shape[0]:
        raise DataError(f"{path}: background region {list(background.region)} lies outside the "
                        f"{rgb.shape[1]}x{rgb.shape[0]} photo")
    return np.ascontiguousarray(rgb[y : y + h, x : x + w])


def _feather_mask(side: int, feather: float) -> np.ndarray:
    """``(side, side)`` float alpha: 1 inside, ramping linearly to 0 over the outer ``feather * side`` pixels."""
    band = feather * side
    if band <= 0:
        return np.ones((side, side), np.float64)
    edge = np.minimum(np.arange(side) + 0.5, side - np.arange(side) - 0.5)
    ramp = np.clip(edge / band, 0.0, 1.0)
    return np.minimum(ramp[:, None], ramp[None, :])


def compose(face: np.ndarray, background: np.ndarray, box: Sequence[int], *, feather: float = 0.08) -> np.ndarray:
    """``background`` (RGB uint8) with ``face`` (gray or RGB uint8, any size) resized to the square
    ``box`` ``[x, y, side, side]`` and pasted there, its outer ``feather`` band blended (a new array).

    Where the blend weight is 1 (all but the outer ``ceil(feather * side)`` pixels) the result is
    exactly ``cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)``."""
    import cv2

    x, y, side, side_h = (int(v) for v in box)
    if side != side_h or side < 1:
        raise DataError(f"compose: the face box must be square and non-empty, got {list(box)}")
    if x < 0 or y < 0 or x + side > background.shape[1] or y + side > background.shape[0]:
        raise DataError(f"compose: face box {list(box)} does not fit the "
                        f"{background.shape[1]}x{background.shape[0]} background")
    rgb = face if face.ndim == 3 else np.repeat(face[:, :, None], 3, axis=2)
    big = cv2.resize(np.ascontiguousarray(rgb), (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    alpha = _feather_mask(side, feather)[:, :, None]
    out = background.copy()
    under = out[y : y + side, x : x + side].astype(np.float64)
    out[y : y + side, x : x + side] = np.clip(np.rint(alpha * big + (1 - alpha) * under), 0, 255).astype(np.uint8)
    return out


def _canvas(background: np.ndarray, longest: int, side: int) -> np.ndarray:
    """The background resized so that its longer side is ``longest``, or larger where the face
    (``side`` pixels) would not fit inside with a margin of a tenth of the face on each side."""
    import cv2

    h, w = background.shape[:2]
    factor = max(longest / max(h, w), side * 1.2 / min(h, w))
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(background, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)


def build_composites(
    faces: FaceSet,
    out: str | os.PathLike[str],
    *,
    scales: Sequence[int] = SCALES,
    canvas: int = 640,
    backgrounds: Sequence[Background] = BACKGROUNDS,
    samples_dir: str | os.PathLike[str] = SAMPLES_DIR,
    feather: float = 0.08,
    seed: int = 0,
    ext: str = ".jpg",
) -> list[Composite]:
    """Write one uncropped photo per face of ``faces`` into ``out/<class>/`` and a manifest
    ``out/boxes.csv`` (``path,label,x,y,w,h,source,background``); return what was written, in the
    order of ``faces``.

    Args:
        faces: labelled face crops (e.g. FER2013 PublicTest from ``load_eval_data``).
        out: a new or empty folder (refused otherwise, so that old photos never mix with new ones).
        scales: side in pixels of the enlarged face, cycled over the faces (face ``i`` gets
            ``scales[i % len(scales)]``).
        canvas: longer side of the photo in pixels (the background is resized to it; a canvas too
            small for a face grows). Detection time grows with it: dlib-cnn takes ~1 s per 640 px photo.
        backgrounds: face-free photo regions to place faces into (one chosen per face).
        samples_dir: folder holding the background photos.
        feather: width of the blended band at the crop's edge, as a fraction of its side.
        seed: face ``i``'s background and position depend only on ``(seed, i)``.
        ext: ``.jpg`` (quality 95, like FER2013's own files) or ``.png`` (lossless).
    Raises DataError (one line) for a bad argument, a non-empty ``out`` or a missing background.
    """
    from ferkit._fileio import atomic_write_image, atomic_write_text

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out}: not an empty folder; build_composites writes only into a new or empty folder")
    if ext not in (".jpg", ".png"):
        raise DataError(f"build_composites: ext must be .jpg or .png, not {ext!r}")
    if not scales or min(scales) < 8:
        raise DataError(f"build_composites: scales must be face sides of at least 8 px, got {list(scales)}")
    if not backgrounds:
        raise DataError("build_composites: no backgrounds given")
    if not 0 <= feather < 0.5:
        raise DataError(f"build_composites: feather must be in [0, 0.5), not {feather}")
    photos = [load_background(b, samples_dir) for b in backgrounds]
    made: list[Composite] = []
    for i in range(len(faces)):
        rng = np.random.default_rng([seed, i])
        side = int(scales[i % len(scales)])
        k = int(rng.integers(len(backgrounds)))
        bg = _canvas(photos[k], canvas, side)
        x = int(rng.integers(0, bg.shape[1] - side + 1))
        y = int(rng.integers(0, bg.shape[0] - side + 1))
        label = faces.classes[int(faces.labels[i])]
        source = str(faces.ids[i])
        path = out / label / f"{i:05d}_{Path(source).stem}{ext}"
        image = compose(faces.load_image(i), bg, (x, y, side, side), feather=feather)
        atomic_write_image(image, path, jpeg_quality=95 if ext == ".jpg" else None)
        region = "" if backgrounds[k].region is None else ":" + ",".join(map(str, backgrounds[k].region))
        made.append(Composite(path, label, (x, y, side, side), source, backgrounds[k].file + region))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "label", "x", "y", "w", "h", "source", "background"])
    writer.writerows([c.path.relative_to(out), c.label, *c.box, c.source, c.background] for c in made)
    atomic_write_text(out / "boxes.csv", text.getvalue())
    return made
