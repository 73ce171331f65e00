"""Classifier backends: the model part of inference behind one small interface.

A :class:`Classifier` maps a preprocessed batch (float32 ``(N, C, H, W)``, numpy or torch, exactly as
``ferkit.data.transforms.eval_transform`` makes it) to logits ``(N, classes)`` float32 numpy.
Probabilities are computed afterwards, in Python, by :func:`probabilities` (``softmax(logits / T)``
with the model's stored temperature) for every backend alike, so a temperature fitted by
``ferkit calibrate`` is never baked into an exported graph and both backends share one code path.

- ``torch``: :class:`TorchClassifier`, the ``nn.Module`` on any torch device.
- ``onnx``: :class:`OnnxClassifier`, an ONNX Runtime session (CPUExecutionProvider) on a shipped
  model's ONNX file or one written by ``ferkit export`` (:func:`ferkit.export.export_onnx`).
  Inference only loads: a PyTorch model that was never exported is refused, in one line that says
  how to export it.

>>> clf, meta = load_classifier("default", "onnx", threads=2)
>>> p = probabilities(clf(batch), meta.get("temperature"))
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ferkit.errors import FerkitError, WeightsError
from ferkit.models import OnnxClassifier, Prior, canonical_prior, probabilities, train_prior_problem

if TYPE_CHECKING:
    from ferkit.models import Classifier, TorchClassifier

__all__ = ["BACKENDS", "Classifier", "OnnxClassifier", "TorchClassifier", "default_backend",
           "load_classifier", "model_prior", "parse_prior", "prior_shift", "probabilities"]

def __getattr__(name: str) -> Any:
    if name in ("Classifier", "TorchClassifier"):  # they need PyTorch: imported on first use
        import ferkit.models

        return getattr(ferkit.models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: backend names, for ``Recognizer(backend=...)`` and ``--backend``
BACKENDS = ("torch", "onnx")

ModelArg = Any  # str | os.PathLike | tuple[nn.Module, dict]


#: what a caller may ask for: a canonical ``Prior``, class frequencies as any sequence, or None
PriorArg = Prior | Sequence[float] | None


def model_prior(meta: dict[str, Any], prior: PriorArg = None) -> Prior:
    """The prior a model predicts under when asked for ``prior``, in one spelling
    (``ferkit.models.canonical_prior``): ``prior`` itself, or for None the model's own choice (its
    JSON's ``prior``, written by ``scripts/choose_prior.py``; ``"train"`` where it has none)."""
    return canonical_prior(meta.get("prior") if prior is None else prior)


def prior_shift(meta: dict[str, Any], prior: PriorArg) -> np.ndarray | None:
    """Per-class change of log prior that moves a model's posterior from its training prior to ``prior``.

    ``prior``: None (the model's own choice: :func:`model_prior`), ``"train"`` (the model as trained:
    no change), ``"uniform"`` (every class equally likely: what a class-balanced test set, such as a
    posed collection, has), a balance ``b`` from 0 to 1 (the training prior raised to ``1 - b`` and
    renormalised: 0 is ``"train"``, 1 ``"uniform"``, 0.5 their geometric middle, for test sets whose
    class frequencies are unknown), or class frequencies, as a list in the model's class order or a
    ``{class: frequency}`` dict naming every class (each > 0; they are normalised). By Bayes' rule,
    ``p(c|x) ∝ p_train(c|x) * prior(c) / train_prior(c)``; the training prior is the model JSON's
    ``train_prior`` (class frequencies of its training targets, written by ``ferkit train``).
    FerkitError names what is wrong.
    """
    prior = model_prior(meta, prior)
    if prior == "train":
        return None
    classes = list(meta["classes"])
    name = meta.get("name") or meta.get("arch") or "model"
    train = meta.get("train_prior")
    if train is None or train_prior_problem(meta):
        raise FerkitError(f"{name}: its JSON records no usable train_prior ({len(classes)} class frequencies > 0), "
                          "so the prior cannot be changed; only prior='train' works")
    log_train = np.log(np.asarray(train, dtype=np.float64) / float(np.sum(train)))
    if isinstance(prior, float):    # log(train^(1-b)) - log(train), up to a constant
        return -prior * (log_train - np.mean(log_train))
    if prior == "uniform":
        q = np.full(len(classes), 1.0 / len(classes))
    else:
        if isinstance(prior, dict):
            unknown = sorted(set(prior) - set(classes))
            missing = [c for c in classes if c not in prior]
            if unknown or missing:
                raise FerkitError(f"prior: {'unknown class ' + ', '.join(unknown) if unknown else ''}"
                                  f"{'; ' if unknown and missing else ''}"
                                  f"{'no frequency for ' + ', '.join(missing) if missing else ''} "
                                  f"(the model's classes: {', '.join(classes)})")
            values = [prior[c] for c in classes]
        else:
            values = prior
            if len(values) != len(classes):
                raise FerkitError(f"prior: {len(values)} frequencies for {len(classes)} classes ({', '.join(classes)})")
        q = np.array(values)
        if not np.all(np.isfinite(q)) or np.any(q <= 0):
            raise FerkitError(f"prior: every class needs a finite frequency > 0, got {values!r}")
        q = q / q.sum()
    return np.log(q) - log_train


