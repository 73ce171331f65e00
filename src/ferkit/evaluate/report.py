"""The evaluation folder: metrics.json, report.md, figures and predictions.csv, written atomically.

Layout of a folder written by :func:`write_eval_folder`::

    metrics.json             the metrics (schema in ferkit.evaluate and docs/metrics_schema.md)
    report.md                summary (with 95 % bootstrap intervals), class restriction, per-class
                             table, classification report, confusion matrix (counts and % of true
                             class), calibration, figures; with --detect the images without a face
    confusion_matrix.png     heat map normalised by true class
    roc_curves.png           one-vs-rest ROC curve per class
    reliability_diagram.png  accuracy per confidence bin vs. the diagonal (ECE in the title)
    prediction_grid.png      N faces with true label, predicted label and confidence; misclassified in red
                             (with --detect: the detector's crops, "no face" on the whole photo)
    predictions.csv          file, true, predicted, confidence, one probability column per class
                             (with --detect an image without a face has empty cells after "true")

Everything is written into a hidden temporary folder beside the target, which is renamed onto
the target at the end: readers never see a half-written folder, and a failure leaves nothing. An
existing target is never replaced.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.errors import FerkitError

__all__ = ["atomic_folder", "draw_figures", "grid_indices", "markdown_table", "render_report", "with_ci",
           "write_eval_folder"]

FILES = ("metrics.json", "report.md", "confusion_matrix.png", "roc_curves.png", "reliability_diagram.png",
         "prediction_grid.png", "predictions.csv")


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; rename it to ``target`` when the block
    succeeds, delete it when it fails. Raises FerkitError if ``target`` exists (before and after)."""
    target = Path(target)
    if target.exists():
        raise FerkitError(f"{target}: already exists; give another --out (an existing folder is never overwritten)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():
            raise FerkitError(f"{target}: appeared while writing; the results are not moved onto it")
        os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub Markdown table; ``align`` is one character per column (``l``/``r``), default left
    for the first column and right for the others."""
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(map(str, header)) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def grid_indices(y_true: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` sample indices for the prediction grid: classes taken in turn (so rare classes show
    up), a seeded random order within each class."""
    rng = np.random.default_rng(seed)
    y_true = np.asarray(y_true)
    pools = [list(rng.permutation(np.flatnonzero(y_true == c))) for c in np.unique(y_true)]
    out: list[int] = []
    while len(out) < n and any(pools):
        for pool in pools:
            if pool and len(out) < n:
                out.append(int(pool.pop(0)))
    return np.array(out, dtype=np.int64)


def with_ci(value: float | None, interval: Sequence[float] | None) -> str:
    """``0.6662 [0.651, 0.682]``: a metric with its 95 % interval (just the value when there is none)."""
    if value is None:
        return "n/a"
    return f"{value:.4f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")


def prior_words(m: Mapping[str, Any]) -> list[str]:
    """How a metrics dict's class prior is named beside its figures: ``["prior uniform"]``, nothing for the
    model as trained (the prior a metrics file without one was measured under)."""
    prior = m.get("prior", "train")
    return [] if prior == "train" else [f"prior {prior}"]


def _ci_text(ci: Mapping[str, Any]) -> str:
    unit = (f"groups (`--groups {ci['groups_regex']}`: {ci['n_groups']} groups; images of one group are not "
            "independent, so whole groups are drawn)" if ci["resample"] == "groups" else "images")
    return (f"Intervals in brackets are 95 % {ci['method']} intervals: {ci['n_boot']} resamples of the {unit} "
            f"with replacement (seed {ci['seed']}), the 2.5th and 97.5th percentiles of the recomputed metric.")


def confusion_percent_table(m: Mapping[str, Any]) -> str:
    """The confusion matrix of metrics ``m`` as a Markdown table, each row in % of its true class."""
    cls, conf = list(m["classes"]), np.asarray(m["confusion"])
    rows_sum = conf.sum(axis=1, keepdims=True)
    pct = np.divide(100.0 * conf, rows_sum, out=np.zeros(conf.shape), where=rows_sum > 0)
    return markdown_table(["true \\ predicted", *cls], [[c, *(f"{v:.1f}" for v in row)] for c, row in zip(cls, pct)])


