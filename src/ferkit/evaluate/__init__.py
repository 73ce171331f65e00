"""Evaluation: metrics, reports, test-time augmentation, calibration and model comparison.

>>> from ferkit.evaluate import evaluate, compare, calibrate
>>> m = evaluate("default", "../shared/data/fer2013", "fer2013-folder", "PublicTest", out="eval/pub")
>>> m["accuracy"], m["macro_f1"], m["per_class"]["happy"]["f1"]
>>> rows = compare(["default", "runs/x-20261125-101500"], "../shared/data/fer2013", "fer2013-folder", "PublicTest")
>>> calibrate("runs/x-20261125-101500", "../shared/data/fer2013", "fer2013-folder", "PublicTest")

API:

- ``evaluate(model, data, format="auto", split=None, classes=None, tta="none", batch_size=128,
  device="auto", out=None, *, limit=None, label_mode="majority", temperature=None, grid=32,
  progress=None, detect=None, groups=None, n_boot=1000) -> dict`` (the metrics.json dict; writes the
  report folder when ``out`` is given; ``detect="dlib-hog"`` classifies uncropped photos as
  ``ferkit predict`` does; ``groups`` resamples groups of images in the bootstrap)
- ``bootstrap_ci(y_true, y_pred, classes, *, groups=None, n_boot=1000, seed=0) -> dict``
- ``run_evaluation(...) -> Evaluation`` (same inputs, no files; metrics plus predictions)
- ``evaluation_of_probs(probs, model_classes, faces_info, ident, *, label) -> Evaluation`` (probabilities
  computed elsewhere, such as an ensemble combined from its members' recorded outputs, measured alike)
- ``compute_metrics(y_true, probs, classes) -> dict``, ``expected_calibration_error(y_true, probs)``
- ``compare(models, data=None, format="auto", split=None, classes=None, *, tta, limit, batch_size,
  device, latency_runs=30, throughput_runs=3) -> list[dict]``, ``compare_markdown(rows) -> str``,
  ``write_compare_folder(rows, out) -> Path``
- ``calibrate(model, data, format="auto", split=None, classes=None, *, tta, limit, out=None) -> dict``,
  ``fit_temperature(logits, labels) -> float``

metrics.json schema ``ferkit-metrics/1``
----------------------------------------
Every key below is always present (``null`` where a value is undefined, never NaN). Class lists
and the rows/columns of ``confusion`` follow ``classes``. See also ``docs/metrics_schema.md``.

===========================  ==============  =====================================================
key                          type            meaning
===========================  ==============  =====================================================
schema                       str             ``"ferkit-metrics/1"``
ferkit_version               str             ferkit that wrote the file
created                      str             ISO 8601 UTC time
model                        object          name (as given), path (resolved file stem or null),
                                             arch, sha256 (of the weights file only), classes
                                             (the model's), input {size, channels, mean, std},
                                             num_params, temperature (stored in its JSON, or
                                             null), ferkit_version (that saved it)
dataset                      object          path, format, split, n_images_split (images in the
                                             split before class selection and --limit), classes
                                             (evaluated), classes_requested (--classes or null),
                                             limit (int or null), label_mode (FER+ only, else
                                             null), notes (list of str: what was left out/changed)
classes                      list[str]       evaluated classes, in confusion order
class_restriction            object          restricted (bool: argmax limited to a subset of the
                                             model's classes), reason ("--classes", "shared" or
                                             null), model_classes, excluded_model_classes,
                                             dropped_dataset_classes {class: images left out
                                             because the model lacks the class}
tta                          str             "none", "flip" or "ten-crop"
tta_views                    int             views averaged per image (1, 2, 10)
temperature                  float           temperature applied to the logits (1.0 = none)
prior                        str | float |   class prior of the probabilities: "train", "uniform", a balance 0-1
                             list | dict     (see ferkit.infer.prior_shift) or class frequencies
n_images                     int             images evaluated
accuracy                     float           top-1 accuracy
macro_precision              float           unweighted mean over classes
macro_recall                 float
macro_f1                     float
weighted_precision           float           mean weighted by support
weighted_recall              float
weighted_f1                  float
mean_auc                     float | null    mean of the defined per-class AUCs
ece                          float           expected calibration error, 15 equal-width bins
nll                          float | null    negative log-likelihood (scikit-learn log_loss)
per_class                    object          class -> {precision, recall, f1 (float), support
                                             (int), auc (float | null: one-vs-rest ROC AUC,
                                             null when the class has no images)}
confusion                    list[list[int]] counts, rows = true class, columns = predicted
reliability                  object          n_bins, edges (n_bins + 1), confidence, accuracy
                                             (per bin, null if empty), count (per bin)
ci95                         object | null   95 % percentile-bootstrap intervals: method, n_boot,
                                             seed, resample ("images" or "groups"),
                                             groups_regex, n_groups, accuracy [lo, hi], macro_f1
                                             [lo, hi], recall {class: [lo, hi] | null}; null
                                             when n_boot is 0
detector                     str | null      face detector of ``detect`` (null: crops)
n_no_face                    int | null      images without a face (wrong); null without detect
no_face_files                list | null     their ids; null without detect
timing                       object          seconds (inference), images_per_s, device, batch_size
output_dir                   str | null      report folder, null when none was written
===========================  ==============  =====================================================

Metric definitions follow scikit-learn (``labels=range(len(classes))``, ``zero_division=0``). Keys
are only ever added in a ``ferkit-metrics/1`` file; renaming or removing one bumps the schema.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "evaluate": "ferkit.evaluate.runner",
    "run_evaluation": "ferkit.evaluate.runner",
    "evaluation_of_probs": "ferkit.evaluate.runner",
    "load_eval_data": "ferkit.evaluate.runner",
    "Evaluation": "ferkit.evaluate.runner",
    "SCHEMA": "ferkit.evaluate.runner",
    "compute_metrics": "ferkit.evaluate.metrics",
    "bootstrap_ci": "ferkit.evaluate.bootstrap",
    "expected_calibration_error": "ferkit.evaluate.metrics",
    "reliability_bins": "ferkit.evaluate.metrics",
    "roc_curves": "ferkit.evaluate.metrics",
    "TTA_MODES": "ferkit.evaluate.tta",
    "write_eval_folder": "ferkit.evaluate.report",
    "draw_figures": "ferkit.evaluate.report",
    "render_report": "ferkit.evaluate.report",
    "compare": "ferkit.evaluate.comparison",
    "compare_markdown": "ferkit.evaluate.comparison",
    "write_compare_folder": "ferkit.evaluate.comparison",
    "count_flops": "ferkit.evaluate.comparison",
    "cpu_speed": "ferkit.evaluate.comparison",
    "calibrate": "ferkit.evaluate.calibration",
    "fit_temperature": "ferkit.evaluate.calibration",
    "nll_at_temperature": "ferkit.evaluate.calibration",
}

#: top-level keys of metrics.json, in file order
METRICS_KEYS: tuple[str, ...] = (
    "schema", "ferkit_version", "created", "model", "dataset", "classes", "class_restriction", "tta", "tta_views",
    "temperature", "prior", "n_images", "accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_precision",
    "weighted_recall", "weighted_f1", "mean_auc", "ece", "nll", "per_class", "confusion", "reliability", "ci95",
    "detector", "n_no_face", "no_face_files", "timing", "output_dir", "roc", "grid",
)

__all__ = ["METRICS_KEYS", *_LAZY]  # noqa: PLE0604 - names resolved lazily by __getattr__


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ferkit.evaluate' has no attribute {name!r}")
