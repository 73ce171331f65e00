"""`evaluate()`: run a model over a dataset split and measure it; optionally write the report folder.

The work is split so that bad inputs fail fast and cheaply: the TTA mode, the format, the output
folder, the dataset, the split, the class list, the detector, ``n_boot`` and the group regex (on
every file name) are all checked before the model is loaded (torch is imported only then).

Two ways to classify: the images are face crops (the data set's own, default), or ``detect``
names a face detector and each uncropped photo is classified as ``ferkit predict`` would
(:mod:`ferkit.evaluate.detect_eval`). Either way ``ci95`` holds bootstrap intervals
(:mod:`ferkit.evaluate.bootstrap`), over images or, with ``groups``, over groups of images.
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.data.faceset import FaceSet
from ferkit.data.labels import parse_class_list
from ferkit.errors import ConfigError, DataError, FerkitError
from ferkit.evaluate.tta import TTA_MODES, tta_views

__all__ = ["DEFAULT_SPLITS", "SCHEMA", "Evaluation", "default_split", "evaluate", "evaluation_of_probs",
           "load_eval_data", "run_evaluation"]

#: value of the ``schema`` key of metrics.json; bumped when a key is renamed or removed
SCHEMA = "ferkit-metrics/1"
#: split used when none is given: each format's standard test split
DEFAULT_SPLITS = {
    "fer2013-csv": "PrivateTest", "fer2013-folder": "PrivateTest", "ferplus": "FER2013Test", "folder": "all",
}

Progress = Callable[[int, int], None]


@dataclass
class Evaluation:
    """Everything one evaluation produced; ``metrics`` is the metrics.json dict.

    With ``detect`` (detect-then-classify), ``found`` marks the images where a face was found;
    the other rows of ``probs`` and ``logits`` are NaN and their ``y_pred`` is -1 (wrong), so
    always read predictions from ``y_pred``, never from ``probs.argmax``.
    """

    metrics: dict[str, Any]
    classes: list[str]
    y_true: np.ndarray            # (K,) index into classes
    probs: np.ndarray             # (K, C) probabilities over classes (restricted, temperature applied)
    logits: np.ndarray            # (K, V, C_model) raw logits of every TTA view, all model classes
                                  # (detect: log-probabilities of the one view ``ferkit predict`` classifies)
    columns: list[int]            # model output column of each class in ``classes``
    faces: FaceSet                # the evaluated images (K rows, labels indexed into ``classes``)
    model: Any = None             # the nn.Module (eval mode)
    meta: dict[str, Any] = field(default_factory=dict)
    label: str = "model"          # short model name for folder names and titles
    found: np.ndarray | None = None          # (K,) bool, detect only: a face was found
    thumbs: list[np.ndarray] | None = None   # detect only: what was classified (the crop), for the report

    @property
    def y_pred(self) -> np.ndarray:
        """(K,) predicted class index; -1 where no face was found (``detect``)."""
        if self.found is None:
            return self.probs.argmax(axis=1)
        return np.where(self.found, np.nan_to_num(self.probs, nan=-1.0).argmax(axis=1), -1)


def default_split(fmt: str) -> str:
    return DEFAULT_SPLITS.get(fmt, "all")


def _check_tta(tta: str) -> None:
    if tta not in TTA_MODES:
        raise ConfigError(f"unknown test-time augmentation {tta!r} (known: {', '.join(TTA_MODES)})")


def _check_ci_and_detect(detect: str | None, tta: str, n_boot: int) -> None:
    """Bad ``n_boot``, unknown detector, TTA with detect -> ConfigError/DetectorError, before any loading."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        raise ConfigError(f"--n-boot must be a non-negative integer (0: no confidence intervals), not {n_boot!r}")
    if detect is not None:
        from ferkit.detect import DetectorError, list_detectors

        if detect not in list_detectors():
            raise DetectorError(f"unknown face detector {detect!r} (choose from: {', '.join(list_detectors())})")
        if tta != "none":
            raise ConfigError(f"--tta {tta} applies to crop classification; --detect classifies the largest face "
                              "as `ferkit predict` does, without test-time augmentation")


