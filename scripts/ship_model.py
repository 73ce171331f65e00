"""Promote a training run's best model to a model shipped inside the package (developers' tool).

    python scripts/ship_model.py RUN_DIR --stem fer2013_vgg_fer --name vgg_fer.w1_fer2013 \
        [--aliases default] [--tta flip]
    python scripts/ship_model.py RUN_DIR --stem ferplus_vgg_fer_w2 --name vgg_fer.w2_ferplus --aliases ferplus \
        --format ferplus --data ../shared/data/ferplus --dtype float16 --machine "one NVIDIA H200 GPU (lent)"

1. fits the temperature on the validation split (FER2013 PublicTest, FER+ FER2013Valid with
   majority labels; never the test split),
2. evaluates on that split (full, without and with the chosen TTA) and on the fixed 1,000-image
   stratified subset that tests/test_shipped.py re-checks,
3. writes src/ferkit/weights/<stem>.safetensors + .json (with a ``card`` section holding those
   figures and the training time from the run's metrics.csv) and maps its ``arch.tag`` name and aliases in index.json.
Prints the figures for MODEL_CARD.md.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from ferkit.evaluate import calibrate, evaluate
from ferkit.evaluate.report import confusion_percent_table, markdown_table
from ferkit.models import WEIGHTS_DIR, load_model, save_model
from ferkit.train.callbacks import read_epoch_metrics

REPO = Path(__file__).resolve().parents[1]
FER = REPO.parent / "shared" / "data" / "fer2013"


def card_figures(full: dict, sub: dict, tta: str, data_format: str, split: str) -> dict:
    """A card's figures on its validation split, as tests/test_shipped.py reads them: ``full`` maps "none"
    and ``tta`` to that split's metrics, ``sub`` is the fixed 1,000-image subset's (with ``tta``)."""
    head = full[tta]
    key = "publictest" if split == "PublicTest" else "val"  # the first shipped cards' keys name PublicTest
    return {
        "tta": tta, "data_format": data_format, "val_split": split,
        f"{key}_accuracy": round(full["none"]["accuracy"], 4),
        f"{key}_accuracy_{tta}": round(head["accuracy"], 4),
        f"{key}_macro_f1": round(head["macro_f1"], 4),
        f"{key}_limit1000_accuracy": round(sub["accuracy"], 4),
        "recall": {c: round(v["recall"], 4) for c, v in head["per_class"].items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--stem", required=True)
    ap.add_argument("--name", required=True, help="its shipped name, arch.tag (vgg_fer.w15_fer2013)")
    ap.add_argument("--aliases", default="", help="short names that load it, comma-separated (default, ferplus)")
    ap.add_argument("--tta", default="flip", help="TTA the card's headline figure uses")
    ap.add_argument("--data", type=Path, default=FER)
    ap.add_argument("--format", default="fer2013-folder", help="fer2013-folder | ferplus")
    ap.add_argument("--dtype", default="float32", help="float32 | float16 (storage; loads as float32)")
    ap.add_argument("--machine", default="2-core x86_64 CPU, no GPU", help="where the run trained")
    ap.add_argument("--metrics-out", type=Path, help="also write the PublicTest metrics (with --tta) to this JSON file")
    a = ap.parse_args()

    split = {"fer2013-folder": "PublicTest", "ferplus": "FER2013Valid"}[a.format]
    with tempfile.TemporaryDirectory() as tmp:
        cal = calibrate(a.run_dir, a.data, a.format, split, tta=a.tta, out=Path(tmp) / "cal")
        model, meta = load_model(Path(tmp) / "cal")
    full = {t: evaluate((model, meta), a.data, a.format, split, tta=t, prior="train") for t in ("none", a.tta)}
    sub = evaluate((model, meta), a.data, a.format, split, tta=a.tta, limit=1000, prior="train")
    rows = read_epoch_metrics(a.run_dir / "metrics.csv")
    head = full[a.tta]
    card = {
        **card_figures(full, sub, a.tta, a.format, split),
        "temperature": cal["temperature"], "ece_before": cal["ece_before"], "ece_after": cal["ece_after"],
        "epochs": len(rows), "train_minutes": round(sum(r["epoch_time_s"] for r in rows) / 60, 1),
        "machine": a.machine,
    }
    for key in ("format", "ferkit_version", "arch", "num_classes", "dtype", "num_params", "sha256"):
        meta.pop(key, None)
    meta.update(name=a.stem, card=card)
    meta.pop("status", None)
    meta["train"]["run_dir"] = a.run_dir.name
    save_model(model, WEIGHTS_DIR / a.stem, meta, dtype=getattr(torch, a.dtype))
    write_index(a.name, a.stem, [n for n in a.aliases.split(",") if n])
    print(json.dumps(card, indent=2))
    print(card_tables(head))
    if a.metrics_out:
        a.metrics_out.write_text(json.dumps({"card": card, "publictest": head, "publictest_none": full["none"]},
                                            indent=2, default=str) + "\n")


def write_index(name: str, stem: str, aliases: list[str]) -> None:
    """Adds ``name`` -> ``stem`` to index.json and points its aliases at it (an alias taken from
    another model leaves that model under its own ``arch.tag`` name)."""
    index_path = WEIGHTS_DIR / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    index.setdefault("models", {})[name] = stem
    index.setdefault("aliases", {}).update({alias: name for alias in aliases})
    index.setdefault("deprecated", {})
    index_path.write_text(json.dumps(index, indent=2) + "\n")


def card_tables(m: dict) -> str:
    """MODEL_CARD.md's per-class and confusion-matrix tables from a metrics dict (not typed by hand),
    rendered as `ferkit evaluate`'s report.md renders them."""
    rows = [[c, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", v["support"]]
            for c, v in m["per_class"].items()]
    return (markdown_table(["class", "precision", "recall", "F1", "support"], rows) + "\n\n"
            + confusion_percent_table(m))


if __name__ == "__main__":
    main()
