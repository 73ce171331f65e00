"""FER models: build by name, load pretrained weights, save and load trained models.

>>> model = create_model("vgg_fer", num_classes=7, in_chans=1)           # 48x48 grey faces
>>> model = create_model("resnet18", in_chans=1, pretrained=True)         # ImageNet, adapted
>>> model = create_model("timm/convnext_atto", num_classes=8)            # any timm model
>>> save_model(model, "runs/exp/model", meta); model, meta = load_model("runs/exp/model")
>>> weights = resolve("default")          # Weights: the model's JSON, typed, without building the network

Every model maps ``(N, in_chans, H, W)`` float tensors to ``(N, num_classes)`` logits and carries
``model.ferkit_arch`` (its ``create_model`` name) and ``model.ferkit_head`` (the classifier's
parameter-name prefix, for freezing: ``"fc"``, ``"classifier"``, timm's ``"head"`` ...).

Importing this package imports nothing heavy: each name is imported on first use, ferkit's
architectures register themselves when the registry is first asked (``create_model``,
``list_models``), and torchvision and timm are imported only when a model needs them.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

from ferkit.models._shipped import deprecated_names, shipped_aliases, shipped_models

#: public names -> the submodule that defines them, imported on first use (``import ferkit.models``
#: costs no PyTorch import, so the ONNX Runtime path of inference runs without PyTorch installed)
_LAZY = {
    "Classifier": "_runtime",
    "ENSEMBLE_FORMAT": "_ensemble_io",
    "Ensemble": "_ensemble",
    "OnnxClassifier": "_runtime",
    "RegionNet": "_region",
    "SAFE_MODEL_KWARGS": "_io",
    "TorchClassifier": "_runtime",
    "Weights": "_weights",
    "adapt_input_conv": "_pretrained",
    "count_parameters": "_factory",
    "create_model": "_factory",
    "ensemble_input": "_ensemble",
    "ensemble_meta": "_ensemble_io",
    "head_prefix": "_factory",
    "imagenet_cache_file": "_pretrained",
    "is_ensemble_json": "_ensemble_io",
    "is_model": "_registry",
    "list_models": "_registry",
    "load_ensemble": "_ensemble_io",
    "load_model": "_io",
    "model_kwargs_problem": "_io",
    "probabilities": "_runtime",
    "read_state_dict": "_pretrained",
    "read_json": "_files",
    "register_model": "_registry",
    "resolve": "_weights",
    "save_ensemble": "_ensemble_io",
    "save_model": "_io",
    "sha256_file": "_files",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f"ferkit.models.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ferkit.models' has no attribute {name!r}")


__all__ = [
    "ENSEMBLE_FORMAT",
    "SAFE_MODEL_KWARGS",
    "Classifier",
    "Ensemble",
    "OnnxClassifier",
    "RegionNet",
    "TorchClassifier",
    "Weights",
    "adapt_input_conv",
    "count_parameters",
    "create_model",
    "deprecated_names",
    "ensemble_input",
    "ensemble_meta",
    "head_prefix",
    "imagenet_cache_file",
    "is_ensemble_json",
    "is_model",
    "list_models",
    "load_ensemble",
    "load_model",
    "model_kwargs_problem",
    "probabilities",
    "read_json",
    "read_state_dict",
    "register_model",
    "resolve",
    "save_ensemble",
    "save_model",
    "sha256_file",
    "shipped_aliases",
    "shipped_models",
]
