"""The shipped default model: loads by name with its checksum, and still scores what MODEL_CARD.md says."""
from __future__ import annotations

import shutil

import pytest
import torch

from ferkit.errors import WeightsError
from ferkit.models import load_model, shipped_models
from ferkit.models._shipped import WEIGHTS_DIR

from _paths import FER, FERPLUS, REPO


def test_default_loads_by_name_and_by_architecture():
    names = shipped_models()
    assert {"default", "vgg_fer"} <= names.keys()
    model, meta = load_model("default")
    _, meta2 = load_model("vgg_fer")
    assert meta["sha256"] == meta2["sha256"]
    assert meta["classes"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    for stem in set(names.values()):
        assert (WEIGHTS_DIR / f"{stem}.safetensors").stat().st_size <= 25 * 2**20
    with torch.no_grad():
        p = model(torch.zeros(1, meta["input"]["channels"], meta["input"]["size"], meta["input"]["size"])).softmax(1)
    assert p.shape == (1, 7)


def test_unknown_model_name_is_one_line_error():
    with pytest.raises(WeightsError, match=r"nonexistent: not a model file or folder, nor a shipped model \(default"):
        load_model("nonexistent")


def test_modified_shipped_weights_fail_the_checksum(tmp_path):
    stem = shipped_models()["default"]
    for suffix in (".safetensors", ".json"):
        shutil.copy(WEIGHTS_DIR / f"{stem}{suffix}", tmp_path / f"m{suffix}")
    data = bytearray((tmp_path / "m.safetensors").read_bytes())
    data[-100] ^= 0xFF
    (tmp_path / "m.safetensors").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="checksum mismatch"):
        load_model(tmp_path / "m")


@pytest.mark.skipif(not FER.is_dir(), reason=f"FER2013 not found at {FER}")
def test_publictest_subset_accuracy_matches_model_card():
    """A fixed stratified 1,000-image PublicTest subset, evaluated as `ferkit evaluate --limit 1000` does."""
    from ferkit.evaluate import evaluate

    _, meta = load_model("default")
    card = meta["card"]
    expected = card["publictest_limit1000_accuracy"]
    text = (REPO / "MODEL_CARD.md").read_text()
    assert f"{100 * expected:.2f}%" in text, "MODEL_CARD.md must state the subset figure the test checks"
    torch.set_num_threads(1)
    m = evaluate("default", FER, "fer2013-folder", "PublicTest", limit=1000, tta=card["tta"])
    assert m["n_images"] == 1000
    assert abs(m["accuracy"] - expected) <= 0.01, (m["accuracy"], expected)


@pytest.mark.skipif(not FERPLUS.is_dir(), reason=f"FER+ not found at {FERPLUS}")
def test_ferplus_model_subset_accuracy_matches_model_card():
    """The shipped FER+ model (8 classes, vote distributions) on a fixed stratified 1,000-image subset of
    FER2013Valid with majority labels, as `ferkit evaluate --limit 1000` does; stored in fp16, loaded in fp32."""
    from ferkit.evaluate import evaluate

    model, meta = load_model("ferplus")
    assert meta["classes"] == ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt"]
    assert meta["dtype"] == "float16" and next(model.parameters()).dtype == torch.float32
    card = meta["card"]
    expected = card["val_limit1000_accuracy"]
    assert f"{100 * expected:.2f}%" in (REPO / "MODEL_CARD.md").read_text(), "MODEL_CARD.md must state it"
    torch.set_num_threads(1)
    m = evaluate("ferplus", FERPLUS, "ferplus", card["val_split"], limit=1000, tta=card["tta"])
    assert m["n_images"] == 1000 and m["classes"] == meta["classes"]
    assert abs(m["accuracy"] - expected) <= 0.01, (m["accuracy"], expected)
