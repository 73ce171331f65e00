"""Choose the class prior a shipped model predicts under (its JSON's ``prior``; developers' tool).

    python scripts/choose_prior.py default [ferplus ...] [--write] [--update-docs MODEL_CARD.md]

A model trained on FER+ predicts under FER+'s class frequencies (a third of its faces neutral, 1% disgust);
a user's faces come with others: posed collections have every expression about equally often, everyday
photos their own mix. ``ferkit.infer.prior_shift`` moves the probabilities to another prior by Bayes' rule;
a *balance* b from 0 to 1 moves them to the training prior raised to 1 - b (0: as trained, 1: uniform).

Each model is evaluated once under its training prior (no TTA, as ``ferkit predict`` runs it) on the two
splits the shipped models are chosen on, FER+ FER2013Valid (majority labels, the model's classes) and
FER2013 PublicTest (FER2013's own labels; argmax over the model's classes that FER2013 has), never a test
split; the probabilities are then re-weighted to each balance of ``--balances``, and the one with the best
mean accuracy over the two splits wins (ties: the smaller balance). FER+ Valid shares the training prior,
so it favours b = 0 by construction; PublicTest is the same kind of face under other labels and other
class frequencies, as the users' faces are. Balanced accuracy (the mean recall: what a class-balanced
collection would give) is printed beside each, not used for the choice.

``--write`` stores the choice as ``prior`` in the model's JSON and in its ONNX export's JSON (the weights
and their hashes are not touched); ``--update-docs`` writes the models' tables between
``<!-- ferkit-prior:start/end -->`` markers.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ferkit import _docblock
from ferkit.evaluate.inference import combine_views
from ferkit.evaluate.metrics import compute_metrics
from ferkit.evaluate.report import markdown_table
from ferkit.evaluate.runner import run_evaluation
from ferkit.infer import prior_shift
from ferkit.models import WEIGHTS_DIR, Weights, canonical_prior, resolve

#: the data sets (FERKIT_DATA, as the tests read it; else ../shared/data beside the checkout)
DATA = Path(os.environ.get("FERKIT_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
SPLITS = (("FER+ Valid", DATA / "ferplus", "ferplus", "FER2013Valid"),
          ("PublicTest", DATA / "fer2013", "fer2013-folder", "PublicTest"))
BALANCES = (0.0, 0.25, 0.5, 0.75, 1.0)


def scores(ev, balance: float) -> tuple[float, float]:
    """(accuracy, balanced accuracy) of an evaluation made under the training prior, re-weighted to ``balance``."""
    probs = combine_views(ev.logits, ev.columns, ev.metrics["temperature"], prior_shift(ev.meta, balance))
    m = compute_metrics(ev.y_true, probs, ev.classes)
    return m["accuracy"], m["macro_recall"]


def choose(name: str, balances: tuple[float, ...], limit: int | None) -> tuple[float, str]:
    """The chosen balance for shipped model ``name`` and its table in Markdown."""
    rows = {b: [] for b in balances}
    for label, data, fmt, split in SPLITS:
        ev = run_evaluation(name, data, fmt, split, prior="train", n_boot=0, limit=limit)
        print(f"{name}: {label} {len(ev.y_true)} faces evaluated", file=sys.stderr)
        for b in balances:
            rows[b].extend(scores(ev, b))
    mean = {b: (r[0] + r[2]) / 2 for b, r in rows.items()}
    best = max(balances, key=lambda b: (round(mean[b], 6), -b))
    header = ["balance", *(f"{label} {what} %" for label, *_ in SPLITS for what in ("acc.", "bal. acc.")),
              "mean acc. %", ""]
    table = [[f"{b:g}", *(f"{100 * v:.2f}" for v in rows[b]), f"{100 * mean[b]:.2f}", "chosen" if b == best else ""]
             for b in balances]
    n = "" if limit is None else f" (a stratified subset of {limit} faces per split)"
    text = (f"`python scripts/choose_prior.py {name}`{n}: `{name}` under each balance of the class prior "
            "(0 = its training prior, 1 = uniform), no TTA, on its two validation splits; the best mean "
            "accuracy is chosen.\n\n" + markdown_table(header, table, "l" + "r" * (len(header) - 2) + "l"))
    return best, text


def write(name: str, balance: float) -> list[Path]:
    """``prior`` set in the model's JSON and its ONNX export's (where there is one)."""
    stem = resolve(name).path.stem
    paths = [p for p in (WEIGHTS_DIR / f"{stem}.json", WEIGHTS_DIR / "onnx" / f"{stem}.json") if p.is_file()]
    for p in paths:
        Weights.from_json(p).replace(prior=canonical_prior(balance)).write(p, keep_mode=True)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="shipped model names (default, ferplus, ensemble, ...)")
    ap.add_argument("--balances", default=",".join(f"{b:g}" for b in BALANCES), help="comma-separated, 0 to 1")
    ap.add_argument("--limit", type=int, help="a stratified subset of N faces per split (a quick look)")
    ap.add_argument("--write", action="store_true", help="store each choice as the model JSON's prior")
    ap.add_argument("--update-docs", nargs="*", metavar="FILE", help="write each table into these files' markers")
    a = ap.parse_args()
    balances = tuple(float(b) for b in a.balances.split(","))
    if a.update_docs:
        _docblock.check_markers(a.update_docs, "prior")
    texts = []
    for name in a.models:
        best, text = choose(name, balances, a.limit)
        print(text + "\n")
        texts.append(text)
        if a.write:
            for p in write(name, best):
                print(f"{p}: prior {canonical_prior(best)}", file=sys.stderr)
    for p in a.update_docs or []:
        if _docblock.put_block(p, "\n\n".join(texts), "prior"):
            print(f"{p}: prior tables updated", file=sys.stderr)


if __name__ == "__main__":
    main()