def render_report(metrics: Mapping[str, Any], classification_report: str = "") -> str:
    """report.md text from a metrics.json dict (and scikit-learn's classification report text)."""
    m = metrics
    model, data, cls = m["model"], m["dataset"], m["classes"]
    r = m["class_restriction"]
    t = m["timing"]
    ci = m.get("ci95") or {}
    out = [f"# Evaluation of `{model['name']}` on `{data['path']}` ({data['format']}, split {data['split']})", ""]
    if m.get("detector"):
        out += [(f"Detect-then-classify: each image went through the `{m['detector']}` face detector and its "
                 f"largest face was classified as `ferkit predict` does; {m['n_no_face']} of {m['n_images']} images "
                 "had no face and count as wrong (see [Images without a face](#images-without-a-face))."), ""]
    out.append(markdown_table(
        ["metric", "value"],
        [["images", m["n_images"]], ["accuracy", with_ci(m["accuracy"], ci.get("accuracy"))],
         ["macro F1", with_ci(m["macro_f1"], ci.get("macro_f1"))],
         ["weighted F1", m["weighted_f1"]], ["macro precision", m["macro_precision"]],
         ["macro recall", m["macro_recall"]], ["mean ROC AUC (one vs. rest)", m["mean_auc"]],
         ["expected calibration error (ECE)", m["ece"]], ["negative log-likelihood", m["nll"]],
         ["test-time augmentation", f"{m['tta']} ({m['tta_views']} view{'s' if m['tta_views'] > 1 else ''})"],
         ["temperature", m["temperature"]],
         ["class prior", str(m.get("prior", "train"))],
         ["time", f"{t['seconds']:.1f} s ({t['images_per_s']:.0f} images/s on {t['device']})"]],
        align="lr"))
    if ci:
        out += ["", _ci_text(ci)]
    out += ["", (f"Model: `{model['name']}` (arch {model['arch']}, {model['num_params'] or 'n/a'} parameters, "
                 f"input {model['input']['channels']}x{model['input']['size']}x{model['input']['size']}, "
                 f"sha256 of the weights {str(model['sha256'])[:12]}...). ferkit {m['ferkit_version']}, "
                 f"{m['created']}."), ""]
    out += ["## Classes", ""]
    if r["restricted"]:
        why = ("selected with `--classes`" if r["reason"] == "--classes"
               else "the classes this dataset shares with the model")
        out.append(f"**Restricted argmax:** the model's prediction is restricted to {len(cls)} of its "
                   f"{len(r['model_classes'])} classes ({', '.join(cls)}; {why}). Its other classes "
                   f"({', '.join(r['excluded_model_classes'])}) are never predicted; probabilities are "
                   f"renormalised over the kept classes.")
    else:
        out.append(f"All {len(cls)} classes of the model are evaluated: {', '.join(cls)}.")
    for c, k in r["dropped_dataset_classes"].items():
        out.append(f"\n{k} images of class {c} were left out: the model has no class {c}.")
    if data["notes"]:
        out += ["", "Notes:", ""] + [f"- {n}" for n in data["notes"]]
    out += ["", "## Per-class results", ""]
    rec_ci = ci.get("recall") or {}
    rows = [[c, p["precision"], with_ci(p["recall"], rec_ci.get(c)) if ci else p["recall"], p["f1"], p["support"],
             p["auc"]] for c, p in m["per_class"].items()]
    rows.append(["**macro avg**", m["macro_precision"], m["macro_recall"],
                 with_ci(m["macro_f1"], ci.get("macro_f1")) if ci else m["macro_f1"], m["n_images"], m["mean_auc"]])
    rows.append(["**weighted avg**", m["weighted_precision"], m["weighted_recall"], m["weighted_f1"], m["n_images"],
                 None])
    out.append(markdown_table(["class", "precision", "recall" + (" [95 % CI]" if ci else ""), "F1", "support",
                               "ROC AUC"], rows))
    if classification_report:
        out += ["", "Classification report (scikit-learn):", "", "```", classification_report.rstrip(), "```"]
    conf = np.asarray(m["confusion"])
    out += ["", "## Confusion matrix", "", "Rows: true class; columns: predicted class"
            + (" (images without a face are in no column: the rows sum to the faces found)" if m.get("detector")
               else "") + ". Counts:", ""]
    out.append(markdown_table(["true \\ predicted", *cls], [[c, *map(int, row)] for c, row in zip(cls, conf)]))
    out += ["", "Normalised by true class (% of each row):", ""]
    out.append(confusion_percent_table(m))
    out += ["", "![confusion matrix](confusion_matrix.png)", "", "## ROC curves", "",
            "![ROC curves](roc_curves.png)", "", "## Calibration", ""]
    rel = m["reliability"]
    out.append(f"Expected calibration error {m['ece']:.4f} over {rel['n_bins']} equal-width bins of the top-1 "
               f"confidence (0 = confidences mean what they say); negative log-likelihood {_fmt(m['nll'])}. "
               + (f"Logits divided by the stored temperature {m['temperature']:.4f} (from `ferkit calibrate`)."
                  if m["temperature"] != 1.0 else
                  "No temperature scaling (`ferkit calibrate` fits one on a validation split)."))
    out += ["", "![reliability diagram](reliability_diagram.png)", "", "## Predictions", "",
            "![prediction grid](prediction_grid.png)", "",
            "Every prediction with its probabilities: [predictions.csv](predictions.csv)"
            + (" (an image without a face has an empty prediction)." if m.get("detector") else "."), ""]
    if m.get("detector"):
        files = m["no_face_files"]
        out += ["## Images without a face", "",
                f"The `{m['detector']}` detector found no face in {len(files)} of {m['n_images']} images"
                + (":" if files else "."), ""]
        out += [f"- `{f}`" for f in files]
        if files:
            out.append("")
    return "\n".join(out)


