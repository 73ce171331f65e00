"""Ensembles on disk: one JSON (``format: ferkit-ensemble/1``) next to its members' weight pairs.

A saved ensemble is a folder (``<dir>/model.json``) or a stem (``<stem>.json``) like a single model,
so ``ferkit.models.load_model`` and every command load it by path or by shipped name. The JSON
holds the method, the fitted weights or stacking coefficients, how they were fitted, the ensemble's
``input`` block and ``classes``, and one entry per member: its path relative to the JSON's folder
and the sha256 of its weights. Members are ordinary saved models (safetensors + JSON), checked by
their own checksum on load; the ensemble also checks that each member is still the one it was
built from.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ferkit.errors import WeightsError
from ferkit.models._combine import METHODS
from ferkit.models._ensemble import Ensemble
from ferkit.models._files import load_json_object, read_json
from ferkit.models._onnx import ensemble_train_prior, fill_train_prior
from ferkit.models._weights import Weights, check_prior

__all__ = ["ENSEMBLE_FORMAT", "ensemble_meta", "load_ensemble", "save_ensemble"]

ENSEMBLE_FORMAT = "ferkit-ensemble/1"


def ensemble_meta(ens: Ensemble, *, name: str | None = None, fit: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The metadata dict of an ensemble (what ``load_model`` returns next to the module); members'
    ``path`` is filled in by :func:`save_ensemble`."""
    from ferkit import __version__

    shas = [str(m.get("sha256")) for m in ens.member_metas]
    members = []
    for m in ens.member_metas:
        members.append({
            "path": None, "name": m.get("name") or m.get("arch"),
            "arch": m.get("arch"), "sha256": m.get("sha256"), "input": m["input"],
            "temperature": m.get("temperature"), "num_params": m.get("num_params"),
        })
    return {
        "format": ENSEMBLE_FORMAT, "ferkit_version": __version__, "arch": "ensemble",
        "name": name or f"{ens.method}-ensemble-of-{len(members)}",
        "method": ens.method, "classes": list(ens.classes), "input": dict(ens.input_cfg), "model_kwargs": {},
        "weights": ens.weights, "stack": _jsonable(ens.stack), "fit": dict(fit or {}), "members": members,
        "train_prior": ensemble_train_prior(ens.member_metas, list(ens.classes), ens.weights),
        "num_classes": len(ens.classes), "num_params": int(sum(p.numel() for p in ens.parameters())),
        # identifies the ensemble by its members' weights and its combination rule
        "sha256": hashlib.sha256(
            json.dumps([shas, ens.method, ens.weights, _jsonable(ens.stack)]).encode()).hexdigest(),
    }


def _jsonable(stack: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not stack:
        return None
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in stack.items()}


def save_ensemble(ens: Ensemble, meta: Mapping[str, Any], path: str | os.PathLike[str], *,
                  link: list[str | os.PathLike[str]] | None = None) -> Path:
    """Write ``ens`` at ``path`` (a folder, created, or a stem); return the JSON's path.

    Members are written as ``member<i>-<arch>.safetensors`` + ``.json`` next to the JSON
    (``<stem>.member<i>-<arch>`` for a stem; the
    ensemble is then self-contained), unless ``link`` gives the saved models they came from: then the
    JSON refers to those files by relative path (as the shipped ensemble refers to the shipped
    single models) and nothing is copied. The JSON is written last, atomically.
    """
    from ferkit.models import save_model
    from ferkit.models._io import model_paths
    from ferkit.models._shipped import resolve_model_path

    _, json_path = model_paths(path)
    folder = json_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    out = json.loads(json.dumps(dict(meta)))
    prefix = "" if json_path.name == "model.json" else f"{json_path.stem}."
    for i, (member, entry) in enumerate(zip(ens.members, out["members"])):
        if link is not None:
            _, member_json = model_paths(resolve_model_path(link[i]))  # a shipped name too
            if not member_json.is_file():
                raise WeightsError(f"{member_json}: linked ensemble member not found")
            recorded = load_json_object(member_json).get("sha256")
            if recorded != entry["sha256"]:
                raise WeightsError(f"{member_json}: not the model this ensemble was built from (sha256 differs)")
            entry["path"] = os.path.relpath(member_json.with_suffix(""), folder)
        else:
            rel = f"{prefix}member{i}-{entry['arch']}"
            save_model(member.net, folder / rel, ens.member_metas[i])
            entry["sha256"] = json.loads((folder / f"{rel}.json").read_text(encoding="utf-8"))["sha256"]
            entry["path"] = rel
    Weights.from_dict(out, json_path).write(json_path)
    return json_path


def is_ensemble_json(meta_path: Path) -> bool:
    """Whether ``meta_path`` is a readable JSON object whose ``format`` is an ensemble's."""
    raw = read_json(meta_path)
    return raw is not None and raw.get("format") == ENSEMBLE_FORMAT


def load_ensemble(meta_path: str | os.PathLike[str], *,
                  device: str | torch.device = "cpu") -> tuple[Ensemble, dict[str, Any]]:
    """Rebuild the ensemble described by ``meta_path``; ``(Ensemble in eval mode, meta)``.

    Raises WeightsError (one line naming the file) for a bad JSON, a missing member, a member whose
    weights changed since the ensemble was built, or an unknown method."""
    from ferkit.models import load_model

    meta_path = Path(meta_path)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightsError(f"{meta_path}: not a readable ensemble JSON ({str(e).splitlines()[0]})") from e
    members = meta.get("members")
    if not isinstance(members, list) or not members or not all(isinstance(m, dict) and m.get("path") for m in members):
        raise WeightsError(f"{meta_path}: 'members' must be a non-empty list of {{path, sha256}} entries")
    if meta.get("method") not in METHODS:
        raise WeightsError(f"{meta_path}: unknown ensemble method {meta.get('method')!r} (known: {', '.join(METHODS)})")
    check_prior(meta, meta_path, needs_train_prior=False)
    loaded = []
    for i, entry in enumerate(members):
        member_path = meta_path.parent / entry["path"]
        if not member_path.with_name(member_path.name + ".json").is_file():
            raise WeightsError(f"{meta_path}: member {i} not found at {member_path}.json")
        net, member_meta = load_model(member_path, device=device)
        if entry.get("sha256") and member_meta.get("sha256") != entry["sha256"]:
            raise WeightsError(f"{member_path}.json: member {i} is not the model this ensemble was built from "
                               f"(sha256 differs from {meta_path.name})")
        loaded.append((net, member_meta))
    try:
        ens = Ensemble(loaded, meta["method"], meta.get("weights"), meta.get("stack"))
    except Exception as e:  # ConfigError from mismatched classes or coefficients
        raise WeightsError(f"{meta_path}: {str(e).splitlines()[0]}") from e
    meta["input"] = dict(ens.input_cfg)
    meta["classes"] = list(ens.classes)
    fill_train_prior(meta, ens.member_metas, ens.weights, meta_path)
    return ens.to(device).eval(), meta