def _with_groups(faces: FaceSet, regex: str | None) -> FaceSet:
    """``faces`` with ``groups`` read from each file name by ``regex`` (see
    :func:`ferkit.data.splits.subject_ids`); a name that does not match is a DataError naming it."""
    if regex is None:
        return faces
    from ferkit.data.splits import subject_ids

    names = faces.paths if faces.paths is not None else faces.ids
    groups = subject_ids(names, regex)
    if len(np.unique(groups)) < 2:
        raise DataError(f"group regex {regex!r}: all {len(groups)} images fall in one group ({groups[0]}); "
                        "the bootstrap needs at least two groups to resample")
    return replace(faces, groups=groups, notes=list(faces.notes))


def _ci95(faces: FaceSet, y_pred: np.ndarray, classes: Sequence[str], groups: str | None,
          n_boot: int) -> dict[str, Any] | None:
    """The ``ci95`` block of metrics.json (None when ``n_boot`` is 0)."""
    if n_boot == 0:
        return None
    from ferkit.evaluate.bootstrap import DEFAULT_SEED, bootstrap_ci

    ci = bootstrap_ci(faces.labels, y_pred, classes, groups=faces.groups if groups else None, n_boot=n_boot,
                      seed=DEFAULT_SEED)
    out = {k: ci[k] for k in ("method", "n_boot", "seed", "resample")}
    out.update(groups_regex=groups, n_groups=ci["n_groups"], accuracy=ci["accuracy"], macro_f1=ci["macro_f1"],
               recall=ci["recall"])
    return out


def load_eval_data(
    data: str | os.PathLike[str], format: str = "auto", split: str | None = None,
    classes: str | Sequence[str] | None = None, *, limit: int | None = None, label_mode: str = "majority",
) -> tuple[FaceSet, dict[str, Any]]:
    """Load ``data``, keep ``split`` (None: the format's test split, see ``DEFAULT_SPLITS``), keep
    ``classes`` (canonical names or aliases, in that order) and a stratified ``limit``-image subset.

    Returns ``(faces, info)``; ``info`` is the ``dataset`` block of metrics.json. Raises DataError
    (one line) for an unknown format, a missing split (naming the splits the dataset has), a class
    the dataset lacks, and nothing left to evaluate.
    """
    from ferkit.data import FORMATS, load_dataset, stratified_subset

    if format not in ("auto", *FORMATS):
        raise DataError(f"{data}: unknown dataset format {format!r} (known: auto, {', '.join(FORMATS)})")
    wanted = parse_class_list(classes, source="--classes")
    faces = load_dataset(data, format, label_mode=label_mode)
    fmt = faces.name or format
    split = split or default_split(fmt)
    faces = faces.split(split)
    n_split = len(faces)
    if n_split == 0:
        raise DataError(f"{data}: split {split!r} has no images")
    if wanted:
        faces = faces.with_classes(wanted)  # DataError for an unknown class or when nothing is left
    notes = list(faces.notes)
    if limit is not None:
        if limit < 1:
            raise DataError(f"--limit must be at least 1, not {limit}")
        if limit < len(faces):
            n_before = len(faces)
            faces = faces.select(stratified_subset(faces.labels, limit, seed=0))
            notes.append(f"stratified subset of {len(faces)} of the {n_before} images"
                         f"{' of the selected classes' if wanted else ''} in split {split} (--limit, seed 0)")
    info = {
        "path": str(data), "format": fmt, "split": split, "n_images_split": n_split,
        "classes": list(faces.classes), "classes_requested": wanted, "limit": limit,
        "label_mode": label_mode if fmt == "ferplus" else None, "notes": notes,
    }
    return faces, info


def _load_model(model: Any, device: Any) -> tuple[Any, dict[str, Any], dict[str, Any], str]:
    """(module, meta, identity block, short label) for a name, a path or a (module, meta) pair."""
    from ferkit.models import is_shipped_name, load_model, resolve_model_path

    if isinstance(model, tuple):
        net, meta = model
        meta = dict(meta)
        label = str(meta.get("name") or getattr(net, "ferkit_arch", "model"))
        path = None
        given = label
    else:
        given = os.fspath(model)
        net, meta = load_model(given, device=device)
        resolved = resolve_model_path(given)
        path = str(resolved)
        if is_shipped_name(given):
            label = given
        else:
            p = Path(given.rstrip("/\\"))
            stem = p.with_suffix("").name
            label = p.name if p.is_dir() else (p.parent.name if stem == "model" else stem)
    ident = {
        "name": given, "path": path, "arch": meta.get("arch"), "sha256": meta.get("sha256"),
        "classes": list(meta["classes"]), "input": dict(meta["input"]),
        "num_params": meta.get("num_params"), "temperature": meta.get("temperature"),
        "ferkit_version": meta.get("ferkit_version"),
    }
    return net, meta, ident, label


