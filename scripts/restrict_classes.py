"""Write a model that predicts a subset of another model's classes (developers' tool): the same network
with only those rows of its classification head, in the order given, as a run folder that
``scripts/ship_model.py`` takes. Its softmax over the kept classes is the source's probabilities
renormalised over them, so its argmax is the source's argmax over the kept classes (what
``ferkit evaluate --classes`` measures for the source).

    python scripts/restrict_classes.py ferplus runs/ferplus_7 \
        --classes angry,disgust,fear,happy,sad,surprise,neutral

The recorded training prior is restricted and renormalised the same way; a stored temperature is dropped
(``ship_model.py`` fits a new one).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ferkit.models import create_model, load_model, save_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a shipped model name or a saved model")
    ap.add_argument("out", type=Path, help="the run folder to write (model.safetensors + model.json)")
    ap.add_argument("--classes", required=True, help="the classes to keep, comma-separated, in the new order")
    a = ap.parse_args()

    src, meta = load_model(a.model)
    keep = [c for c in a.classes.split(",") if c]
    missing = [c for c in keep if c not in meta["classes"]]
    if missing or len(set(keep)) != len(keep):
        raise SystemExit(f"--classes: {', '.join(missing) or 'a class twice'}: the model's classes are "
                         f"{', '.join(meta['classes'])}")
    rows = [meta["classes"].index(c) for c in keep]
    net = create_model(meta["arch"], num_classes=len(keep), in_chans=meta["input"]["channels"],
                       **meta.get("model_kwargs", {}))
    state = src.state_dict()
    head = src.get_classifier()
    head_keys = {f"{name}" for name, p in src.named_parameters() if any(p is q for q in head.parameters())}
    for key in head_keys:
        state[key] = state[key][rows]
    net.load_state_dict(state)
    out = {k: v for k, v in meta.items() if k not in ("temperature", "metrics", "card", "sha256", "num_params",
                                                       "num_classes", "dtype", "format", "ferkit_version", "arch")}
    out["classes"] = keep
    if meta.get("train_prior"):
        prior = torch.tensor([meta["train_prior"][i] for i in rows])
        out["train_prior"] = [round(float(p), 6) for p in prior / prior.sum()]
    out["train"] = {**meta.get("train", {}), "restricted_from": meta.get("name", a.model),
                    "restricted_classes": keep}
    a.out.mkdir(parents=True, exist_ok=True)
    save_model(net.eval(), a.out / "model", out)
    print(f"wrote {a.out / 'model.safetensors'}: {meta.get('name', a.model)} restricted to {', '.join(keep)}")


if __name__ == "__main__":
    main()
