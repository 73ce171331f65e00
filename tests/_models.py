"""A small model file for the tests that edit a model's JSON: vgg_fer at width 1 (1.2M parameters,
FER2013's 7 classes), saved as ``m.safetensors`` + ``m.json`` the way ferkit saved models before it
hashed the JSON into the weights file, so that each edited field is refused by its own check."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def plain_model(folder: Path) -> dict[str, Any]:
    """Write ``folder/m.safetensors`` (random weights, seed 0) and ``folder/m.json``; return the JSON's dict."""
    import torch
    from safetensors.torch import save_file

    from ferkit.models import create_model

    torch.manual_seed(0)
    net = create_model("vgg_fer", num_classes=7, in_chans=1, width=1.0, drop_rate=0.3)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "m.safetensors"),
              metadata={"format": "pt"})
    meta = {"name": "m", "classes": CLASSES, "input": {"size": 48, "channels": 1, "mean": [0.5], "std": [0.5]},
            "model_kwargs": {"drop_rate": 0.3}, "train_prior": [1 / 7] * 7, "format": "ferkit-model/1",
            "arch": "vgg_fer", "num_classes": 7, "dtype": "float32",
            "num_params": sum(p.numel() for p in net.parameters()),
            "sha256": hashlib.sha256((folder / "m.safetensors").read_bytes()).hexdigest()}
    (folder / "m.json").write_text(json.dumps(meta))
    return meta