def _align_classes(
    faces: FaceSet, model_classes: Sequence[str], requested: Sequence[str] | None, model_name: str,
) -> tuple[FaceSet, list[str], dict[str, Any]]:
    """Restrict the data and the model to the classes they share (or to ``requested``).

    Returns ``(faces re-indexed to classes, classes, class_restriction block)``.
    """
    dropped: dict[str, int] = {}
    if requested:
        missing = [c for c in requested if c not in model_classes]
        if missing:
            raise DataError(f"{model_name}: model has no class {', '.join(missing)} "
                            f"(its classes: {', '.join(model_classes)})")
        classes = list(requested)
        reason = "--classes"
    else:
        classes = [c for c in model_classes if c in faces.classes]
        if not classes:
            raise DataError(f"{faces.root or faces.name}: no class in common between the model "
                            f"({', '.join(model_classes)}) and the dataset ({', '.join(faces.classes)})")
        counts = faces.class_counts()
        dropped = {c: counts[c] for c in faces.classes if c not in model_classes}   # said in the report
        reason = "shared"
    faces = faces.with_classes(classes)
    excluded = [c for c in model_classes if c not in classes]
    block = {
        "restricted": bool(excluded), "reason": reason if excluded else None, "model_classes": list(model_classes),
        "excluded_model_classes": excluded, "dropped_dataset_classes": dropped,
    }
    return faces, classes, block


def run_evaluation(
    model: Any, data: str | os.PathLike[str], format: str = "auto", split: str | None = None,
    classes: str | Sequence[str] | None = None, tta: str = "none", batch_size: int = 128, device: str = "auto",
    *, limit: int | None = None, label_mode: str = "majority", temperature: float | None = None,
    progress: Progress | None = None, faces_info: tuple[FaceSet, dict[str, Any]] | None = None,
    detect: str | None = None, groups: str | None = None, n_boot: int = 1000, prior: Any = None,
) -> Evaluation:
    """Like :func:`evaluate` without writing anything; returns an :class:`Evaluation` with the
    predictions as well as the metrics. ``faces_info`` reuses an earlier :func:`load_eval_data`."""
    _check_tta(tta)
    _check_ci_and_detect(detect, tta, n_boot)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch size must be a positive integer, not {batch_size!r}")
    if temperature is not None and not temperature > 0:
        raise ConfigError(f"temperature must be positive, not {temperature!r}")
    faces, info = faces_info or load_eval_data(data, format, split, classes, limit=limit, label_mode=label_mode)
    faces = _with_groups(faces, groups)  # a file name the regex misses fails here, before the model loads

    from ferkit.evaluate.inference import resolve_device

    dev = resolve_device(device)
    net, meta, ident, label = _load_model(model, dev)
    faces, eval_classes, restriction = _align_classes(faces, list(meta["classes"]), info["classes_requested"],
                                                      ident["name"])
    columns = [list(meta["classes"]).index(c) for c in eval_classes]
    temp = float(temperature if temperature is not None else meta.get("temperature") or 1.0)
    from ferkit.infer import model_prior, prior_shift

    prior = model_prior(meta, prior)
    shift = prior_shift(meta, prior)
    if detect is None:
        faces, probs, logits, m, notes, seconds, extra = _classify_crops(
            net, meta, faces, eval_classes, columns, temp, tta, batch_size, dev, progress, shift)
    else:
        faces, probs, logits, m, notes, seconds, extra = _detect_then_classify(
            net, meta, faces, eval_classes, columns, temp, detect, batch_size, dev, progress, prior)
    ev = Evaluation(metrics={}, classes=list(eval_classes), y_true=faces.labels.copy(), probs=probs, logits=logits,
                    columns=columns, faces=faces, model=net, meta=meta, label=label, **extra)
    ev.metrics = _metrics_doc(ev, ident, dict(info, notes=info["notes"] + notes), restriction, m, tta=tta, temp=temp,
                              prior=prior, groups=groups, n_boot=n_boot, detect=detect,
                              timing={"seconds": round(seconds, 3),
                                      "images_per_s": round(len(faces) / max(seconds, 1e-9), 1),
                                      "device": str(dev), "batch_size": batch_size})
    return ev


