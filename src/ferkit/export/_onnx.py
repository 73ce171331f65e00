"""ONNX export: ``<stem>.onnx`` + ``<stem>.json``, checked against PyTorch on a real face.

The graph maps the preprocessed batch ``input`` (float32 ``(batch, C, size, size)``, made by
``eval_transform(meta["input"])``) to ``logits``; softmax and any stored ``temperature`` stay
outside it, in Python (``ferkit.models.probabilities``), the same for both backends.

The JSON is the model's own metadata plus ``format`` ``"ferkit-onnx/1"``, ``"backend": "onnx"``,
``sha256`` of the .onnx file (the PyTorch weights' checksum moves to ``source_sha256``), the input
and output names, the input shape, the opset and the check's result. Both files are written
atomically, the JSON last.

Exporter: PyTorch's TorchScript-based ``torch.onnx.export(dynamo=False)``. The newer
``torch.export`` path needs the ``onnxscript`` package, took ~5 s instead of 0.15 s for the shipped
model and printed to stdout; it gives the same graph for these convolutional models.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ferkit._fileio import atomic_path
from ferkit.errors import FerkitError, WeightsError
from ferkit.models._files import sha256_file
from ferkit.models._onnx import ONNX_FORMAT, is_onnx_export, onnx_paths, read_json, read_onnx_meta
from ferkit.models._weights import Weights

__all__ = [
    "ONNX_FORMAT",
    "ExportError",
    "export_onnx",
    "is_onnx_export",
    "onnx_cache_dir",
    "onnx_model",
    "onnx_paths",
    "read_onnx_meta",
]

log = logging.getLogger(__name__)

INPUT_NAME, OUTPUT_NAME = "input", "logits"
#: largest max-abs probability difference between ONNX Runtime and PyTorch that an export may have
TOLERANCE = 1e-4

#: keys that export_onnx adds to (or replaces in) the model's metadata
_ONNX_KEYS = ("format", "backend", "file", "sha256", "source_sha256", "dtype", "opset", "input_name", "input_shape",
              "output_name", "dynamic_batch", "exporter", "check", "ferkit_version")


class ExportError(FerkitError):
    """A model cannot be exported, or its export does not reproduce the PyTorch model."""


def _resolve(model: Any) -> tuple[nn.Module, dict[str, Any]]:
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[0], nn.Module):
        return model[0], dict(model[1])
    if isinstance(model, (str, os.PathLike)):
        if is_onnx_export(model):
            raise ExportError(f"{os.fspath(model)}: already an ONNX export")
        from ferkit.models import load_model

        return load_model(model)
    raise ExportError(f"export: expected a model name, a saved model path or an (nn.Module, meta) pair, "
                      f"not {type(model).__name__}")


def _check_images(images: Sequence[np.ndarray] | None) -> list[np.ndarray]:
    if images is None:
        from ferkit.export._check_face import check_face

        face = check_face()
        return [face, np.ascontiguousarray(face[:, ::-1])]  # the face and its mirror image: a batch of 2
    if not images:
        raise ExportError("export: check_images is empty")
    return list(images)


def _prob_diff(ref: nn.Module, onnx_file: Path, batch: torch.Tensor, temperature: Any) -> float:
    """Largest probability difference between ONNX Runtime on ``onnx_file`` and PyTorch on ``batch``."""
    from ferkit.models._runtime import OnnxClassifier, TorchClassifier, probabilities

    torch_logits = TorchClassifier(ref)(batch)
    onnx_logits = OnnxClassifier(onnx_file, threads=1)(batch)  # a fixed-batch export runs face by face
    if onnx_logits.shape != torch_logits.shape:
        raise ExportError(f"{onnx_file.name}: ONNX Runtime returned shape {onnx_logits.shape}, PyTorch {torch_logits.shape}")
    if not np.isfinite(onnx_logits).all():
        raise ExportError(f"{onnx_file.name}: ONNX Runtime returned non-finite logits")
    return float(np.abs(probabilities(onnx_logits, temperature) - probabilities(torch_logits, temperature)).max())


def export_onnx(
    model: Any,
    out_path: str | os.PathLike[str],
    *,
    opset: int = 17,
    dynamic_batch: bool = True,
    check_images: Sequence[np.ndarray] | None = None,
) -> Path:
    """Export a ferkit model to ONNX; return the ``.onnx`` path (its ``.json`` is written beside it).

    Args:
        model: a shipped model name (``"default"``), a saved model path, or an ``(nn.Module, meta)``
            pair (meta with ``classes`` and ``input``, as ``load_model`` returns it). The module is
            not modified (it is exported in eval mode, on the CPU).
        out_path: stem, either file of the pair, or a folder (see :func:`onnx_paths`). Parent folders
            are created; existing export files are replaced (the CLI refuses unless ``--force``), a
            PyTorch model's JSON never is.
        opset: ONNX opset version.
        dynamic_batch: a free batch dimension (``input_shape`` ``["batch", C, S, S]``); False fixes it to 1.
        check_images: RGB/grey uint8 face crops for the check; None = a real face shipped with ferkit
            (and its mirror image).

    The export is checked before it is moved into place: ONNX Runtime and PyTorch classify the
    check images (through ``eval_transform(meta["input"])`` and the stored temperature), and the
    largest probability difference must be below 1e-4 (recorded as ``check.max_prob_diff``).

    Raises:
        ExportError: the exporter fails, the outputs differ, or ``out_path`` is a PyTorch model's stem.
        WeightsError: the model cannot be loaded.
    """
    import onnx
    import onnxruntime as ort

    from ferkit import __version__
    from ferkit.data.transforms import eval_transform
    from ferkit.models._io import FORMAT as TORCH_FORMAT
    from ferkit.models._pretrained import first_line

    net, meta = _resolve(model)
    if meta.get("method") == "regions":
        raise ExportError("export: a region-voting ensemble runs dlib's landmarks inside its forward pass and "
                          "cannot be exported to ONNX; export its members, or a soft/vote/stack ensemble")
    if any((m.get("input") or {}).get("region") for m in [meta, *meta.get("members", [])]):
        raise ExportError("export: a model trained on one facial region (input.region) cuts its region with dlib's "
                          "landmarks inside its forward pass and cannot be exported to ONNX")
    for key in ("classes", "input"):
        if key not in meta:
            raise ExportError(f"export: the model's meta lacks {key!r}")
    onnx_path, meta_path = onnx_paths(out_path)
    existing = read_json(meta_path) if meta_path.is_file() else None
    if existing is not None and existing.get("format") == TORCH_FORMAT:
        raise ExportError(f"{meta_path}: is a PyTorch model's metadata; export to another path")

    net = getattr(net, "_orig_mod", net)  # torch.compile wrapper
    if any(t.device.type != "cpu" for t in [*net.parameters(), *net.buffers()]):
        net = copy.deepcopy(net).cpu()
    was_training = net.training
    net.eval()
    transform = eval_transform(meta["input"])
    batch = torch.stack([transform(img) for img in _check_images(check_images)])
    c, h, w = batch.shape[1:]
    input_shape: list[int | str] = ["batch" if dynamic_batch else 1, int(c), int(h), int(w)]
    name = meta.get("name") or meta.get("arch") or type(net).__name__

    try:
        with atomic_path(onnx_path) as tmp:
            try:
                with warnings.catch_warnings(), torch.no_grad():
                    warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
                    torch.onnx.export(
                        net, (batch[:1],), str(tmp), dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                        output_names=[OUTPUT_NAME], do_constant_folding=True,
                        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None,
                    )
                proto = onnx.load(str(tmp))
                onnx.checker.check_model(proto)
            except ExportError:
                raise
            except Exception as e:  # the exporter raises many types (RuntimeError, UnsupportedOperatorError, ...)
                raise ExportError(f"{name}: cannot export to ONNX opset {opset} ({first_line(e)})") from e
            # a self-describing file for other ONNX consumers: classes and preprocessing
            proto.producer_name, proto.producer_version = "ferkit", __version__
            for key, value in (("ferkit.classes", meta["classes"]), ("ferkit.input", meta["input"])):
                entry = proto.metadata_props.add()
                entry.key, entry.value = key, json.dumps(value)
            onnx.save(proto, str(tmp))
            diff = _prob_diff(net, tmp, batch, meta.get("temperature"))
            if not diff < TOLERANCE:
                raise ExportError(f"{name}: ONNX Runtime differs from PyTorch by {diff:.3g} in probability on the "
                                  f"check faces (limit {TOLERANCE:g}); export not written")
            sha = sha256_file(tmp)
    finally:
        net.train(was_training)

    out = {k: v for k, v in meta.items() if k not in _ONNX_KEYS}
    out.update({
        "format": ONNX_FORMAT,
        "backend": "onnx",
        "file": onnx_path.name,
        "sha256": sha,
        "source_sha256": meta.get("sha256"),
        "dtype": "float32",
        "opset": opset,
        "input_name": INPUT_NAME,
        "input_shape": input_shape,
        "output_name": OUTPUT_NAME,
        "dynamic_batch": dynamic_batch,
        "exporter": f"torch {torch.__version__} torch.onnx.export (TorchScript)",
        "check": {"images": len(batch), "max_prob_diff": diff, "onnxruntime": ort.__version__},
        "ferkit_version": __version__,
    })
    try:
        json.dumps(out)
    except (TypeError, ValueError) as e:
        raise ExportError(f"export: the model's meta is not JSON-serialisable ({e})") from e
    Weights.from_dict(out, meta_path).write(meta_path)
    return onnx_path


# ---------------------------------------------------------------------------------------------- cache
def onnx_cache_dir() -> Path:
    """Where exports made on first use go: ``$FERKIT_CACHE_DIR/onnx``, else ``~/.cache/ferkit/onnx``."""
    from ferkit.data.loaders import default_cache_dir

    return default_cache_dir() / "onnx"


def _state_sha256(net: nn.Module) -> str:
    digest = hashlib.sha256()
    for key, t in net.state_dict().items():
        t = t.detach().cpu().contiguous()
        digest.update(f"{key}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _cached(onnx_path: Path, source_sha: str, meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """The cached export's metadata when it is intact and was made from this model, else None."""
    try:
        _, cached = read_onnx_meta(onnx_path)
    except WeightsError:
        return None
    same = cached.get("source_sha256") == source_sha and all(
        cached.get(k) == json.loads(json.dumps(meta.get(k))) for k in ("classes", "input"))  # tuples -> lists
    return cached if same else None


