"""The shipped models: load by name (``arch.tag``, short aliases, deprecated old names) with their checksum,
and still scores what MODEL_CARD.md says."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import warnings

import pytest
import torch

from ferkit.errors import FerkitDeprecationWarning, WeightsError
from ferkit.models import (
    WEIGHTS_DIR,
    deprecated_names,
    load_model,
    resolve,
    resolve_model_path,
    retired_names,
    shipped_aliases,
    shipped_models,
)

from _paths import FER, FERPLUS, REPO, SAMPLES


def test_shipped_names_are_arch_dot_tag_with_aliases():
    """Every shipped model has an ``arch.tag`` name whose arch is the one its weights were built with;
    the short names (default, ferplus) load the same file, without a warning."""
    names, aliases = shipped_models(), shipped_aliases()
    assert {"default", "ferplus"} <= aliases.keys()
    canonical = [n for n in names if n not in aliases]
    assert canonical and set(aliases.values()) <= set(canonical)
    for name in canonical:
        arch, _, tag = name.partition(".")
        assert tag and resolve(name).arch == arch, name
    for short in ("default", "ferplus"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _, meta = load_model(short)
            _, meta2 = load_model(aliases[short])
        assert meta["sha256"] == meta2["sha256"], short
        assert resolve_model_path(short) == resolve_model_path(aliases[short]), short
    assert load_model("default")[1]["classes"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    # one safetensors and one ONNX export per single model; an ensemble ships only its JSON (ONNX Runtime
    # runs it from its members' exports): everything shipped together at most 60 MB
    stems = set(names.values())
    singles = {s for s in stems if (WEIGHTS_DIR / f"{s}.safetensors").is_file()}
    assert ({p.stem for p in WEIGHTS_DIR.glob("onnx/*.onnx")} == {p.stem for p in WEIGHTS_DIR.glob("*.safetensors")}
            == singles)
    files = [p for p in WEIGHTS_DIR.rglob("*") if p.is_file()]
    assert sum(f.stat().st_size for f in files) <= 60e6, sorted((f.name, f.stat().st_size) for f in files)


@pytest.mark.parametrize("old", sorted(deprecated_names()))
def test_old_names_still_load_with_a_deprecation_warning(old):
    new = deprecated_names()[old]
    assert old not in shipped_models()
    with pytest.warns(FerkitDeprecationWarning, match=rf"'{old}' is deprecated.*use '{re.escape(new)}'"):
        _, meta = load_model(old)
    assert meta["sha256"] == load_model(new)[1]["sha256"]


def test_cli_says_a_name_is_deprecated_in_one_line():
    """The CLI prints the warning once, as one line, and does the work; the listing shows both names."""
    out = subprocess.run([sys.executable, "-m", "ferkit", "predict", "--model", "vgg_fer_w15",
                          str(SAMPLES / "two_people.jpg"), "--format", "json"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    warned = [line for line in out.stderr.splitlines() if "deprecated" in line]
    assert warned == [("ferkit: warning: model name 'vgg_fer_w15' is deprecated and will be removed: "
                       "use 'vgg_fer.w15_fer2013'")], out.stderr
    assert len(json.loads(out.stdout)[0]["faces"]) == 2
    listing = subprocess.run([sys.executable, "-m", "ferkit", "models"], capture_output=True, text=True,
                             timeout=300, check=True).stdout
    own = re.escape(f"prior {resolve('default').prior}")     # the class prior it predicts under
    assert re.search(rf"^  vgg_fer\.w2_votes +default +votes_vgg_fer_w2 +{own}$", listing, re.MULTILINE), listing
    assert "vgg_fer_w15 -> vgg_fer.w15_fer2013" in listing


@pytest.mark.parametrize("name", sorted(retired_names()))
def test_a_retired_name_is_a_one_line_error_saying_what_replaces_it(name):
    with pytest.raises(WeightsError, match=rf"^{re.escape(name)}: no longer shipped with ferkit \(.+\)$"):
        load_model(name)


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


def _carded() -> list[str]:
    """The shipped models (arch.tag names) whose JSON has a card with a fixed-subset figure."""
    return sorted(n for n in shipped_models() if n not in shipped_aliases() and "card" in (resolve(n).fields or {}))


@pytest.mark.parametrize("name", _carded())
def test_fixed_subset_accuracy_matches_model_card(name):
    """Each shipped model on the fixed stratified 1,000-image subset of its validation split, as
    `ferkit evaluate --limit 1000` does (FER2013 PublicTest with FER2013's labels, or FER2013Valid with the
    FER+ majority labels): the figure its card records and MODEL_CARD.md states."""
    from ferkit.evaluate import evaluate

    card = resolve(name).fields["card"]
    split = card.get("val_split", "PublicTest")
    key = "publictest" if split == "PublicTest" else "val"
    expected = card[f"{key}_limit1000_accuracy"]
    assert f"{100 * expected:.2f}%" in (REPO / "MODEL_CARD.md").read_text(), "MODEL_CARD.md must state it"
    data = FER if card.get("data_format", "fer2013-folder") == "fer2013-folder" else FERPLUS
    if not data.is_dir():
        pytest.skip(f"data not found at {data}")
    torch.set_num_threads(1)
    # a card holds the model as trained (prior train), whatever prior it predicts under by default
    m = evaluate(name, data, card.get("data_format", "fer2013-folder"), split, limit=1000, tta=card["tta"],
                 prior="train")
    assert m["n_images"] >= 990  # FER+: the subset less its contempt faces for a 7-class model
    assert abs(m["accuracy"] - expected) <= 0.01, (m["accuracy"], expected)


@pytest.mark.parametrize("name", sorted(shipped_models()))
def test_prior_works_for_every_shipped_model(name):
    """`--prior uniform` for every shipped name, ensembles included, on both backends: Bayes' rule on the
    model's recorded training prior, p(c) proportional to p_train(c) / train_prior(c)."""
    from ferkit.infer import Recognizer

    photo = SAMPLES / "two_people.jpg"
    for backend in ("onnx", "torch"):
        trained = Recognizer(name, backend=backend, prior="train")
        base = trained.predict(photo).faces[0].probabilities
        flat = Recognizer(name, backend=backend, prior="uniform").predict(photo).faces[0].probabilities
        ratio = {c: p / t for (c, p), t in zip(base.items(), trained.meta["train_prior"], strict=True)}
        expected = {c: r / sum(ratio.values()) for c, r in ratio.items()}
        assert flat == pytest.approx(expected, abs=1e-5) and flat != pytest.approx(base), (name, backend)