def evaluation_of_probs(
    probs: np.ndarray, model_classes: Sequence[str], faces_info: tuple[FaceSet, dict[str, Any]], ident: dict[str, Any],
    *, label: str, prior: Any = "train", n_boot: int = 1000, seconds: float = 0.0,
) -> Evaluation:
    """An :class:`Evaluation` of probabilities computed elsewhere, such as an ensemble combined from its
    members' recorded outputs: ``probs`` (K, len(model_classes)) for the K images of ``faces_info``
    (:func:`load_eval_data`) whose class is one of ``model_classes``, in their order. The data and the
    classes are aligned as for a model (the images of a class the model lacks left out and counted, the
    argmax restricted to the classes both have, each row renormalised over them); ``ident`` is the
    ``model`` block of metrics.json (``name`` and ``classes`` at least); ``seconds``, the time the
    probabilities took."""
    from ferkit.evaluate.metrics import compute_metrics

    faces, info = faces_info
    probs = np.asarray(probs, dtype=np.float64)
    known = int(np.isin(np.asarray(faces.classes)[faces.labels], list(model_classes)).sum())
    if probs.shape != (known, len(model_classes)):
        raise ConfigError(f"{ident['name']}: {probs.shape} probabilities for {known} images of its classes "
                          f"and {len(model_classes)} classes")
    faces, eval_classes, restriction = _align_classes(faces, list(model_classes), info["classes_requested"],
                                                      ident["name"])
    columns = [list(model_classes).index(c) for c in eval_classes]
    p = probs[:, columns]
    p = p / np.clip(p.sum(1, keepdims=True), 1e-12, None)
    ev = Evaluation(metrics={}, classes=list(eval_classes), y_true=faces.labels.copy(), probs=p,
                    logits=np.log(np.clip(probs, 1e-12, None))[:, None], columns=columns, faces=faces, label=label)
    timing = {"seconds": round(seconds, 3), "images_per_s": round(len(p) / max(seconds, 1e-9), 1), "device": "cpu",
              "batch_size": None}
    ev.metrics = _metrics_doc(ev, ident, info, restriction, compute_metrics(faces.labels, p, eval_classes),
                              tta="none", temp=1.0, prior=prior, groups=None, n_boot=n_boot, detect=None, timing=timing)
    return ev


def _metrics_doc(ev: Evaluation, ident: dict[str, Any], info: dict[str, Any], restriction: dict[str, Any],
                 m: dict[str, Any], *, tta: str, temp: float, prior: Any, groups: str | None, n_boot: int,
                 detect: str | None, timing: dict[str, Any] | None) -> dict[str, Any]:
    """metrics.json of an evaluation: one place for its fields, whatever computed the probabilities."""
    from ferkit import __version__

    return {
        "schema": SCHEMA,
        "ferkit_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": ident,
        "dataset": dict(info, classes=list(ev.classes)),
        "classes": list(ev.classes),
        "class_restriction": restriction,
        "tta": tta,
        "tta_views": tta_views(tta),
        "temperature": temp,
        "prior": prior,
        "n_images": m["n_images"],
        "accuracy": m["accuracy"],
        "macro_precision": m["macro_precision"],
        "macro_recall": m["macro_recall"],
        "macro_f1": m["macro_f1"],
        "weighted_precision": m["weighted_precision"],
        "weighted_recall": m["weighted_recall"],
        "weighted_f1": m["weighted_f1"],
        "mean_auc": m["mean_auc"],
        "ece": m["ece"],
        "nll": m["nll"],
        "per_class": m["per_class"],
        "confusion": m["confusion"],
        "reliability": m["reliability"],
        "ci95": _ci95(ev.faces, ev.y_pred, ev.classes, groups, n_boot),
        "detector": detect,
        "n_no_face": None if ev.found is None else int((~ev.found).sum()),
        "no_face_files": None if ev.found is None else [str(f) for f in ev.faces.ids[~ev.found]],
        "timing": timing,
        "output_dir": None,
    }