def onnx_model(model: Any, *, cache_dir: str | os.PathLike[str] | None = None) -> tuple[Path, dict[str, Any]]:
    """``(onnx path, metadata)`` to run ``model`` with ONNX Runtime, exporting it when needed.

    An exported ``.onnx``/``.json`` pair is used as it is (checksum verified). A model name, a saved
    PyTorch model or an ``(nn.Module, meta)`` pair is exported once to ``<cache>/<sha256>.onnx``
    (the sha256 of its weights; :func:`onnx_cache_dir`) and reused while the cached file is intact.
    The metadata returned is the model's current one (a temperature fitted after the export applies)
    plus the export's keys. Nothing is written next to the model, so installed packages stay untouched.
    """
    if not isinstance(model, tuple) and is_onnx_export(model):
        return read_onnx_meta(model)
    net, meta = _resolve(model)
    source_sha = _state_sha256(net) if isinstance(model, tuple) else str(meta["sha256"])
    folder = Path(cache_dir).expanduser() if cache_dir is not None else onnx_cache_dir()
    onnx_path = folder / f"{source_sha}.onnx"
    cached = _cached(onnx_path, source_sha, meta)
    if cached is None:
        log.info("exporting %s to ONNX: %s", meta.get("name") or meta.get("arch") or "model", onnx_path)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise FerkitError(f"{folder}: cannot create the ONNX cache folder ({e.strerror}); set FERKIT_CACHE_DIR") from e
        export_onnx((net, {**meta, "sha256": source_sha}), onnx_path)
        _, cached = read_onnx_meta(onnx_path)
    out = {k: v for k, v in meta.items() if k not in _ONNX_KEYS}
    out.update({k: cached[k] for k in _ONNX_KEYS if k in cached})
    return onnx_path, out