def test_cli_predict_ensemble_with_a_uniform_prior():
    out = subprocess.run([sys.executable, "-m", "ferkit", "predict", "--model", "ensemble", "--prior", "uniform",
                          str(SAMPLES / "two_people.jpg"), "--format", "json"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)[0]["faces"]) == 2


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
    m = evaluate("ferplus", FERPLUS, "ferplus", card["val_split"], limit=1000, tta=card["tta"], prior="train")
    assert m["n_images"] == 1000 and m["classes"] == meta["classes"]
    assert abs(m["accuracy"] - expected) <= 0.01, (m["accuracy"], expected)


def test_default_is_the_ferplus_net_restricted_to_seven_classes():
    """The shipped default is `ferplus` with contempt's head row removed (MODEL_CARD.md): the same weights as
    ferkit.models.restrict_classes gives, and on a real photo the same class as ferplus's argmax over the 7."""
    from ferkit.infer import Recognizer
    from ferkit.models import load_model, restrict_classes

    default, dmeta = load_model("default")
    ferplus, fmeta = load_model("ferplus")
    restricted, rmeta = restrict_classes(ferplus, fmeta, dmeta["classes"])
    assert rmeta["train_prior"] == pytest.approx(dmeta["train_prior"], abs=1e-6) and "temperature" not in rmeta
    got, want = default.state_dict(), restricted.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)
    with pytest.raises(WeightsError, match="happiness: the model's classes are neutral, happy"):
        restrict_classes(ferplus, fmeta, ["happiness"])
    photo = SAMPLES / "two_people.jpg"
    for d, f in zip(Recognizer("default", backend="torch").predict(photo).faces,
                    Recognizer("ferplus", backend="torch").predict(photo).faces, strict=True):
        shared = {c: p for c, p in f.probabilities.items() if c in d.probabilities}
        assert max(d.probabilities, key=d.probabilities.get) == max(shared, key=shared.get)


@pytest.mark.skipif(not (FER.is_dir() and FERPLUS.is_dir()), reason="FER2013 and FER+ are needed")
def test_choose_prior_prints_each_balance_and_writes_its_table_into_a_document(tmp_path):
    """scripts/choose_prior.py (without --write: the shipped JSONs are left alone) on small subsets: one
    row per balance, one chosen, the same table between the document's markers, the rest kept."""
    doc = tmp_path / "CARD.md"
    doc.write_text("before\n<!-- ferkit-prior:start -->\nold\n<!-- ferkit-prior:end -->\nafter\n")
    shipped = {p: p.read_bytes() for p in WEIGHTS_DIR.rglob("*.json")}
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "choose_prior.py"), "default", "--limit", "70",
                        "--update-docs", str(doc)], capture_output=True, text=True, timeout=600, check=False, cwd=REPO)
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if re.match(r"\| (0|0\.25|0\.5|0\.75|1) \|", line)]
    assert [line.split("|")[1].strip() for line in rows] == ["0", "0.25", "0.5", "0.75", "1"]
    assert sum(line.rstrip().endswith("| chosen |") for line in rows) == 1
    cells = [[c.strip() for c in line.split("|")[2:-1]] for line in rows]    # 2 splits x (acc., bal. acc.), mean, mark
    means = [float(c[4]) for c in cells]
    assert all(abs(float(c[4]) - (float(c[0]) + float(c[2])) / 2) <= 0.006 for c in cells)
    assert cells[means.index(max(means))][5] == "chosen"    # the best mean accuracy, the smaller balance on a tie
    text = doc.read_text()
    assert text.startswith("before\n<!-- ferkit-prior:start -->\n")
    assert text.endswith("<!-- ferkit-prior:end -->\nafter\n")
    assert all(line in text for line in rows) and "old" not in text
    assert {p: p.read_bytes() for p in WEIGHTS_DIR.rglob("*.json")} == shipped