def _classify_crops(
    net: Any, meta: dict[str, Any], faces: FaceSet, classes: list[str], columns: list[int], temp: float, tta: str,
    batch_size: int, dev: Any, progress: Progress | None, shift: np.ndarray | None = None,
) -> tuple[FaceSet, np.ndarray, np.ndarray, dict[str, Any], list[str], float, dict[str, Any]]:
    """Classify every image as a face crop (the data set's own crops), with ``tta`` views."""
    from ferkit.evaluate.inference import combine_views, predict_logits
    from ferkit.evaluate.metrics import compute_metrics

    notes: list[str] = []
    t0 = time.perf_counter()
    logits, kept = predict_logits(net, meta["input"], faces, tta=tta, batch_size=batch_size, device=dev,
                                  progress=progress)
    seconds = time.perf_counter() - t0
    if len(kept) < len(faces):
        bad = np.setdiff1d(np.arange(len(faces)), kept)
        notes.append(f"{len(bad)} images could not be decoded and were skipped: "
                     + ", ".join(str(faces.ids[i]) for i in bad[:5]) + (" ..." if len(bad) > 5 else ""))
        faces = faces.select(kept)
    probs = combine_views(logits, columns, temp, shift)
    return faces, probs, logits, compute_metrics(faces.labels, probs, classes), notes, seconds, {}


def _detect_then_classify(
    net: Any, meta: dict[str, Any], faces: FaceSet, classes: list[str], columns: list[int], temp: float,
    detector: str, batch_size: int, dev: Any, progress: Progress | None, prior: Any = None,
) -> tuple[FaceSet, np.ndarray, np.ndarray, dict[str, Any], list[str], float, dict[str, Any]]:
    """Detect faces in every (uncropped) image and classify the largest as ``ferkit predict`` does."""
    from ferkit.evaluate.detect_eval import compute_detect_metrics, detect_and_classify
    from ferkit.infer import Recognizer

    # the Recognizer `ferkit predict --detector NAME` builds, on the already loaded module; the
    # temperature it applies is the one reported (the model's stored one unless overridden)
    rec = Recognizer((net, dict(meta, temperature=temp)), detector, device=dev, batch_size=batch_size, prior=prior)
    t0 = time.perf_counter()
    out = detect_and_classify(rec, faces, progress=progress)
    seconds = time.perf_counter() - t0
    notes: list[str] = []
    if out.unreadable:
        notes.append(f"{len(out.unreadable)} files could not be read and were skipped: "
                     + "; ".join(out.unreadable[:5]) + (" ..." if len(out.unreadable) > 5 else ""))
    if len(out.kept) == 0:
        raise DataError(f"{faces.root or faces.name}: none of the {len(faces)} images could be read")
    faces = faces.select(out.kept)
    n_found = int(out.found.sum())
    if n_found == 0:
        raise DataError(f"{faces.root or faces.name}: detector {detector} found no face in any of the "
                        f"{len(faces)} images")
    p = out.probs[:, columns]
    probs = p / p.sum(axis=1, keepdims=True)          # restricted argmax: renormalised over kept classes (NaN stays)
    with np.errstate(divide="ignore", invalid="ignore"):
        logits = np.log(np.maximum(out.probs, 1e-300))[:, None, :]
    m = compute_detect_metrics(faces.labels, probs, out.found, classes)
    n_multi = int((out.n_faces > 1).sum())
    notes.append(f"detect-then-classify with {detector} (crop margin {rec.margin:g}): the largest face of each image "
                 f"is classified as `ferkit predict` does; {len(faces) - n_found} of {len(faces)} images without a "
                 "face count as wrong (listed in no_face_files)")
    if n_multi:
        notes.append(f"{n_multi} images had more than one face; the largest was classified")
    if n_found < len(faces):
        notes.append(f"mean AUC, per-class AUC, ECE, NLL and the reliability bins are over the {n_found} images "
                     "where a face was found; accuracy, precision, recall and F1 over all images")
    return faces, probs, logits, m, notes, seconds, {"found": out.found, "thumbs": out.thumbs}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("._") or "x"


