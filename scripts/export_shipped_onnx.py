"""Export every shipped model to ONNX beside its weights (``src/ferkit/weights/onnx/<stem>.onnx`` +
``.json``), so that the light install (no PyTorch) runs them with ONNX Runtime.

Each export is checked against PyTorch on real faces by ``export_onnx`` (probabilities within 1e-4);
``tests/test_shipped.py`` checks that each export's ``source_sha256`` is its weights' sha256, so a
re-trained or re-calibrated model without a fresh export fails the tests. Ensembles get no export of
their own: ONNX Runtime runs them from their members' exports (``ferkit.models.OnnxEnsemble``).

The shipped weights are stored in float16, the ONNX exports' too (``export_onnx(weights_dtype="float16")``:
computed in float32 as before), which keeps every shipped file together under the package's 60 MB;
``--half-weights`` first re-saves any shipped safetensors still stored in float32 in float16.

    python scripts/export_shipped_onnx.py [--half-weights]
"""
from __future__ import annotations

import argparse

import torch

from ferkit.export import export_onnx
from ferkit.models import WEIGHTS_DIR, load_model, read_json, save_model, shipped_models


def half_weights(stem: str) -> bool:
    """Re-save a shipped model stored in float32 in float16 (its JSON keeps everything but the hashes)."""
    meta = read_json(WEIGHTS_DIR / f"{stem}.json") or {}
    if meta.get("format") != "ferkit-model/1" or meta.get("dtype") == "float16":
        return False
    net, meta = load_model(WEIGHTS_DIR / stem)
    keep = {k: v for k, v in meta.items() if k not in ("format", "ferkit_version", "arch", "num_classes", "dtype",
                                                        "num_params", "sha256", "source_sha256")}
    save_model(net, WEIGHTS_DIR / stem, keep, dtype=torch.float16)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--half-weights", action="store_true", help="re-save float32 shipped weights in float16 first")
    a = ap.parse_args()
    stems = sorted(set(shipped_models().values()))
    for stem in stems:
        if (read_json(WEIGHTS_DIR / f"{stem}.json") or {}).get("format") == "ferkit-ensemble/1":
            continue
        if a.half_weights and half_weights(stem):
            print(f"{stem}: weights re-saved in float16")
        path = export_onnx(str(WEIGHTS_DIR / stem), WEIGHTS_DIR / "onnx" / stem, weights_dtype="float16")
        print(f"{path.relative_to(WEIGHTS_DIR.parent.parent.parent)}: {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
