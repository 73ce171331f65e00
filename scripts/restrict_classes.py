"""Write a model that predicts a subset of another model's classes (developers' tool), as a run folder
that ``scripts/ship_model.py`` takes: ``ferkit.models.restrict_classes`` (the same network with only
those rows of its head, in the order given; a training config does the same with
``model.export_classes``). Its softmax over the kept classes is the source's probabilities
renormalised over them.

    python scripts/restrict_classes.py ferplus runs/ferplus_7 \
        --classes angry,disgust,fear,happy,sad,surprise,neutral
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ferkit.models import load_model, restrict_classes, save_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a shipped model name or a saved model")
    ap.add_argument("out", type=Path, help="the run folder to write (model.safetensors + model.json)")
    ap.add_argument("--classes", required=True, help="the classes to keep, comma-separated, in the new order")
    a = ap.parse_args()

    src, meta = load_model(a.model)
    keep = [c for c in a.classes.split(",") if c]
    net, out = restrict_classes(src, meta, keep)
    for key in ("metrics", "card", "sha256", "num_params", "num_classes", "dtype", "format", "ferkit_version",
                "arch"):
        out.pop(key, None)   # the source's figures and file fields; save_model writes new ones
    out["train"] = {**meta.get("train", {}), "restricted_from": meta.get("name", a.model), "restricted_classes": keep}
    a.out.mkdir(parents=True, exist_ok=True)
    save_model(net, a.out / "model", out)
    print(f"wrote {a.out / 'model.safetensors'}: {meta.get('name', a.model)} restricted to {', '.join(keep)}")


if __name__ == "__main__":
    main()