def parse_prior(text: str | None) -> Prior | None:
    """The command line's ``--prior``: ``train``, ``uniform``, a balance from 0 to 1 or
    ``class=freq,class=freq,...``, in one spelling (``ferkit.models.canonical_prior``); None (not
    given) stays None: the model's own choice. FerkitError names what is wrong."""
    if text is None:
        return None
    try:
        balance = float(text)
    except ValueError:
        pass
    else:
        return canonical_prior(balance)
    if "=" not in text:
        return canonical_prior(text)    # a name, or what no prior is
    out: dict[str, float] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise FerkitError(f"prior {text!r}: expected train, uniform, a balance from 0 to 1 or "
                              f"class=frequency,... ({part!r} has no '=')")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise FerkitError(f"prior {text!r}: {value!r} is not a number") from None
    return out


def _torch_installed() -> bool:
    try:
        import torch  # noqa: F401  (the torch backend imports it anyway)
    except ImportError:
        return False
    return True


def default_backend(model: ModelArg = "default", device: Any = "cpu") -> str:
    """The backend ``backend=None`` means for ``model``: ``"onnx"`` where an ONNX file is at hand (a
    shipped model, whose export ships with it, or an exported ``.onnx``) and the device is the CPU:
    no PyTorch import, and ONNX Runtime is the faster CPU runtime (same probabilities within 1e-6);
    ``"torch"`` for PyTorch models (saved runs, ``(module, meta)`` pairs) and other devices; and
    ``"onnx"`` for anything when PyTorch is not installed (the light install)."""
    from ferkit.models import is_onnx_export, shipped_onnx

    cpu = str(device).split(":")[0] == "cpu"
    has_onnx = not isinstance(model, tuple) and (shipped_onnx(model) is not None or is_onnx_export(model))
    if cpu and has_onnx:
        return "onnx"
    return "torch" if _torch_installed() else "onnx"


def _needs_torch(what: str) -> FerkitError:
    return FerkitError(f"{what} needs PyTorch, which this installation lacks: pip install 'ferkit[train]' "
                       "(shipped models and exported .onnx files run without it, with --backend onnx)")


def load_classifier(
    model: ModelArg = "default",
    backend: str | None = None,
    *,
    device: Any = "cpu",
    threads: int | None = None,
) -> tuple[Classifier, dict[str, Any]]:
    """A :class:`Classifier` for ``model`` on ``backend``, and the model's metadata.

    Args:
        model: a shipped model name (``"default"``), a saved PyTorch model path, a ``(nn.Module,
            meta)`` pair, or (``onnx`` only) an exported ``.onnx``/``.json`` pair.
        backend: ``"torch"``, ``"onnx"`` or None (:func:`default_backend`: ONNX Runtime for shipped
            models and exported files on the CPU, PyTorch for the rest). With ``onnx``, a shipped
            model runs from the ONNX file shipped beside its weights (no PyTorch needed) and an
            exported pair from its file; any other model is refused with a FerkitError saying to run
            ``ferkit export MODEL --out FILE.onnx`` first (inference never exports).
        device: torch device (``torch`` only; ``onnx`` runs on the CPU).
        threads: ONNX Runtime intra-op threads (``onnx`` only; see ``OnnxClassifier``).

    The metadata of an ONNX model carries ``"backend": "onnx"``; ``meta["input"]`` is what
    ``eval_transform`` needs for either backend.
    """
    from ferkit.models import is_onnx_export, open_onnx, resolve_model_path, shipped_onnx

    backend = default_backend(model, device) if backend is None else backend
    if backend not in BACKENDS:
        raise FerkitError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
    onnx_file = not isinstance(model, tuple) and is_onnx_export(model)
    if backend == "torch":
        if onnx_file:
            raise WeightsError(f"{os.fspath(model)}: an ONNX export; run it with backend='onnx' (--backend onnx)")
        if not _torch_installed():
            raise _needs_torch("backend 'torch'")
        from ferkit.models import TorchClassifier

        if isinstance(model, tuple):
            net, meta = model
        else:
            from ferkit.models import load_model

            net, meta = load_model(model, device=device)
        return TorchClassifier(net, device), dict(meta)
    if str(device).split(":")[0] != "cpu":
        raise FerkitError(f"backend 'onnx' runs on the CPU (CPUExecutionProvider), not on {device!r}")
    shipped = None if isinstance(model, tuple) else shipped_onnx(model)
    if not (onnx_file or shipped is not None):
        if not isinstance(model, tuple):
            resolve_model_path(model)  # a missing file or an unknown name is reported as such
        raise _not_exported(model)
    return open_onnx(shipped or model, threads=threads)


def _not_exported(model: ModelArg) -> FerkitError:
    """The one-line error for a PyTorch model asked to run on ONNX Runtime: inference never exports."""
    if isinstance(model, tuple):
        return FerkitError("a PyTorch (module, meta) pair cannot run on backend 'onnx': export it first with "
                           "ferkit.export.export_onnx((module, meta), 'FILE.onnx') and load FILE.onnx")
    name = os.fspath(model)
    if not _torch_installed():  # the light install: exporting needs PyTorch too
        return _needs_torch(f"{name}: a PyTorch model")
    return FerkitError(f"{name}: a PyTorch model, not exported to ONNX: run `ferkit export {name} --out FILE.onnx` "
                       "first and use FILE.onnx (or the torch backend)")
