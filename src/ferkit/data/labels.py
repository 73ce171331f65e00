"""Emotion label sets and class-name normalisation.

Canonical class names are lower-case adjectives: angry, disgust, fear, happy, sad, surprise,
neutral, contempt. Every loader maps the names a dataset uses (anger, happiness, sadness, 'AN',
folder names such as '1_happy') onto these through :func:`normalize_class_name`.
"""
from __future__ import annotations

import re

from ferkit.errors import DataError

#: FER2013's 7 classes in the order of the ICML CSV emotion codes 0..6.
FER2013_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: FER+'s 8 emotion classes in label.csv column order (unknown and NF are not classes).
FERPLUS_CLASSES: tuple[str, ...] = ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt")
ALL_CLASSES: tuple[str, ...] = FER2013_CLASSES + ("contempt",)

_ALIASES = {
    "angry": "angry", "anger": "angry", "an": "angry", "ang": "angry", "mad": "angry",
    "disgust": "disgust", "disgusted": "disgust", "di": "disgust", "dis": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear", "fe": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "ha": "happy", "hap": "happy",
    "sad": "sad", "sadness": "sad", "sa": "sad",
    "surprise": "surprise", "surprised": "surprise", "surprize": "surprise", "su": "surprise",
    "sur": "surprise",
    "neutral": "neutral", "neutrality": "neutral", "calm": "neutral", "ne": "neutral", "neu": "neutral",
    "contempt": "contempt", "contemptuous": "contempt", "co": "contempt",
}


def normalize_class_name(name: str, *, source: str = "class name") -> str:
    """Map a dataset's class name onto ferkit's canonical name.

    Accepts case and separator variants and numeric prefixes as used by class-per-folder
    releases ('Happiness', 'anger', '3_Happy', '03-sad'). Raises :class:`DataError` naming
    ``source`` for a name that is not an emotion.
    """
    key = re.sub(r"^[0-9]+[ _\-.]*", "", name.strip().lower())
    key = re.sub(r"[ _\-.]+", "", key)
    if key in _ALIASES:
        return _ALIASES[key]
    raise DataError(
        f"{source}: unknown emotion class {name!r} (known: {', '.join(ALL_CLASSES)} "
        "and aliases such as anger, happiness)"
    )


def parse_class_list(spec: str | list[str] | tuple[str, ...] | None, *, source: str = "classes") -> list[str] | None:
    """Parse 'angry,happy,...' or a list into canonical names (order kept, duplicates refused)."""
    if spec is None:
        return None
    items = [s for s in (spec.split(",") if isinstance(spec, str) else spec) if str(s).strip()]
    out = [normalize_class_name(str(s), source=source) for s in items]
    if not out:
        raise DataError(f"{source}: empty class list")
    dup = {c for c in out if out.count(c) > 1}
    if dup:
        raise DataError(f"{source}: class listed twice: {', '.join(sorted(dup))}")
    return out
