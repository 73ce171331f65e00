"""`ensemble_report()`: every member, its test-time augmentation, and every way of combining the
members, measured on the same data in one table (``ferkit ensemble report``).

Rows: each member with TTA ``none``, ``flip`` and ``ten-crop``; soft voting with equal weights and
with weights fitted for accuracy (each also with flip TTA), soft voting with weights fitted for log-loss,
hard majority voting, stacking, and region voting. Columns: accuracy and macro-F1 on each evaluation split, and the CPU
cost per face (one thread, batch 64, forward pass on preprocessed tensors; region voting includes
dlib's landmarks on the upscaled crop). Weights and stacking are fitted on ``fit_split``; on that
split their figures are in-sample, which the report says.

Member probabilities are computed once per split and TTA mode, and every combination is applied to
those arrays with the same functions the :class:`~ferkit.ensemble.Ensemble` module uses, so the
table costs little more than evaluating each member. Region voting runs the real module.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ferkit import _docblock
from ferkit.ensemble._build import (
    labelled_faces,
    labels_in,
    load_members,
    member_probabilities,
)
from ferkit.ensemble.voting import (
    fit_stacking,
    fit_weights,
    majority_vote,
    soft_vote,
    stack_logits,
)
from ferkit.models import Ensemble

__all__ = ["BLOCK", "ensemble_report", "report_markdown", "write_report"]

#: name of the report's marked block, which ``ferkit ensemble report --update-docs`` copies into docs
BLOCK = "ensemble-report"

_TTAS = ("none", "flip", "ten-crop")


def _scores(y: np.ndarray, p: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    from ferkit.evaluate.metrics import compute_metrics

    p = np.asarray(p, dtype=np.float64)
    m = compute_metrics(y, p / p.sum(1, keepdims=True), classes)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}


def _ms_per_face(module: torch.nn.Module, input_cfg: dict[str, Any], views: int = 1) -> float:
    from ferkit.evaluate.comparison import cpu_speed

    _, ips = cpu_speed(module, input_cfg, latency_runs=1, throughput_runs=2, warmup=1, threads=1)
    return round(1000.0 * views / ips, 3)


def ensemble_report(
    models: Sequence[Any], data: str | os.PathLike[str], format: str = "auto", *, fit_split: str = "PublicTest",
    eval_splits: Sequence[str] = ("PublicTest", "PrivateTest"), limit: int | None = None, regions: bool = True,
    device: str = "cpu", progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure ``models`` and their ensembles; return ``{"rows": [...], "context": {...}}``.

    Each row: ``name``, ``kind`` (member / tta / ensemble), ``tta``, ``weights``, ``fitted``,
    ``ms_per_face`` and ``splits: {split: {accuracy, macro_f1, n_images}}``.
    """
    from ferkit.evaluate.benchmark import machine_info

    say = progress or (lambda _msg: None)
    members = load_members(models, device)
    names = [m["name"] for _, m in members]
    soft = Ensemble(members, "soft").eval()
    classes = soft.classes
    splits = list(dict.fromkeys([fit_split, *eval_splits]))

    probs: dict[tuple[str, str], np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    faces_of = {}
    for split in splits:
        faces, _ = labelled_faces(data, format, split, classes, limit=limit)
        for tta in _TTAS if split in eval_splits else ("none",):
            say(f"member probabilities: {split}, TTA {tta}")
            p, kept = member_probabilities(soft, faces, tta=tta)
            probs[split, tta] = p
            labels[split] = labels_in(faces, kept, classes)
        faces_of[split] = faces.select(kept) if len(kept) < len(faces) else faces

    fit_p, fit_y = probs[fit_split, "none"], labels[fit_split]
    w_acc, w_ll = fit_weights(fit_p, fit_y, "accuracy"), fit_weights(fit_p, fit_y, "logloss")
    coef, intercept = fit_stacking(fit_p, fit_y)

    def stacked(p: np.ndarray) -> np.ndarray:
        return torch.softmax(stack_logits(p, coef, intercept), 1).numpy()

    combos: list[tuple[str, str, Callable[[np.ndarray], np.ndarray], list[float] | None, bool, Ensemble]] = [
        ("soft voting, equal weights", "none", lambda p: soft_vote(p).numpy(), None, False, soft),
        ("soft voting, equal weights", "flip", lambda p: soft_vote(p).numpy(), None, False, soft),
        ("soft voting, weights fitted for accuracy", "none", lambda p: soft_vote(p, w_acc).numpy(),
         [float(v) for v in w_acc], True, soft),
        ("soft voting, weights fitted for accuracy", "flip", lambda p: soft_vote(p, w_acc).numpy(),
         [float(v) for v in w_acc], True, soft),
        ("soft voting, weights fitted for log-loss", "none", lambda p: soft_vote(p, w_ll).numpy(),
         [float(v) for v in w_ll], True, soft),
        ("majority voting", "none", lambda p: majority_vote(p).numpy(), None, False, Ensemble(members, "vote")),
        ("stacking (logistic regression)", "none", stacked, None, True,
         Ensemble(members, "stack", stack={"coef": coef, "intercept": intercept})),
    ]
    rows: list[dict[str, Any]] = []
    member_ms = [_ms_per_face(m, soft.input_cfg) for m in soft.members]
    module_ms: dict[int, float] = {}   # one timing per module (soft voting serves two rows)
    for i, name in enumerate(names):
        for tta in _TTAS:
            views = {"none": 1, "flip": 2, "ten-crop": 10}[tta]
            rows.append({
                "name": name, "kind": "member" if tta == "none" else "tta", "tta": tta, "weights": None,
                "fitted": False, "ms_per_face": round(member_ms[i] * views, 3),
                "splits": {s: {**_scores(labels[s], probs[s, tta][i], classes), "n_images": len(labels[s])}
                           for s in eval_splits},
            })
    for label, tta, fn, weights, fitted, module in combos:
        views = 2 if tta == "flip" else 1
        rows.append({
            "name": label, "kind": "ensemble", "tta": tta, "weights": weights, "fitted": fitted,
            "ms_per_face": round(module_ms.setdefault(id(module), _ms_per_face(module, soft.input_cfg)) * views, 3),
            "splits": {s: {**_scores(labels[s], fn(probs[s, tta]), classes), "n_images": len(labels[s])}
                       for s in eval_splits},
        })
    region_stats = None
    if regions:
        from ferkit.evaluate.inference import predict_logits

        reg = Ensemble(members, "regions").eval()
        split_scores = {}
        for s in eval_splits:
            say(f"region voting: {s}")
            logits, kept = predict_logits(reg, reg.input_cfg, faces_of[s], batch_size=64)
            y = labels_in(faces_of[s], kept, classes)
            split_scores[s] = {**_scores(y, np.exp(logits[:, 0].astype(np.float64)), classes), "n_images": len(y)}
        region_stats = dict(reg.region_stats)
        rows.append({"name": "region voting (members x face + 5 dlib regions)", "kind": "ensemble", "tta": "none",
                     "weights": None, "fitted": False, "ms_per_face": _ms_per_face(reg, reg.input_cfg),
                     "splits": split_scores})
    context = {"models": names, "data": str(data), "format": format, "fit_split": fit_split,
               "eval_splits": list(eval_splits), "limit": limit, "classes": classes,
               "weights_accuracy": [float(v) for v in w_acc], "weights_logloss": [float(v) for v in w_ll],
               "region_landmarks": region_stats, "cpu_threads": 1, "machine": machine_info()["machine"]}
    return {"rows": rows, "context": context}


def report_markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table with a short header."""
    ctx, rows = report["context"], report["rows"]
    splits = ctx["eval_splits"]
    head = (["configuration", "TTA"] + [f"{s} {k}" for s in splits for k in ("acc", "macro-F1")]
            + ["ms/face (CPU, 1 thread)"])
    lines = [(f"Models: {', '.join(ctx['models'])}. Data: `{ctx['data']}` ({ctx['format']}); weights and stacking "
             f"fitted on **{ctx['fit_split']}** (rows marked * are in-sample there; other splits are held out). "
             f"Machine: {ctx['machine']}."), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["name"] + (" *" if r["fitted"] else ""), r["tta"]]
        for s in splits:
            sc = r["splits"][s]
            cells += [f"{100 * sc['accuracy']:.2f}%", f"{100 * sc['macro_f1']:.2f}%"]
        cells.append(f"{r['ms_per_face']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", (f"Fitted weights ({', '.join(ctx['models'])}): accuracy {_fmt(ctx['weights_accuracy'])}, "
              f"log-loss {_fmt(ctx['weights_logloss'])}.")]
    if ctx.get("region_landmarks"):
        st = ctx["region_landmarks"]
        lines.append(f"Region voting: dlib found the face on the upscaled crop for {st['faces'] - st['fallback']} of "
                     f"{st['faces']} faces; the rest used the whole crop as the face box (the fallback).")
    if ctx.get("command"):
        lines.append(f"Command: `{ctx['command']}`")
    return f"# Ensemble report: {', '.join(ctx['models'])}\n\n" + _docblock.wrap("\n".join(lines), BLOCK)


def _fmt(w: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in w) + "]"


def write_report(report: dict[str, Any], out: str | os.PathLike[str]) -> Path:
    """Write ``report.md`` and ``report.json`` into the folder ``out`` (created; files replaced atomically)."""
    from ferkit._fileio import atomic_write_text

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "report.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(folder / "report.md", report_markdown(report))
    return folder
