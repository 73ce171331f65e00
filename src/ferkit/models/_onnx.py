"""An exported ONNX model (``<stem>.onnx`` + ``<stem>.json``, written by ``ferkit.export``): reading
and checking the pair, running it with ONNX Runtime, and the one softmax every backend's logits go
through. Needs numpy and onnxruntime only: the light install (no PyTorch) classifies faces with it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.errors import FerkitError, WeightsError
from ferkit.models._files import model_paths, read_json, sha256_file
from ferkit.models._weights import check_prior

__all__ = ["ONNX_FORMAT", "OnnxClassifier", "OnnxEnsemble", "default_threads", "ensemble_train_prior",
           "fill_train_prior", "is_onnx_export", "onnx_paths", "open_onnx", "probabilities", "read_onnx_meta"]

#: the ``format`` of the JSON beside an exported ``.onnx`` file
ONNX_FORMAT = "ferkit-onnx/1"


def default_threads() -> int:
    """``torch.get_num_threads()`` when PyTorch is already loaded, else the number of CPUs."""
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else max(1, os.cpu_count() or 1)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


class OnnxClassifier:
    """An exported ONNX model run by ONNX Runtime on the CPU, as a :class:`Classifier`.

    Args:
        path: the ``.onnx`` file (see :func:`ferkit.export.export_onnx`; its JSON is not read here).
        threads: intra-op threads; None = ``torch.get_num_threads()`` when PyTorch is loaded (so one
            setting, ``torch.set_num_threads``, governs both backends), else the CPU count. More
            threads help large batches; on a busy machine one thread is often as fast for single faces.

    Raises WeightsError (one line naming the file) when ONNX Runtime cannot load the file.
    """

    backend = "onnx"

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None):
        import onnxruntime as ort

        if threads is not None and threads < 1:
            raise FerkitError(f"OnnxClassifier: threads must be >= 1, not {threads}")
        self.path = os.fspath(path)
        self.threads = int(threads or default_threads())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only: ORT warns about unused initialisers on stderr otherwise
        try:
            self.session = ort.InferenceSession(self.path, opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own pybind11 types (InvalidProtobuf, Fail, NoSuchFile...)
            raise WeightsError(f"{self.path}: not a readable ONNX model ({_first_line(e)})") from e
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise WeightsError(f"{self.path}: expected an ONNX model with one input, found {len(inputs)}")
        self.input_name: str = inputs[0].name
        self.input_shape: list[int | str] = list(inputs[0].shape)
        # a model exported with a fixed batch of 1 is run one face at a time
        self._fixed_batch = self.input_shape[0] if isinstance(self.input_shape[0], int) else None

    def __repr__(self) -> str:
        return f"OnnxClassifier({self.path!r}, threads={self.threads})"

    def __call__(self, batch: Any) -> np.ndarray:
        if hasattr(batch, "detach"):  # a torch tensor
            batch = batch.detach().cpu().numpy()
        x = np.ascontiguousarray(batch, dtype=np.float32)
        if self._fixed_batch == 1 and len(x) > 1:
            return np.concatenate([self._run(x[i : i + 1]) for i in range(len(x))])
        return self._run(x)

    def _run(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: x})[0], dtype=np.float32)


class OnnxEnsemble:
    """A soft-voting ensemble (``ferkit-ensemble/1`` JSON) run from its members' own ONNX exports: the
    ensemble's ONNX is not a copy of its members, which ship once. Each member gets the ensemble's input
    (pixels in [0, 1] at the ensemble's size) in its own preprocessing (size, grey or colour, mean and
    std), its temperature and its class order (a member with extra classes, FER+'s contempt, renormalised
    over the ensemble's), as ``ferkit.models.Ensemble`` does in PyTorch; the output is the log of the
    weighted average, like the torch module's."""

    backend = "onnx"

    def __init__(self, meta: dict[str, Any], members: list[tuple[OnnxClassifier, dict[str, Any]]]):
        if meta.get("method") != "soft":
            raise WeightsError(f"{meta.get('name')}: ensemble method {meta.get('method')!r} runs on PyTorch "
                               "(backend 'torch'); ONNX Runtime runs soft-voting ensembles")
        self.meta, self.members = meta, members
        self.classes = list(meta["classes"])
        self.size = int(meta["input"]["size"])
        w = np.asarray(meta.get("weights") or [1.0] * len(members), dtype=np.float64)
        self.weights = w / w.sum()
        self.path = meta.get("name")

    def __repr__(self) -> str:
        return f"OnnxEnsemble({self.path!r}, {len(self.members)} members)"

    def _member_input(self, x: np.ndarray, inp: dict[str, Any]) -> np.ndarray:
        size, channels = int(inp["size"]), int(inp["channels"])
        if x.shape[1] != channels:  # colour to grey by luma, grey to colour by repeating
            x = (np.tensordot(np.asarray(LUMA, np.float32), x, axes=([0], [1])))[:, None] if channels == 1 \
                else np.repeat(x, 3, axis=1)
        if x.shape[-1] != size:
            from PIL import Image

            x = np.stack([[np.asarray(Image.fromarray(c, mode="F").resize((size, size), Image.BILINEAR)) for c in img]
                          for img in x.astype(np.float32)])
        mean = np.asarray(inp["mean"], np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(inp["std"], np.float32).reshape(1, -1, 1, 1)
        return ((x - mean) / std).astype(np.float32)

    def __call__(self, batch: Any) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        total = np.zeros((len(x), len(self.classes)), np.float64)
        for (clf, meta), w in zip(self.members, self.weights):
            p = probabilities(clf(self._member_input(x, meta["input"])), meta.get("temperature"))
            p = p[:, [list(meta["classes"]).index(c) for c in self.classes]]
            total += w * p / p.sum(axis=1, keepdims=True)
        return np.log(np.clip(total, 1e-12, None)).astype(np.float32)


#: ITU-R BT.601 luma weights (grey from RGB), as the PyTorch ensemble's members use
LUMA = (0.299, 0.587, 0.114)


def ensemble_train_prior(member_metas: list[dict[str, Any]], classes: list[str],
                         weights: list[float] | None) -> list[float] | None:
    """An ensemble's training prior: its members' ``train_prior`` (each over the ensemble's classes,
    renormalised) averaged with the voting weights, so that ``prior=`` (Bayes' rule on it) works for an
    ensemble as for a single model; None when a member records none."""
    w = np.asarray(weights or [1.0] * len(member_metas), dtype=np.float64)
    total = np.zeros(len(classes))
    for meta, wi in zip(member_metas, w / w.sum()):
        prior = meta.get("train_prior")
        if not isinstance(prior, list) or len(prior) != len(meta["classes"]):
            return None
        q = np.asarray([prior[list(meta["classes"]).index(c)] for c in classes], dtype=np.float64)
        total += wi * q / q.sum()
    return [round(float(v), 6) for v in total]


def fill_train_prior(meta: dict[str, Any], member_metas: list[dict[str, Any]], weights: list[float] | None,
                     source: str | os.PathLike[str]) -> None:
    """An ensemble JSON's ``train_prior`` filled in from its members (:func:`ensemble_train_prior`) where
    it records none, then its ``prior`` checked against it (a prior other than train needs one)."""
    meta.setdefault("train_prior", ensemble_train_prior(member_metas, meta["classes"], weights))
    check_prior(meta, source)


def open_onnx(path: str | os.PathLike[str], *, threads: int | None = None) -> tuple[Any, dict[str, Any]]:
    """``(classifier, metadata)`` for an ONNX export (:class:`OnnxClassifier`), or for an ensemble JSON
    whose members have ONNX exports in the ``onnx/`` folder beside them, as shipped (:class:`OnnxEnsemble`)."""
    meta_path = Path(path)
    meta_path = meta_path if meta_path.suffix == ".json" else meta_path.with_name(meta_path.name + ".json")
    meta = read_json(meta_path) if meta_path.is_file() else None
    if meta is None or meta.get("format") != "ferkit-ensemble/1":
        onnx_path, meta = read_onnx_meta(path)
        return OnnxClassifier(onnx_path, threads=threads), meta
    check_prior(meta, meta_path, needs_train_prior=False)     # its spelling before any session is opened
    members = []
    for i, entry in enumerate(meta.get("members") or []):
        export = meta_path.parent / "onnx" / f"{entry.get('path')}.json"
        if not export.is_file():
            raise WeightsError(f"{meta_path}: member {i} ({entry.get('name')}) has no ONNX export at {export}; "
                               "run the ensemble with backend 'torch'")
        onnx_path, member = read_onnx_meta(export)
        if entry.get("sha256") and member.get("source_sha256") != entry["sha256"]:
            raise WeightsError(f"{export}: member {i} is not the model this ensemble was built from "
                               f"(sha256 differs from {meta_path.name})")
        members.append((OnnxClassifier(onnx_path, threads=threads), member))
    if not members:
        raise WeightsError(f"{meta_path}: 'members' must be a non-empty list")
    meta = {**meta, "backend": "onnx"}
    fill_train_prior(meta, [m for _, m in members], meta.get("weights"), meta_path)
    return OnnxEnsemble(meta, members), meta


def probabilities(logits: np.ndarray, temperature: float | None = None, shift: np.ndarray | None = None) -> np.ndarray:
    """``softmax(logits / temperature + shift)`` per row, float64 (rows sum to 1); None means 1 / no shift.
    ``shift`` is a per-class log-prior change from :func:`prior_shift`."""
    t = 1.0 if temperature is None else float(temperature)
    if not t > 0:
        raise FerkitError(f"temperature must be > 0, not {temperature!r}")
    z = np.asarray(logits, dtype=np.float64) / t
    if shift is not None:
        z = z + shift
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def onnx_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(onnx, json)`` paths for ``path``: a stem (``out/model``), either file of the pair, or a
    directory (existing, or written with a trailing slash) holding ``model.onnx`` + ``model.json``."""
    return model_paths(path, weights_suffix=".onnx")


def is_onnx_export(path: Any) -> bool:
    """Whether ``path`` names an ONNX export: a ``.onnx`` file name, or a stem/JSON/folder whose
    JSON has format ``ferkit-onnx/1``. Model names (``"default"``) and PyTorch models are not."""
    if not isinstance(path, (str, os.PathLike)):
        return False
    if Path(path).suffix == ".onnx":
        return True
    _, meta_path = onnx_paths(path)
    meta = read_json(meta_path) if meta_path.is_file() else None
    return bool(meta and meta.get("format") == ONNX_FORMAT)


def read_onnx_meta(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """``(onnx path, metadata)`` of an export written by :func:`export_onnx`, with the .onnx file's
    sha256 checked. Raises WeightsError (one line naming the file) for a missing file, bad JSON, a
    PyTorch model's JSON, missing keys or a checksum mismatch."""
    onnx_path, meta_path = onnx_paths(path)
    if not meta_path.is_file():
        raise WeightsError(f"{meta_path}: ONNX model metadata not found "
                           f"(export_onnx writes it next to {onnx_path.name})")
    meta = read_json(meta_path)
    if meta is None:
        raise WeightsError(f"{meta_path}: not a readable JSON object")
    fmt = meta.get("format")
    if fmt != ONNX_FORMAT:
        hint = "; a PyTorch model: use backend='torch', or export it with `ferkit export`" \
            if fmt == "ferkit-model/1" else ""
        raise WeightsError(f"{meta_path}: format is {fmt!r}, expected {ONNX_FORMAT!r}{hint}")
    missing = [k for k in ("classes", "input", "input_name", "sha256") if k not in meta]
    if missing:
        raise WeightsError(f"{meta_path}: lacks {', '.join(missing)}")
    check_prior(meta, meta_path)
    if not onnx_path.is_file():
        raise WeightsError(f"{onnx_path}: ONNX file not found (named by {meta_path.name})")
    if sha256_file(onnx_path) != meta["sha256"]:
        raise WeightsError(f"{onnx_path}: checksum mismatch, file corrupt or modified "
                           f"(sha256 differs from {meta_path.name})")
    return onnx_path, meta
