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

from ship_model import card_figures  # scripts/ is on sys.path when run

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
    full = {t: evaluate(target, fit["data"], fit["format"], fit["split"], tta=t, prior="train")
            for t in ("none", a.tta)}
    sub = evaluate(target, fit["data"], fit["format"], fit["split"], tta=a.tta, limit=1000, prior="train")
    meta["card"] = {
        **card_figures(full, sub, a.tta, fit["format"], fit["split"]),
        "fit": f"{meta['method']} voting, weights fitted by {fit['objective']} on {fit['split']} (majority labels)",
    }
    atomic_write_text(path, json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta["card"], indent=2))


if __name__ == "__main__":
    main()
