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

Besides building and loading, the package is the one door to what other packages need of models:

- shipped models: ``resolve_model_path`` (name or path -> saved model), ``is_shipped_name``,
  ``shipped_onnx`` (a shipped model's ONNX export), ``WEIGHTS_DIR`` (the folder they ship in);
- files: ``model_paths`` (the ``.safetensors``/``.json`` pair of a stem, file or folder),
  ``MODEL_FORMAT`` (a saved model JSON's ``format``), ``sha256_file``, ``read_json``;
- ONNX exports: ``ONNX_FORMAT``, ``onnx_paths``, ``is_onnx_export``, ``read_onnx_meta`` (checked
  metadata), ``OnnxClassifier``, ``OnnxEnsemble`` (a shipped ensemble from its members' exports), ``open_onnx``
  and ``probabilities`` (no PyTorch needed);
- ensembles: ``ENSEMBLE_METHODS``, ``soft_vote``, ``majority_vote``, ``stack_logits`` and
  ``PROB_FLOOR`` (the probability floor before a log, shared with the fitting in ``ferkit.ensemble``);
- class priors: ``PRIOR_NAMES``, ``Prior`` (the type), ``canonical_prior`` (one spelling of each
  prior a model can predict under) and ``train_prior_problem`` (a JSON's training frequencies checked);
  ``ferkit.infer.prior_shift`` applies them.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

from ferkit.models._shipped import (
    WEIGHTS_DIR,
    deprecated_names,
    is_shipped_name,
    resolve_model_path,
    retired_names,
    shipped_aliases,
    shipped_models,
    shipped_onnx,
)

#: public names -> the submodule that defines them (``"module.name"`` where the name differs), imported
#: on first use (``import ferkit.models`` costs no PyTorch import, so the ONNX Runtime path of inference
#: runs without PyTorch installed: ``OnnxClassifier`` and ``probabilities`` come from ``_onnx``)
_LAZY = {
    "Classifier": "_runtime",
    "ENSEMBLE_FORMAT": "_ensemble_io",
    "ENSEMBLE_METHODS": "_combine.METHODS",
    "Ensemble": "_ensemble",
    "MODEL_FORMAT": "_io.FORMAT",
    "ONNX_FORMAT": "_onnx",
    "OnnxClassifier": "_onnx",
    "OnnxEnsemble": "_onnx",
    "open_onnx": "_onnx",
    "PROB_FLOOR": "_combine",
    "RegionNet": "_region",
    "SAFE_MODEL_KWARGS": "_io",
    "TorchClassifier": "_runtime",
    "Weights": "_weights",
    "PRIOR_NAMES": "_weights",
    "Prior": "_weights",
    "canonical_prior": "_weights",
    "combine_votes": "_combine",
    "train_prior_problem": "_weights",
    "adapt_input_conv": "_pretrained",
    "count_parameters": "_factory",
    "create_model": "_factory",
    "ensemble_input": "_ensemble",
    "ensemble_meta": "_ensemble_io",
    "head_prefix": "_factory",
    "imagenet_cache_file": "_pretrained",
    "is_ensemble_json": "_ensemble_io",
    "is_model": "_registry",
    "is_onnx_export": "_onnx",
    "list_models": "_registry",
    "load_ensemble": "_ensemble_io",
    "load_model": "_io",
    "majority_vote": "_combine",
    "model_kwargs_problem": "_io",
    "model_paths": "_files",
    "onnx_paths": "_onnx",
    "probabilities": "_onnx",
    "read_state_dict": "_pretrained",
    "region_vote": "_combine",
    "read_json": "_files",
    "read_onnx_meta": "_onnx",
    "register_model": "_registry",
    "resolve": "_weights",
    "restrict_classes": "_io",
    "save_ensemble": "_ensemble_io",
    "save_model": "_io",
    "sha256_file": "_files",
    "soft_vote": "_combine",
    "stack_logits": "_combine",
    "voting_views": "_combine",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, _, attr = _LAZY[name].partition(".")
        value = getattr(import_module(f"ferkit.models.{module}"), attr or name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ferkit.models' has no attribute {name!r}")


__all__ = [
    "ENSEMBLE_FORMAT",
    "ENSEMBLE_METHODS",
    "MODEL_FORMAT",
    "ONNX_FORMAT",
    "PRIOR_NAMES",
    "PROB_FLOOR",
    "SAFE_MODEL_KWARGS",
    "WEIGHTS_DIR",
    "Classifier",
    "Ensemble",
    "OnnxClassifier",
    "OnnxEnsemble",
    "Prior",
    "RegionNet",
    "TorchClassifier",
    "Weights",
    "canonical_prior",
    "combine_votes",
    "train_prior_problem",
    "adapt_input_conv",
    "count_parameters",
    "create_model",
    "deprecated_names",
    "retired_names",
    "ensemble_input",
    "ensemble_meta",
    "head_prefix",
    "imagenet_cache_file",
    "is_ensemble_json",
    "is_model",
    "is_onnx_export",
    "is_shipped_name",
    "list_models",
    "load_ensemble",
    "load_model",
    "majority_vote",
    "model_kwargs_problem",
    "model_paths",
    "onnx_paths",
    "probabilities",
    "read_json",
    "open_onnx",
    "read_onnx_meta",
    "read_state_dict",
    "region_vote",
    "register_model",
    "resolve",
    "resolve_model_path",
    "restrict_classes",
    "save_ensemble",
    "save_model",
    "sha256_file",
    "shipped_aliases",
    "shipped_models",
    "shipped_onnx",
    "soft_vote",
    "stack_logits",
    "voting_views",
]
