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
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ferkit._fileio import atomic_path
from ferkit.errors import FerkitError, first_line
from ferkit.models import ONNX_FORMAT, Weights, is_onnx_export, onnx_paths, read_json, read_onnx_meta, sha256_file

__all__ = [
    "ONNX_FORMAT",
    "ExportError",
    "export_onnx",
    "is_onnx_export",
    "onnx_paths",
    "read_onnx_meta",
]

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
    from ferkit.models import OnnxClassifier, TorchClassifier, probabilities

    torch_logits = TorchClassifier(ref)(batch)
    onnx_logits = OnnxClassifier(onnx_file, threads=1)(batch)  # a fixed-batch export runs face by face
    if onnx_logits.shape != torch_logits.shape:
        raise ExportError(f"{onnx_file.name}: ONNX Runtime returned shape {onnx_logits.shape}, "
                          f"PyTorch {torch_logits.shape}")
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
    weights_dtype: str = "float32",
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
        weights_dtype: ``"float16"`` stores the weights in half precision, each cast back to float32 by a
            ``Cast`` node that ONNX Runtime folds when it loads the file: half the file, the same float32
            arithmetic. Lossless for weights saved in float16 (``save_model(dtype=torch.float16)``), as the
            shipped models are: batch normalisation is then not folded into the convolutions at export
            (ONNX Runtime folds it, in float32, when it loads the file).

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
    from ferkit.models import MODEL_FORMAT

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
    if existing is not None and existing.get("format") == MODEL_FORMAT:
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
    if weights_dtype not in ("float32", "float16"):
        raise ExportError(f"export: weights_dtype must be float32 or float16, not {weights_dtype!r}")
    half = weights_dtype == "float16"
    name = meta.get("name") or meta.get("arch") or type(net).__name__

    try:
        with atomic_path(onnx_path) as tmp:
            try:
                with warnings.catch_warnings(), torch.no_grad():
                    warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
                    torch.onnx.export(
                        net, (batch[:1],), str(tmp), dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                        output_names=[OUTPUT_NAME], do_constant_folding=not half,
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
            if half:
                _store_float16(proto)
                onnx.checker.check_model(proto)
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
        "weights_dtype": weights_dtype,
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



def _store_float16(proto: Any) -> None:
    """Store every float32 initializer of ``proto`` as float16 followed by a ``Cast`` back to float32
    (the graph computes in float32 as before; ONNX Runtime folds the casts when it loads the file)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            continue
        value = numpy_helper.to_array(init)
        if value.size < 16:  # shapes and scalars: not worth a node
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(value.astype(np.float16), name + "__f16"))
        casts.append(helper.make_node("Cast", [name + "__f16"], [name], to=TensorProto.FLOAT, name=name + "__cast"))
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