def write_eval_folder(ev: Any, target: str | os.PathLike[str], *, grid: int = 32) -> Path:
    """Write the report folder of an :class:`~ferkit.evaluate.runner.Evaluation` atomically at
    ``target`` (refused if it exists); sets ``ev.metrics["output_dir"]``; returns the folder."""
    from sklearn.metrics import classification_report

    target = Path(target)
    m = ev.metrics
    classes = ev.classes
    y_pred = ev.y_pred
    labels = list(range(len(classes)))
    report_text = classification_report(ev.y_true, y_pred, labels=labels, target_names=classes, digits=4,
                                        zero_division=0)
    title = f"{ev.label} on {Path(str(m['dataset']['path']).rstrip('/')).name} {m['dataset']['split']}"
    if m.get("detector"):
        title += f", {m['detector']} faces"
    m["output_dir"] = str(target)
    try:
        _write_files(ev, target, m, classes, y_pred, report_text, title, grid)
    except BaseException:
        m["output_dir"] = None
        raise
    return target


def _write_files(ev: Any, target: Path, m: dict[str, Any], classes: list[str], y_pred: np.ndarray, report_text: str,
                 title: str, grid: int) -> None:
    from ferkit.evaluate.metrics import roc_curves, roc_summary

    # detect-then-classify: curves over the images where a face was found; predictions -1 = no face
    found = np.ones(len(y_pred), bool) if getattr(ev, "found", None) is None else ev.found
    thumbs = getattr(ev, "thumbs", None)
    conf = np.where(found, np.nan_to_num(ev.probs, nan=0.0).max(axis=1), 0.0)
    # what the figures are drawn from, kept in metrics.json so that `draw_figures` draws them again
    m["roc"] = roc_summary(roc_curves(ev.y_true[found], ev.probs[found], classes))
    idx = grid_indices(ev.y_true, max(1, grid))
    m["grid"] = {"title": title, "faces": [
        {"file": str(ev.faces.ids[i]), "true": classes[ev.y_true[i]],
         "predicted": classes[y_pred[i]] if found[i] else NO_FACE, "confidence": round(float(conf[i]), 4)}
        for i in idx]}
    with atomic_folder(target) as tmp:
        (tmp / "metrics.json").write_text(json.dumps(m, indent=2) + "\n", encoding="utf-8")
        (tmp / "report.md").write_text(render_report(m, report_text), encoding="utf-8")
        draw_figures(tmp, m, [thumbs[i] if thumbs is not None else ev.faces.load_image(int(i)) for i in idx])
        with (tmp / "predictions.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["file", "true", "predicted", "confidence", *(f"p_{c}" for c in classes)])
            for i in range(len(y_pred)):
                if not found[i]:
                    w.writerow([ev.faces.ids[i], classes[ev.y_true[i]], "", "", *([""] * len(classes))])
                    continue
                w.writerow([ev.faces.ids[i], classes[ev.y_true[i]], classes[y_pred[i]], f"{conf[i]:.6f}",
                            *(f"{p:.6f}" for p in ev.probs[i])])


#: the grid's label of an image in which the detector found no face
NO_FACE = "no face"


def draw_figures(folder: str | os.PathLike[str], m: Mapping[str, Any] | None = None,
                 grid_images: Sequence[np.ndarray] | None = None) -> list[Path]:
    """The figures of an evaluation folder, drawn from its ``metrics.json`` alone (``m``: already read):
    confusion matrix, ROC curves, reliability diagram, and the prediction grid from ``grid_images`` or,
    when not given, the grid's files read again from the data set the metrics name (skipped, with the
    other figures drawn, where it is not at hand). What ``ferkit papers figures`` runs on recorded rows."""
    from ferkit.viz import report_plots as viz

    folder = Path(folder)
    m = m if m is not None else json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    classes = list(m["classes"])
    title = (m.get("grid") or {}).get("title") or f"{m['model'].get('name')} on {m['dataset'].get('split')}"
    out = [viz.plot_confusion_matrix(m["confusion"], classes, folder / "confusion_matrix.png",
                                     title=f"Confusion matrix, % of true class: {title}")]
    rel = m["reliability"]
    out.append(viz.plot_reliability_diagram(rel["confidence"], rel["accuracy"], rel["count"],
                                            folder / "reliability_diagram.png", ece=m["ece"],
                                            title=f"Reliability: {title}"))
    if m.get("roc"):
        auc = {c: (m["per_class"].get(c) or {}).get("auc") for c in classes}
        curves = {c: {"fpr": m["roc"]["fpr"] if t else [], "tpr": t or [], "auc": auc[c] if t else None}
                  for c, t in m["roc"]["tpr"].items()}
        out.append(viz.plot_roc_curves(curves, folder / "roc_curves.png", title=f"ROC curves (one vs. rest): {title}"))
    faces = (m.get("grid") or {}).get("faces") or []
    if grid_images is None and faces:
        grid_images = _grid_images(m, [f["file"] for f in faces])
    if grid_images is not None and faces:
        out.append(viz.plot_prediction_grid(
            grid_images, [f["true"] for f in faces], [f["predicted"] for f in faces], [f["confidence"] for f in faces],
            folder / "prediction_grid.png",
            title=f"{title}: predicted label and confidence, true label (red: misclassified)"))
    return out


def _grid_images(m: Mapping[str, Any], files: Sequence[str]) -> list[np.ndarray] | None:
    """The grid's faces read from the metrics' data set, or None when it cannot be read here."""
    from ferkit.data import load_dataset

    d = m["dataset"]
    if m.get("detector"):  # the grid showed the detector's crops, which are not in the data set
        return None
    try:
        faces = load_dataset(d["path"], d["format"], label_mode=d.get("label_mode") or "majority")
        where = {str(i): k for k, i in enumerate(faces.ids)}
        return [faces.load_image(where[f]) for f in files]
    except (FerkitError, KeyError, OSError):
        return None
