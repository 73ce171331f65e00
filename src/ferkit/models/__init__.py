"""FER models: build by name, load pretrained weights, save and load trained models.

>>> model = create_model("vgg_fer", num_classes=7, in_chans=1)           # 48x48 grey faces
>>> model = create_model("resnet18", in_chans=1, pretrained=True)         # ImageNet, adapted
>>> model = create_model("timm/convnext_atto", num_classes=8)            # any timm model
>>> save_model(model, "runs/exp/model", meta); model, meta = load_model("runs/exp/model")

Every model maps ``(N, in_chans, H, W)`` float tensors to ``(N, num_classes)`` logits and carries
``model.ferkit_arch`` (its ``create_model`` name) and ``model.ferkit_head`` (the classifier's
parameter-name prefix, for freezing: ``"fc"``, ``"classifier"``, timm's ``"head"`` ...).

Importing this package registers ferkit's architectures; torchvision and timm are imported only
when a model needs them.
"""
from __future__ import annotations

from ferkit.models import spp_net as _spp_net  # noqa: F401  (registers spp_net)
from ferkit.models import torchvision_models as _torchvision_models  # noqa: F401  (registers resnet*, ...)
from ferkit.models import vgg_fer as _vgg_fer  # noqa: F401  (registers vgg_fer)
from ferkit.models._ensemble import Ensemble, ensemble_input
from ferkit.models._ensemble_io import ENSEMBLE_FORMAT, ensemble_meta, is_ensemble_json, load_ensemble, save_ensemble
from ferkit.models._factory import count_parameters, create_model, head_prefix
from ferkit.models._io import SAFE_MODEL_KWARGS, load_model, model_kwargs_problem, save_model
from ferkit.models._pretrained import adapt_input_conv, read_state_dict
from ferkit.models._region import RegionNet
from ferkit.models._registry import is_model, list_models, register_model
from ferkit.models._runtime import Classifier, OnnxClassifier, TorchClassifier, probabilities
from ferkit.models._shipped import shipped_models

__all__ = [
    "ENSEMBLE_FORMAT",
    "SAFE_MODEL_KWARGS",
    "Classifier",
    "Ensemble",
    "OnnxClassifier",
    "RegionNet",
    "TorchClassifier",
    "adapt_input_conv",
    "count_parameters",
    "create_model",
    "ensemble_input",
    "ensemble_meta",
    "head_prefix",
    "is_ensemble_json",
    "is_model",
    "list_models",
    "load_ensemble",
    "load_model",
    "model_kwargs_problem",
    "probabilities",
    "read_state_dict",
    "register_model",
    "save_ensemble",
    "save_model",
    "shipped_models",
]
