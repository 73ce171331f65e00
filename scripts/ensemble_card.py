"""Write the ``card`` of a shipped ensemble (developers' tool; ``scripts/ship_model.py`` does it for a
single model): its figures on the split its weights were fitted on, as ``tests/test_shipped.py`` and
MODEL_CARD.md read them.

    python scripts/ensemble_card.py ensemble_votes [--tta flip]

Evaluates the ensemble on its ``fit.split`` (FER2013Valid, FER+ majority labels over its classes) without
TTA and with ``--tta``, and on the fixed 1,000-image stratified subset with ``--tta``; writes the card into
``src/ferkit/weights/<stem>.json`` (atomically) and prints it.
"""
from __future__ import annotations

import argparse
import json

from ferkit._fileio import atomic_write_text
from ferkit.evaluate import evaluate
from ferkit.models import WEIGHTS_DIR, read_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stem", help="the ensemble's file name in src/ferkit/weights, without .json")
    ap.add_argument("--tta", default="flip", help="TTA the card's headline figure uses (default: flip)")
    a = ap.parse_args()

    path = WEIGHTS_DIR / f"{a.stem}.json"
    meta = read_json(path)
    if not meta or meta.get("arch") != "ensemble":
        raise SystemExit(f"{path}: not a shipped ensemble")
    fit = meta["fit"]
    target = str(path.with_suffix(""))
    full = {t: evaluate(target, fit["data"], fit["format"], fit["split"], tta=t) for t in ("none", a.tta)}
    sub = evaluate(target, fit["data"], fit["format"], fit["split"], tta=a.tta, limit=1000)
    head = full[a.tta]
    meta["card"] = {
        "tta": a.tta, "data_format": fit["format"], "val_split": fit["split"],
        "val_accuracy": round(full["none"]["accuracy"], 4),
        f"val_accuracy_{a.tta}": round(head["accuracy"], 4),
        "val_macro_f1": round(head["macro_f1"], 4),
        "val_limit1000_accuracy": round(sub["accuracy"], 4),
        "recall": {c: round(v["recall"], 4) for c, v in head["per_class"].items()},
        "fit": f"{meta['method']} voting, weights fitted by {fit['objective']} on {fit['split']} (majority labels)",
    }
    atomic_write_text(path, json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta["card"], indent=2))


if __name__ == "__main__":
    main()
