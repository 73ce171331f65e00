"""Building an ensemble from trained models: member probabilities on a validation split, fitted
weights or stacking coefficients, and the metadata that records how they were obtained."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ferkit.data.faceset import FaceSet
from ferkit.ensemble.voting import OBJECTIVES, fit_stacking, fit_weights, log_loss, stack_logits
from ferkit.errors import ConfigError, DataError
from ferkit.models import Ensemble, ensemble_meta

__all__ = ["build_ensemble", "labelled_faces", "labels_in", "load_members", "member_probabilities"]

Progress = Callable[[int, int], None]


def load_members(models: Sequence[Any],
                 device: str | torch.device = "cpu") -> list[tuple[torch.nn.Module, dict[str, Any]]]:
    """``(module, meta)`` for each model given by name, path or as a pair; each meta gets a ``name``
    (the shipped name when one was given, else the model's own name or its path)."""
    from ferkit.evaluate.runner import _load_model
    from ferkit.models import is_shipped_name

    out = []
    for model in models:
        net, meta, _, label = _load_model(model, device)
        if meta.get("format") == "ferkit-ensemble/1":
            raise ConfigError(f"{label}: an ensemble cannot be a member of another ensemble; give its members")
        # a shipped model is named as the user named it (vgg_fer.w1_fer2013), not by its weights file's stem
        name = model if is_shipped_name(model) else meta.get("name") or label
        out.append((net, {**meta, "name": name}))
    return out


class _AllMembers(torch.nn.Module):
    """An ensemble's members side by side: ``(N, ...) -> (N, M * C)`` probabilities (for ``regions``,
    each member's on the views it votes on)."""

    def __init__(self, ens: Ensemble):
        super().__init__()
        self.ens = ens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = self.ens.region_member_probs(x) if self.ens.method == "regions" else self.ens.member_probs(x)
        return probs.permute(1, 0, 2).flatten(1)


def member_probabilities(ens: Ensemble, faces: FaceSet, *, tta: str = "none", batch_size: int = 128,
                         progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every member's probabilities on ``faces`` through the ensemble's own input path:
    ``(probs (M, K, C) float64 in the ensemble's class order, kept (K,) row indices of the decodable
    images)``. With ``tta`` each member's probabilities are averaged over the views. Images are read,
    batched and augmented by :func:`ferkit.evaluate.inference.predict_logits`, as for one model."""
    from ferkit.evaluate.inference import predict_logits

    device = next(ens.parameters()).device
    out, kept = predict_logits(_AllMembers(ens), ens.input_cfg, faces, tta=tta, batch_size=batch_size,
                               device=device, progress=progress)
    k, v = out.shape[:2]
    probs = out.astype(np.float64).reshape(k, v, len(ens.members), -1).mean(1)   # (K, M, C)
    return probs.transpose(1, 0, 2), kept


def labelled_faces(data: str | os.PathLike[str], format: str, split: str, classes: Sequence[str], *,
                   limit: int | None = None) -> tuple[FaceSet, dict[str, Any]]:
    """``split`` of ``data`` restricted to the ensemble's ``classes`` (a data set's extra classes,
    such as FER+'s contempt, are left out), and the ``dataset`` info block."""
    from ferkit.evaluate.runner import load_eval_data

    faces, info = load_eval_data(data, format, split, limit=limit)
    shared = [c for c in faces.classes if c in classes]
    if not shared:
        raise DataError(f"{data}: no class in common with the ensemble ({', '.join(classes)})")
    if len(shared) < len(faces.classes):
        faces = faces.with_classes(shared)
    return faces, info


def labels_in(faces: FaceSet, kept: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """The labels of ``faces`` rows ``kept`` as indices into ``classes``."""
    return np.asarray([list(classes).index(faces.classes[k]) for k in faces.labels[kept]], dtype=np.int64)


def build_ensemble(
    models: Sequence[Any], method: str = "soft", *, fit: str | None = None, weights: Sequence[float] | None = None,
    data: str | os.PathLike[str] | None = None, format: str = "auto", split: str = "PublicTest",
    limit: int | None = None, tta: str = "none", name: str | None = None, device: str = "cpu",
    progress: Progress | None = None,
) -> tuple[Ensemble, dict[str, Any]]:
    """Combine ``models`` (names, paths or ``(module, meta)`` pairs) into an :class:`Ensemble`.

    ``soft`` voting uses ``weights`` when given, else weights fitted on ``split`` of ``data`` for
    ``fit`` (``accuracy``, the default; ``logloss``; ``equal`` needs no data). ``regions`` is the
    papers' majority over (member, view) votes unless ``weights`` or a ``fit`` is given: then each
    member's probabilities on its views are averaged with those weights. ``stack`` fits a logistic
    regression on ``split``. ``vote`` needs no fitting. Returns ``(ensemble, meta)``;
    ``meta["fit"]`` records the data, split and the fitting split's accuracy and log-loss with
    equal and with fitted weights.
    """
    if len(models) < 2:
        raise ConfigError(f"an ensemble needs at least 2 models, got {len(models)}")
    weighted = method == "soft" or (method == "regions" and (fit is not None or weights is not None))
    fit = fit or ("accuracy" if method == "soft" else None)
    if weighted and fit is not None and fit not in OBJECTIVES:
        raise ConfigError(f"unknown weight objective {fit!r} (known: {', '.join(OBJECTIVES)})")
    members = load_members(models, device)
    ens = Ensemble(members, method, weights)
    fit_info: dict[str, Any] = {}
    needs_data = (weighted and weights is None and fit != "equal") or method == "stack"
    if needs_data:
        if data is None:
            raise ConfigError(f"ensemble method {method!r} with fit {fit!r} needs validation data (--data, --split)")
        faces, info = labelled_faces(data, format, split, ens.classes, limit=limit)
        probs, kept = member_probabilities(ens, faces, tta=tta, progress=progress)
        y = labels_in(faces, kept, ens.classes)
        eq = probs.mean(0)
        fit_info = {"data": str(data), "format": info["format"], "split": info["split"], "n_images": len(y),
                    "tta": tta, "objective": fit if weighted else "logloss (logistic regression)",
                    "accuracy_equal": float((eq.argmax(1) == y).mean()), "logloss_equal": log_loss(eq, y)}
        if weighted:
            w = fit_weights(probs, y, fit)
            ens.weights = [float(v) for v in w]
            mixed = np.einsum("m,mnc->nc", w, probs)
        else:
            coef, intercept = fit_stacking(probs, y)
            ens.stack = {"coef": coef, "intercept": intercept}
            mixed = torch.softmax(stack_logits(probs, coef, intercept), 1).numpy()
        fit_info.update(accuracy_fitted=float((mixed.argmax(1) == y).mean()), logloss_fitted=log_loss(mixed, y))
    elif weighted:
        fit_info = {"objective": "given" if weights is not None else "equal"}
        if weights is None:
            ens.weights = [1.0 / len(members)] * len(members)
    return ens, ensemble_meta(ens, name=name, fit=fit_info)