def default_out_dir(
    label: str, data: str | os.PathLike[str], split: str, root: str | os.PathLike[str] = "eval",
) -> Path:
    """``eval/<model>-<dataset>-<split>-<YYYYmmdd-HHMMSS>``, with ``-2``, ``-3`` ... if taken."""
    name = Path(os.fspath(data).rstrip("/\\")).name
    if name.lower().endswith(".csv"):
        name = name[:-4]
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{_slug(label)}-{_slug(name)}-{_slug(split)}-{stamp}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def evaluate(
    model: Any, data: str | os.PathLike[str], format: str = "auto", split: str | None = None,
    classes: str | Sequence[str] | None = None, tta: str = "none", batch_size: int = 128, device: str = "auto",
    out: str | os.PathLike[str] | bool | None = None, *, limit: int | None = None, label_mode: str = "majority",
    temperature: float | None = None, grid: int = 32, progress: Progress | None = None, detect: str | None = None,
    groups: str | None = None, n_boot: int = 1000, prior: Any = None,
) -> dict[str, Any]:
    """Evaluate ``model`` on ``split`` of the dataset at ``data``; return the metrics.json dict.

    Args:
        model: a shipped model name (``"default"``), a saved model (run folder, stem or file of a
            ``.safetensors`` + ``.json`` pair), or an ``(nn.Module, meta)`` pair (an ensemble, a model
            in memory); ``meta`` needs ``classes`` and ``input``.
        data, format: dataset path and format (``auto``, ``fer2013-csv``, ``fer2013-folder``,
            ``ferplus``, ``folder``).
        split: split name of that format, or ``"all"``; None means the format's test split
            (``PrivateTest``, ``FER2013Test``; ``all`` for ``folder``).
        classes: keep only these classes ("angry,happy,sad" or a list; aliases such as anger,
            happiness are normalised) and restrict the model's argmax to them. Without it, a dataset
            with fewer classes than the model restricts the argmax to the shared classes, and
            images of classes the model lacks (contempt) are left out; both are said in the report.
        tta: ``"none"``, ``"flip"`` (image + mirror) or ``"ten-crop"`` (4 corners + centre at the
            model's input size from a 12.5 % larger resize, and their mirrors); softmax averaged.
        batch_size, device: inference batch size; ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda:1"``...
        out: write the report folder there (refused if it exists); ``True`` means the default
            ``eval/<model>-<dataset>-<split>-<time>``; None/False writes nothing.
        limit: evaluate a stratified, seeded subset of this many images (quick checks).
        label_mode: FER+ labels (majority, plurality, probability -> hard label = argmax).
        temperature: divide logits by this before the softmax; None uses the model's stored
            ``temperature`` (from ``ferkit calibrate``) or 1. The argmax does not change.
        prior: the class prior to predict under: None (the model's own, its JSON's ``prior``, as
            ``ferkit predict`` does), ``"train"`` (as trained), ``"uniform"`` (a class-balanced set), a
            balance from 0 (train) to 1 (uniform) or class frequencies; see ``ferkit.infer.prior_shift``.
        grid: number of faces in the prediction-grid figure.
        progress: ``progress(done, total)`` after each batch (each image with ``detect``).
        detect: a face detector name (``"dlib-hog"``, ``"haar"``, ``"dlib-cnn"``) to evaluate
            uncropped photos (one labelled person per image) as ``ferkit predict`` sees them: the
            largest face the detector finds is cropped and classified through the same
            :class:`ferkit.infer.Recognizer` methods (reader, detector, crop margin, preprocessing,
            stored temperature). An image without a face counts as wrong and is listed in
            ``no_face_files``; an unreadable file is logged (one WARNING line naming it) and
            skipped. AUC, ECE and NLL are over the found faces. No TTA. None (default): the
            images are face crops, classified directly.
        groups: a regular expression searched in each file name (the base name of the image id);
            its first capture group (or the whole match) is the group id, e.g. ``r"S(\\d+)_"``
            for CK+ subjects. The bootstrap then resamples groups, not images (images of one
            subject are not independent). A file name it does not match is a DataError naming
            the file; fewer than two groups is a DataError.
        n_boot: bootstrap resamples for the ``ci95`` intervals (percentile bootstrap, seed 0);
            0 leaves ``ci95`` null.

    Raises:
        DataError / ConfigError / WeightsError (one-line messages) for bad inputs; FerkitError when
        ``out`` already exists.
    """
    target = None
    if out not in (None, False, True):
        target = Path(out)
        if target.exists():
            raise FerkitError(f"{target}: already exists; give another --out (an existing folder is never overwritten)")
    _check_tta(tta)
    _check_ci_and_detect(detect, tta, n_boot)
    faces_info = load_eval_data(data, format, split, classes, limit=limit, label_mode=label_mode)
    ev = run_evaluation(model, data, format, split, classes, tta, batch_size, device, limit=limit,
                        label_mode=label_mode, temperature=temperature, progress=progress, faces_info=faces_info,
                        detect=detect, groups=groups, n_boot=n_boot, prior=prior)
    if out in (None, False):
        return ev.metrics
    if target is None:
        target = default_out_dir(ev.label, data, ev.metrics["dataset"]["split"])
    from ferkit.evaluate.report import write_eval_folder

    write_eval_folder(ev, target, grid=grid)
    return ev.metrics
