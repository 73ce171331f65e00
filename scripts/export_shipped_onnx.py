"""Export every shipped model to ONNX beside its weights (``src/ferkit/weights/onnx/<stem>.onnx`` +
``.json``), so that the light install (no PyTorch) runs them with ONNX Runtime.

Each export is checked against PyTorch on real faces by ``export_onnx`` (probabilities within 1e-4);
``tests/test_shipped.py`` checks that each export's ``source_sha256`` is its weights' sha256, so a
re-trained or re-calibrated model without a fresh export fails the tests.

    python scripts/export_shipped_onnx.py
"""
from __future__ import annotations

from ferkit.export import export_onnx
from ferkit.models._shipped import WEIGHTS_DIR, shipped_models


def main() -> None:
    stems = sorted(set(shipped_models().values()))
    for stem in stems:
        path = export_onnx(str(WEIGHTS_DIR / stem), WEIGHTS_DIR / "onnx" / stem)
        print(f"{path.relative_to(WEIGHTS_DIR.parent.parent.parent)}: {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
