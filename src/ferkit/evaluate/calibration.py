"""Temperature scaling (Guo et al., 2017): one scalar ``T`` that divides the logits before the
softmax, fitted by minimising the negative log-likelihood on a validation split. It changes the
confidences, never the argmax.

``ferkit calibrate MODEL --data PATH --split PublicTest`` stores ``T`` in the model's JSON as the
key ``temperature``; :func:`ferkit.evaluate.evaluate` then applies it. Only the JSON is rewritten
(atomically: a temporary file beside it, then ``os.replace``); the weights file is not touched.
The JSON's ``sha256`` covers the weights file only, so it stays valid and ``load_model`` still
verifies the weights. Fit the temperature after training ends: a training run that saves a new
best model rewrites its ``model.json`` without the key.
"""
from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.errors import ConfigError, FerkitError, WeightsError

__all__ = ["TEMPERATURE_BOUNDS", "VALIDATION_SPLITS", "calibrate", "fit_temperature", "nll_at_temperature"]

#: search range of the temperature
TEMPERATURE_BOUNDS = (0.05, 20.0)
#: split fitted on when none is given: each format's validation split (never its test split)
VALIDATION_SPLITS = {"fer2013-csv": "PublicTest", "fer2013-folder": "PublicTest", "ferplus": "FER2013Valid"}


def nll_at_temperature(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of ``labels`` under the view-averaged softmax of
    ``logits / temperature``; ``logits`` is (N, C) or (N, V, C) (V test-time-augmentation views)."""
    from scipy.special import log_softmax, logsumexp

    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 2:
        z = z[:, None, :]
    logp = logsumexp(log_softmax(z / temperature, axis=-1), axis=1) - np.log(z.shape[1])   # (N, C)
    return float(-logp[np.arange(len(labels)), np.asarray(labels)].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in ``TEMPERATURE_BOUNDS`` minimising :func:`nll_at_temperature` (bounded
    Brent search over log T). Never worse than T = 1 on the data it was fitted on."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels)
    if len(labels) == 0:
        raise ConfigError("fit_temperature: no samples")
    lo, hi = np.log(TEMPERATURE_BOUNDS[0]), np.log(TEMPERATURE_BOUNDS[1])
    res = minimize_scalar(lambda t: nll_at_temperature(logits, labels, float(np.exp(t))), bounds=(lo, hi),
                          method="bounded", options={"xatol": 1e-5})
    best = float(np.exp(res.x))
    if nll_at_temperature(logits, labels, best) > nll_at_temperature(logits, labels, 1.0):
        return 1.0
    return best


def calibrate(
    model: str | os.PathLike[str], data: str | os.PathLike[str], format: str = "auto", split: str | None = None,
    classes: str | Sequence[str] | None = None, *, tta: str = "none", limit: int | None = None,
    batch_size: int = 128, device: str = "auto", label_mode: str = "majority",
    out: str | os.PathLike[str] | None = None, progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Fit a temperature on ``split`` of ``data`` and store it in the model's JSON.

    ``model`` is a saved model path (run folder, stem or file); a model shipped inside the package
    (``"default"``) is only calibrated into a copy: give ``out`` (a new folder), which receives a
    byte-identical copy of the weights and the JSON with ``temperature``. ``out`` works for any model.
    ``split`` None fits on the format's validation split (``VALIDATION_SPLITS``: PublicTest,
    FER2013Valid; ``all`` for folders). The other arguments are those of
    :func:`ferkit.evaluate.evaluate`; the fit uses the
    class-restricted logits when ``classes`` is given. Any stored temperature is ignored while
    fitting (the fit starts from the raw logits).

    Returns ``{"temperature", "nll_before", "nll_after", "ece_before", "ece_after", "n_images",
    "split", "model_json"}`` (before = T 1, after = the fitted T, both on the fitting data).
    """
    from ferkit.evaluate.inference import combine_views
    from ferkit.evaluate.metrics import expected_calibration_error
    from ferkit.evaluate.runner import run_evaluation
    from ferkit.models import WEIGHTS_DIR, Weights, model_paths, resolve_model_path

    src = resolve_model_path(model)
    weights, meta_json = model_paths(src)
    shipped = meta_json.resolve().parent == WEIGHTS_DIR.resolve()
    if shipped and out is None:
        raise WeightsError(f"{os.fspath(model)}: is shipped inside the ferkit package; give --out DIR to write "
                           "a calibrated copy there")
    if out is not None and Path(out).exists():
        raise FerkitError(f"{out}: already exists; give another --out (an existing folder is never overwritten)")
    if split is None:
        from ferkit.data.loaders import detect_format

        fmt = detect_format(data) if format == "auto" else format
        split = VALIDATION_SPLITS.get(fmt, "all")
    ev = run_evaluation(src, data, format, split, classes, tta, batch_size, device, limit=limit,
                        label_mode=label_mode, temperature=1.0, progress=progress, prior="train")
    z = ev.logits[..., ev.columns]
    temperature = fit_temperature(z, ev.y_true)
    before = nll_at_temperature(z, ev.y_true, 1.0)
    after = nll_at_temperature(z, ev.y_true, temperature)
    ece_before = expected_calibration_error(ev.y_true, combine_views(z, None, 1.0))
    ece_after = expected_calibration_error(ev.y_true, combine_views(z, None, temperature))

    current = Weights.from_json(meta_json)
    if current.sha256 != ev.meta.get("sha256"):
        raise WeightsError(f"{meta_json}: changed while calibrating; not rewritten")
    calibrated = current.replace(temperature=round(temperature, 6))
    from ferkit.models import Ensemble, save_ensemble

    if out is not None and isinstance(ev.model, Ensemble):
        target_json = save_ensemble(ev.model, calibrated.as_dict(), f"{out}/")   # members copied next to it
    elif out is not None:
        dest = Path(out)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")
        tmp.mkdir()
        try:
            shutil.copyfile(weights, tmp / "model.safetensors")
            calibrated.write(tmp / "model.json")
            os.rename(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        target_json = dest / "model.json"
    else:
        calibrated.write(meta_json, keep_mode=True)
        target_json = meta_json
    return {
        "temperature": calibrated.temperature, "nll_before": before, "nll_after": after, "ece_before": ece_before,
        "ece_after": ece_after, "n_images": len(ev.y_true), "split": ev.metrics["dataset"]["split"],
        "classes": ev.classes, "tta": tta, "model_json": str(target_json),
    }
