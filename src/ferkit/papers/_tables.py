"""A paper's table: train or reuse its runs, evaluate each row on the paper's data, write the report.

``reports/papers/<paper>.md`` (the table, beside the published figures) and ``<paper>.json`` are
built only from the rows' report folders ``reports/papers/<paper>/<row>/``: ``row.json`` (what
the row is: recipe, run, epochs, seconds per epoch, machine, the sha256 of its weights), the
training curves and ``metrics.csv`` copied from the run, and one ``ferkit evaluate`` report folder
per evaluation set (``metrics.json``, ``report.md``, confusion matrix, ROC curves). A row's
evaluation is reused while the sha256 of its weights and the evaluation settings are unchanged.
A row whose run folders are not here (``runs/`` stays out of the repository) keeps what its folder
recorded, so that a fresh clone rebuilds the same tables without retraining. A run that is a member
of an ensemble also records its outputs there (``outputs.npz``, :mod:`ferkit.papers._outputs`), and
an ensemble row is combined from its members' outputs, never from their run folders.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ferkit import _docblock
from ferkit._fileio import atomic_write_text
from ferkit.errors import ConfigError
from ferkit.models import read_json, sha256_file
from ferkit.papers._catalog import GAP_POINTS, EvalSet, Paper, PaperEnsemble, PaperModel, PaperRun, get_paper
from ferkit.papers._outputs import (
    MemberOutputs,
    combine_outputs,
    compute_outputs,
    member_needs,
    outputs_usable,
    read_outputs,
    write_outputs,
)
from ferkit.papers._runs import RunState, choose_recipe, find_run, recipe_config, run_state, train_run
from ferkit.train.config import TrainConfig

__all__ = ["BLOCK", "SCHEMA", "paper_configs", "paper_markdown", "paper_report", "papers_index"]

#: the docs block (README.md) that reports/papers/README.md's table is copied into
BLOCK = "papers"

SCHEMA = "ferkit-paper/1"
log = logging.getLogger("ferkit")
Say = Callable[[str], None]


def _copy(src: Path, dst: Path) -> None:
    if src.is_file():
        tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)


def _not_reused(problem: str) -> None:
    """A row's recorded file that cannot be read: named in one warning, then evaluated again or not reused."""
    log.warning("%s; not reused", problem)


def _read_metrics(folder: Path) -> dict[str, Any] | None:
    """An evaluation set's recorded ``metrics.json``, its ``output_dir`` the folder it is in now (older ones
    name the temporary folder they were written in); None where it is missing or unreadable."""
    metrics = read_json(folder / "metrics.json", _not_reused)
    return None if metrics is None else {**metrics, "output_dir": str(folder)}


def _write_set(row_dir: Path, ev: EvalSet, write: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Evaluation set ``ev``'s report folder in ``row_dir``, written by ``write(folder)`` (which returns its
    metrics) into a temporary folder and then moved into place."""
    _remove_stale(row_dir, ev)
    folder = row_dir / ev.key
    tmp = row_dir / f".{ev.key}.new-{os.getpid()}"
    metrics = write(tmp)
    metrics["output_dir"] = str(folder)     # where it will be, not the temporary folder
    atomic_write_text(tmp / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    old = row_dir / f".{ev.key}.old-{os.getpid()}"
    if folder.exists():     # the evaluation of other weights (ferkit's own report folder), moved aside
        os.rename(folder, old)
    os.rename(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)
    return metrics


def _remove_stale(row_dir: Path, ev: EvalSet) -> None:
    """What a killed evaluation of ``ev`` was writing in ``row_dir``."""
    for stale in row_dir.glob(f".{ev.key}.*-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _evaluate_row(model: Any, row_dir: Path, paper: Paper, key: dict[str, Any], limit: int | None,
                  say: Say) -> dict[str, dict[str, Any]]:
    """metrics.json of each evaluation set; reused while ``key`` (weights and settings) is unchanged."""
    from ferkit.evaluate import evaluate

    same = (read_json(row_dir / "row.json", _not_reused) or {}).get("eval_key") == key
    out = {}
    for ev in paper.evals:
        _remove_stale(row_dir, ev)
        cached = _read_metrics(row_dir / ev.key) if same else None
        if cached is not None:
            out[ev.key] = cached
            continue
        say(f"ferkit: evaluating {row_dir.name} on {ev.title}")
        # the models as trained (prior train), as the papers compare them, whatever prior a shipped one uses
        out[ev.key] = _write_set(row_dir, ev, lambda tmp, ev=ev: evaluate(
            model, ev.data, ev.format, ev.split, out=tmp, limit=limit, grid=16, prior="train"))
    return out


def _recorded_row(paper: Paper, row_dir: Path, row: dict[str, Any], limit: int | None,
                  same: Sequence[str]) -> dict[str, Any] | None:
    """The row as last written in ``row_dir`` (``row.json`` and each evaluation set's
    ``metrics.json``) when its run folders are not here (a fresh clone: ``runs/`` is not in the
    repository), if it was made the same way (the ``same`` fields and ``limit``); else None."""
    recorded = read_json(row_dir / "row.json", _not_reused)
    if (recorded is None or recorded.get("status") not in ("complete", "partial")
            or any(recorded.get(k) != row[k] for k in same) or (recorded.get("eval_key") or {}).get("limit") != limit):
        return None
    metrics = {ev.key: _read_metrics(row_dir / ev.key) for ev in paper.evals}
    if any(m is None for m in metrics.values()):
        return None
    return {**recorded, "label": row["label"], "published": row["published"], "recorded": True, "metrics": metrics}


def _recorded_overrides(row_dir: Path, config: str, recipe: str) -> list[str]:
    """The overrides the row recorded in ``row_dir`` was trained with (a run given a shorter budget,
    say), if that row is of the same config and recipe; else none. An unreadable ``row.json`` is
    warned about where the row itself is read."""
    recorded = read_json(row_dir / "row.json") or {}
    overrides = recorded.get("overrides")
    same = recorded.get("config") == config and recorded.get("recipe") == recipe and isinstance(overrides, list)
    return [str(o) for o in overrides] if same else []


#: the fields a run's recorded row must share with the catalogue's (and the command's) to be reused
RUN_SAME = ("config", "recipe", "overrides")


def _run_head(run: PaperRun, recipe: str, overrides: Sequence[str]) -> dict[str, Any]:
    """A run row's fields from the catalogue and the command (what it is, before any figure)."""
    return {"key": run.key, "label": run.label, "kind": "run", "config": run.config, "recipe": recipe,
            "published": run.published, "overrides": list(overrides)}


def _run_row(paper: Paper, key: str, state: RunState | None, recipe: str, row_dir: Path, limit: int | None,
             overrides: Sequence[str], say: Say) -> dict[str, Any]:
    row = _run_head(paper.run(key), recipe, overrides)
    if state is None or not state.has_model:
        recorded = _recorded_row(paper, row_dir, row, limit, RUN_SAME)
        return recorded or {**row, "status": "not trained"}
    model = state.folder / "model.safetensors"
    row_dir.mkdir(parents=True, exist_ok=True)
    eval_key = {"sha256": sha256_file(model), "limit": limit}
    metrics = _evaluate_row(str(state.folder), row_dir, paper, eval_key, limit, say)
    views, sets = member_needs(paper, key)
    if views and not outputs_usable(read_outputs(row_dir, log.warning), eval_key["sha256"], limit, views, sets):
        write_outputs(compute_outputs(str(state.folder), eval_key["sha256"], views, sets, limit, say), row_dir)
    for name in ("curves.png", "metrics.csv"):
        _copy(state.folder / name, row_dir / name)
    row.update(status="complete" if state.complete else "partial", run=state.to_dict(), eval_key=eval_key)
    atomic_write_text(row_dir / "row.json", json.dumps(row, indent=2) + "\n")
    return {**row, "metrics": metrics}


def _shipped_row(paper: Paper, shipped: PaperModel, row_dir: Path, limit: int | None, say: Say) -> dict[str, Any]:
    """A model shipped with ferkit, evaluated like a run (reused while its weights are unchanged)."""
    from ferkit.models import resolve

    weights = resolve(shipped.model)
    train = dict(weights.fields.get("train") or {})
    row = {"key": shipped.key, "label": shipped.label, "kind": "shipped", "model": shipped.model, "published": {},
           "trained": {k: train.get(k) for k in ("data", "train_split", "val_split", "config")}}
    row_dir.mkdir(parents=True, exist_ok=True)
    eval_key = {"sha256": weights.sha256, "limit": limit}
    metrics = _evaluate_row(shipped.model, row_dir, paper, eval_key, limit, say)
    row.update(status="complete", eval_key=eval_key)
    atomic_write_text(row_dir / "row.json", json.dumps(row, indent=2) + "\n")
    return {**row, "metrics": metrics}


#: the fields an ensemble's recorded row must share with the catalogue's to be reused
ENSEMBLE_SAME = ("members", "method", "fit", "fit_split")


def _ensemble_head(ens: PaperEnsemble) -> dict[str, Any]:
    """An ensemble row's fields from the catalogue (what it is, before any figure)."""
    return {"key": ens.key, "label": ens.label, "kind": "ensemble", "method": ens.method, "members": list(ens.members),
            "fit": ens.fit, "fit_split": ens.fit_split, "published": ens.published}


def _recorded_ensemble(paper: Paper, ens: PaperEnsemble, row_dir: Path, limit: int | None,
                       run_rows: dict[str, dict[str, Any]], *, warn: bool = True) -> dict[str, Any] | None:
    """The ensemble's row recorded in ``row_dir`` (:func:`_recorded_row`), if it was measured with the
    weights its members have now: those their rows (``run_rows``, by run key) record, a shipped
    member's own; else None."""
    from ferkit.models import resolve

    recorded = _recorded_row(paper, row_dir, _ensemble_head(ens), limit, ENSEMBLE_SAME)
    if recorded is None:
        return None
    weights = [(run_rows.get(m, {}).get("eval_key") or {}).get("sha256") if m in paper.run_keys else resolve(m).sha256
               for m in ens.members]
    if recorded["eval_key"].get("sha256") != weights:
        if warn:
            log.warning("%s: measured with other weights than its members' rows record now; not reused",
                        row_dir / "row.json")
        return None
    return recorded


def _runs_needing_folders(paper: Paper, reports_dir: Path) -> set[str]:
    """The runs of ``paper`` among the members of an ensemble that has no complete row recorded with its
    members' weights, whose rows have not recorded their outputs (``outputs.npz``) with those weights:
    recording them needs the run's folder."""
    rows = {k: read_json(reports_dir / paper.key / k / "row.json") or {} for k in paper.run_keys}
    return {m for ens in paper.ensembles
            if (_recorded_ensemble(paper, ens, reports_dir / paper.key / ens.key, None, rows, warn=False)
                or {}).get("status") != "complete"
            for m in ens.members if m in rows and not _outputs_of(paper, m, rows[m], reports_dir / paper.key, None)}


def _outputs_of(paper: Paper, member: str, row: dict[str, Any], paper_dir: Path, limit: int | None,
                ) -> MemberOutputs | None:
    """The outputs run ``member``'s row (``row``) recorded with its weights now, if they cover what its
    paper's ensembles need; else None."""
    views, sets = member_needs(paper, member)
    out = read_outputs(paper_dir / member, log.warning)
    sha = (row.get("eval_key") or {}).get("sha256")
    return out if outputs_usable(out, sha, limit, views, sets) else None


def _ensemble_row(paper: Paper, ens: PaperEnsemble, run_rows: dict[str, dict[str, Any]], row_dir: Path,
                  limit: int | None, say: Say, shipped: dict[str, MemberOutputs]) -> dict[str, Any]:
    """An ensemble of the paper's runs (their rows ``run_rows``, by key) and of shipped models (members
    not among the runs), combined from the outputs each run's row recorded (:mod:`ferkit.papers._outputs`)
    and a shipped member's computed here once per table (kept in ``shipped``, by name). Until every run
    member has recorded them with the weights its row has now, the row recorded in ``row_dir`` is kept if
    it was measured with those weights."""
    from ferkit.models import resolve

    row = _ensemble_head(ens)
    runs = [m for m in ens.members if m in paper.run_keys]
    untrained = [m for m in runs if run_rows[m].get("status") not in ("complete", "partial")]
    outputs = {m: _outputs_of(paper, m, run_rows[m], row_dir.parent, limit) for m in runs if m not in untrained}
    lacking = [m for m, out in outputs.items() if out is None]
    if untrained or lacking:
        recorded = _recorded_ensemble(paper, ens, row_dir, limit, run_rows)
        status = (f"members not trained: {', '.join(untrained)}" if untrained
                  else f"outputs not recorded, run folders not on this machine: {', '.join(lacking)}")
        return recorded or {**row, "status": status}
    shas = [run_rows[m]["eval_key"]["sha256"] if m in runs else resolve(m).sha256 for m in ens.members]
    eval_key = {"sha256": shas, "limit": limit, "method": ens.method, "fit": ens.fit, "fit_split": ens.fit_split}
    status = "partial" if any(run_rows[m]["status"] == "partial" for m in runs) else "complete"
    done = read_json(row_dir / "row.json", _not_reused) or {}
    if done.get("eval_key") == eval_key and "weights" in done:    # the same members: nothing to fit or measure
        metrics = {ev.key: _read_metrics(row_dir / ev.key) for ev in paper.evals}
        if all(m is not None for m in metrics.values()):
            row.update(status=status, eval_key=eval_key, weights=done["weights"])
            if done.get("status") != status:
                atomic_write_text(row_dir / "row.json", json.dumps(row, indent=2) + "\n")
            return {**row, "metrics": metrics}
    for m, sha in zip(ens.members, shas):
        if m not in runs and m not in shipped:
            shipped[m] = compute_outputs(m, sha, *member_needs(paper, m), limit, say)
    members = [outputs[m] if m in runs else shipped[m] for m in ens.members]
    row_dir.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, dict[str, Any]] = {}

    def measure(ev: EvalSet, evaluation: Any) -> None:
        from ferkit.evaluate import write_eval_folder

        def write(tmp: Path) -> dict[str, Any]:
            write_eval_folder(evaluation, tmp, grid=16)
            return evaluation.metrics

        say(f"ferkit: measuring {row_dir.name} on {ev.title}")
        metrics[ev.key] = _write_set(row_dir, ev, write)

    weights = combine_outputs(paper, ens, members, limit, measure)
    row.update(status=status, eval_key=eval_key, weights=weights)
    atomic_write_text(row_dir / "row.json", json.dumps(row, indent=2) + "\n")
    return {**row, "metrics": metrics}


def paper_report(
    paper: str, *, runs_dir: str | os.PathLike[str] = "runs/papers",
    reports_dir: str | os.PathLike[str] = "reports/papers", train: bool = True, recipe: str = "auto",
    only: Sequence[str] | None = None, pretrained: dict[str, str] | None = None, overrides: Sequence[str] = (),
    limit: int | None = None, say: Say = log.info,
) -> Path:
    """Train (or reuse, or resume) the runs of ``paper``, evaluate every row and write its table.

    ``only``: train just these run keys (the others are reused if present); ``train=False`` trains
    nothing and tables what exists. ``recipe``: ``auto`` (ImageNet weights when cached or given in
    ``pretrained`` {run key: file}, else from scratch at 48 px), ``scratch48`` or ``imagenet``.
    ``overrides`` (config ``key=value``: quick checks, or a shorter budget) go to the runs named in
    ``only``, or to every run when ``only`` is not given; a run they do not go to keeps the overrides
    its recorded row was trained with, so ``table`` rebuilds such a row without naming them again.
    ``limit`` (a stratified subset of each evaluation set) is for quick checks. The table says when
    either was used. Returns the table's path.
    """
    from ferkit.evaluate.benchmark import machine_info

    p = get_paper(paper)
    pretrained = pretrained or {}
    out = Path(reports_dir)
    rows = []
    for run, rec, ov, cfg, chosen in _run_configs(p, out, runs_dir, recipe, only, pretrained, overrides):
        wanted = train and chosen
        if wanted:
            say(f"ferkit: {paper} {run.key}: {rec} recipe, config {run.config}"
                + (f", overrides {' '.join(ov)}" if ov else ""))
        state = train_run(cfg, runs_dir, train=wanted)
        rows.append(_run_row(p, run.key, state, rec, out / paper / run.key, limit, ov, say))
    for shipped in p.shipped:
        rows.append(_shipped_row(p, shipped, out / paper / shipped.key, limit, say))
    shipped_outputs: dict[str, MemberOutputs] = {}
    for ens in p.ensembles:
        rows.append(_ensemble_row(p, ens, {r["key"]: r for r in rows}, out / paper / ens.key, limit, say,
                                  shipped_outputs))
    command = ["ferkit", "papers", "run", paper]
    if recipe != "auto":
        command += ["--recipe", recipe]
    command += [f"--pretrained {k}={v}" for k, v in pretrained.items()]
    command += [f"--set {o}" for o in (() if only else overrides)] + ([f"--limit {limit}"] if limit else [])
    doc = {"schema": SCHEMA, "paper": paper, "title": p.title, "claim": p.claim, "here": p.here,
           "published_on": p.published_on, "evals": [vars(e) for e in p.evals], "rows": rows,
           "evaluated_on": machine_info()["machine"], "command": " ".join(command)}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / f"{paper}.json", json.dumps(doc, indent=2, default=str) + "\n")
    target = atomic_write_text(out / f"{paper}.md", paper_markdown(doc))
    atomic_write_text(out / "README.md", "# The papers' tables, reproduced by ferkit\n\n"
                      + _docblock.wrap(papers_index(out), BLOCK))
    return target


def _run_configs(p: Paper, reports: Path, runs_dir: str | os.PathLike[str], recipe: str, only: Sequence[str] | None,
                 pretrained: dict[str, str], overrides: Sequence[str],
                 ) -> list[tuple[PaperRun, str, list[str], TrainConfig, bool]]:
    """Each run of ``p``: its recipe, its overrides, its TrainConfig and whether ``only`` names it.
    ``overrides`` go to the runs named in ``only`` (every run without it); the others keep the
    overrides their recorded rows were trained with."""
    for key in (*(only or ()), *pretrained):
        p.run(key)      # ConfigError naming the paper's runs
    out = []
    for run in p.runs:
        rec = choose_recipe(run, recipe, pretrained.get(run.key))
        chosen = not only or run.key in only
        ov = (list(overrides) if chosen and (only or overrides)
              else _recorded_overrides(reports / p.key / run.key, run.config, rec))
        cfg = recipe_config(p, run, rec, runs_dir, pretrained=pretrained.get(run.key), overrides=ov)
        out.append((run, rec, ov, cfg, chosen))
    return out


def paper_configs(
    paper: str, *, runs_dir: str | os.PathLike[str] = "runs/papers",
    reports_dir: str | os.PathLike[str] = "reports/papers", recipe: str = "auto", only: Sequence[str] | None = None,
    pretrained: dict[str, str] | None = None, overrides: Sequence[str] = (), missing: bool = False,
) -> list[TrainConfig]:
    """The configs that :func:`paper_report` trains for these arguments (every run of ``paper``, or those in
    ``only``): what ``ferkit papers config`` writes, for training a paper's runs elsewhere (a lent GPU)
    with ``ferkit train``; a run folder trained from one is found and reused here like one of its own.
    ``missing``: only the runs the table lacks, neither complete in ``runs_dir`` nor recorded complete
    in ``reports_dir`` with the same config (a recorded run counts as missing while an ensemble of it
    is not recorded complete: building that needs the run's folder)."""
    p = get_paper(paper)
    need_folders = _runs_needing_folders(p, Path(reports_dir)) if missing else set()
    out = []
    for run, rec, ov, cfg, chosen in _run_configs(p, Path(reports_dir), runs_dir, recipe, only, pretrained or {},
                                                  overrides):
        if not chosen:
            continue
        if missing:
            folder = find_run(runs_dir, cfg)
            if folder is not None and run_state(folder, cfg).complete:
                continue
            recorded = _recorded_row(p, Path(reports_dir) / p.key / run.key, _run_head(run, rec, ov), None, RUN_SAME)
            if recorded is not None and recorded["status"] == "complete" and run.key not in need_folders:
                continue
        out.append(cfg)
    return out


def papers_index(reports_dir: str | os.PathLike[str], link_to: str = "") -> str:
    """The summary of every paper, each row's first figure beside the published one, read from the
    ``<paper>.json`` files present (a paper without one says how to make it). ``link_to``: the
    reports folder as seen from the document the table goes into (``reports/papers/`` from the
    repository's README). ``reports/papers/README.md`` holds it; ``--update-docs`` puts it in README.md."""
    from ferkit.papers._catalog import PAPERS

    lines = ["| paper | model | measured on | ours: accuracy % | ours: mean AUC | training | published accuracy % "
             f"| why ours differs (by more than {GAP_POINTS:g} points) |",
             "|---|---|---|---:|---:|---|---|---|"]
    for key, paper in PAPERS.items():
        path = Path(reports_dir) / f"{key}.json"
        if not path.is_file():
            lines.append(f"| [{key}]({link_to}{key}.md) | {paper.title} | — | — | — "
                         f"| no table yet: `ferkit papers run {key}` | — | |")
            continue
        doc = read_json(path)
        if doc is None or doc.get("schema") != SCHEMA:
            raise ConfigError(f"{path}: not a {SCHEMA} table (`ferkit papers table {key}` writes it again)")
        ev = doc["evals"][0]
        for row in doc["rows"]:
            m = (row.get("metrics") or {}).get(ev["key"])
            how, _ = _training(row)
            pub = _published(row, "accuracy", ".2f")
            acc = "—" if m is None else _pct(m["accuracy"])
            auc = "—" if m is None or m["mean_auc"] is None else f"{m['mean_auc']:.3f}"
            status = "" if row["status"] == "complete" else f" ({row['status']})"
            lines.append(f"| [{key}]({link_to}{key}.md) | {row['label']} | {ev['title']} | {acc} | {auc} "
                         f"| {how}{status} | {pub}{'' if pub == '—' else ' (' + doc['published_on'] + ')'} "
                         f"| {_why(key, row, m)} |")
    return "\n".join(lines) + (f"\n\nEach figure is read from the row's `metrics.json` in `{link_to}<paper>/<row>/`; "
                               "the rows' plots (training curves, confusion matrices, ROC curves) are drawn from "
                               "those files by `ferkit papers figures`.\n")


def _why(paper: str, row: dict[str, Any], m: dict[str, Any] | None) -> str:
    """The row's one-line reason (from the catalog, so that tables written before it say it too) when its
    accuracy, as the table shows it, is more than GAP_POINTS from the published figure."""
    pub = (row.get("published") or {}).get("accuracy")
    if m is None or pub is None or abs(round(100 * m["accuracy"], 2) - pub) <= GAP_POINTS:
        return ""
    return get_paper(paper).differs_for(row["key"])


def _train_time(run: dict[str, Any]) -> str:
    """How long the run trained (its epochs at their median time), in which precision and on which machine;
    a run recorded before ferkit wrote down the precision and the CPU's flags says so."""
    spe = run.get("s_per_epoch")
    total = None if spe is None else spe * run["epochs_done"]
    took = ("trained" if total is None else f"trained {total / 60:.0f} min" if total >= 60
            else f"trained {total:.0f} s")
    machine = run.get("machine") or "an unrecorded machine"
    if run.get("precision"):
        return f"{took} in {run['precision']} on {machine}"
    return f"{took} on {machine} (precision and CPU flags not recorded then)"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}"


def _published(row: dict[str, Any], key: str, fmt: str) -> str:
    v = (row.get("published") or {}).get(key)
    return "—" if v is None else format(v, fmt)


def _training(row: dict[str, Any]) -> tuple[str, str]:
    run = row.get("run")
    if row["kind"] == "ensemble":
        weights = row.get("weights")
        how = f"{row['method']}" + (f", weights {', '.join(f'{w:.2f}' for w in weights)}" if weights else "")
        if weights and row.get("fit") not in (None, "equal"):
            how += f" (fitted for {row['fit']} on {row['fit_split']})"
        return how, "—"
    if row["kind"] == "shipped":
        return f"shipped with ferkit (`{row['model']}`)", "—"
    if not run:
        return row["recipe"], "—"
    epochs = f"{run['epochs_done']}" + ("" if row["status"] == "complete" else f" of {run['epochs_planned']}")
    return (f"{row['recipe']}, {epochs} epoch{'s' * (run['epochs_planned'] != 1)}",
            "—" if run["s_per_epoch"] is None else f"{run['s_per_epoch']:.0f}")


def _run_command(paper: str, row: dict[str, Any]) -> str:
    """The command that trains (or resumes) a run row as it was recorded: with its overrides."""
    sets = (f"--set {o}" for o in row.get("overrides") or ())
    return " ".join(["ferkit papers run", paper, "--runs", row["key"], *sets])


def paper_markdown(doc: dict[str, Any]) -> str:
    """The table of a ``ferkit-paper/1`` document (``reports/papers/<paper>.json``)."""
    lines = [f"# {doc['paper']}: {doc['title']}", "", f"**The paper:** {doc['claim']}", "",
             f"**Here:** {doc['here']}", ""]
    rows = doc["rows"]
    for ev in doc["evals"]:
        lines += [f"## {ev['title']} (`{ev['data']}`, {ev['format']}, split {ev['split']})", "",
                  (f"| model | training | s/epoch | accuracy % | weighted precision % | weighted recall % "
                   f"| weighted F1 % | macro-F1 % | mean AUC | published accuracy % ({doc['published_on']}) "
                   f"| published mean AUC | why ours differs (by more than {GAP_POINTS:g} points) |"),
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for row in rows:
            how, spe = _training(row)
            m = (row.get("metrics") or {}).get(ev["key"])
            if row["status"] != "complete":
                how = f"{how} ({row['status']})"
            if m is None:
                figures = ["—"] * 6
            else:
                auc = "—" if m["mean_auc"] is None else f"{m['mean_auc']:.3f}"
                figures = [f"[{_pct(m['accuracy'])}]({doc['paper']}/{row['key']}/{ev['key']}/report.md)",
                           _pct(m["weighted_precision"]), _pct(m["weighted_recall"]), _pct(m["weighted_f1"]),
                           _pct(m["macro_f1"]), auc]
            lines.append(f"| {row['label']} | {how} | {spe} | " + " | ".join(figures)
                         + f" | {_published(row, 'accuracy', '.2f')} | {_published(row, 'mean_auc', '.3f')} "
                           f"| {_why(doc['paper'], row, m)} |")
        measured = [r for r in rows if (r.get("metrics") or {}).get(ev["key"])]
        if measured:
            classes = measured[0]["metrics"][ev["key"]]["classes"]
            lines += ["", "Per class, precision / recall / F1 (%):", "",
                      "| model | " + " | ".join(classes) + " |", "|---|" + "---:|" * len(classes)]
            for r in measured:
                pc = r["metrics"][ev["key"]]["per_class"]
                lines.append(f"| {r['label']} | " + " | ".join(
                    f"{100 * pc[c]['precision']:.1f} / {100 * pc[c]['recall']:.1f} / {100 * pc[c]['f1']:.1f}"
                    for c in classes) + " |")
        lines.append("")
    notes = []
    for row in rows:
        if row["kind"] == "run" and row.get("run"):
            run = row["run"]
            where = f"{doc['paper']}/{row['key']}"
            notes.append(f"- {row['label']}: config `{row['config']}`, recipe {row['recipe']}, run `{run['folder']}`, "
                         f"best epoch {None if run['best_epoch'] is None else run['best_epoch'] + 1} by validation "
                         f"accuracy, {_train_time(run)}"
                         + (f"; overrides {' '.join(row['overrides'])}" if row.get("overrides") else "")
                         + ("; figures as recorded in the row's folder (the run folder is not on this machine)"
                            if row.get("recorded") else "")
                         + ("" if row["status"] == "complete" else
                            f"; stopped after {run['epochs_done']} of {run['epochs_planned']} epochs "
                            f"(`{_run_command(doc['paper'], row)}` resumes it)")
                         + f" ([training curves]({where}/curves.png), [confusion matrix]"
                           f"({where}/{doc['evals'][0]['key']}/confusion_matrix.png))")
        elif row["kind"] == "shipped":
            t = row["trained"]
            notes.append(f"- {row['label']}: the model `{row['model']}` shipped with ferkit (config `{t['config']}`), "
                         f"trained on {t['train_split']} of `{t['data']}`, epoch chosen on {t['val_split']}")
        elif row["kind"] == "ensemble" and row.get("metrics"):
            stats = (row["metrics"].get(doc["evals"][0]["key"]) or {}).get("region_landmarks")
            notes.append(f"- {row['label']}: {row['method']} over {', '.join(row['members'])}"
                         + (f"; dlib found the face on the upscaled crop for {stats['faces'] - stats['fallback']} of "
                            f"{stats['faces']} faces of the {doc['evals'][0]['title']}, the rest used the whole crop"
                            if stats else ""))
        elif row["status"] != "complete" and row["kind"] == "run":
            notes.append(f"- {row['label']}: not trained yet (`{_run_command(doc['paper'], row)}`)")
    limit = next((r["eval_key"]["limit"] for r in rows if r.get("eval_key")), None)
    lines += [("Recipes: scratch48 = the paper's config at 48 px grey, every layer trained from scratch (no ImageNet "
               "weights here); imagenet = the paper's config exactly, from ImageNet weights. Each accuracy links to "
               "its report (confusion matrix, ROC curves, per-class figures); training curves are in each row's "
               "folder."),
              "", *notes, "",
              f"Evaluated on {doc['evaluated_on']}"
              + (f"; stratified subsets of {limit} images (--limit)" if limit else "") + ".",
              f"Command: `{doc['command']}`", ""]
    return "\n".join(lines)


def paper_figures(paper: str | None = None, *, reports_dir: str | os.PathLike[str] = "reports/papers",
                  say: Say | None = None) -> list[Path]:
    """Every figure of the recorded rows of ``paper`` (all papers when None), drawn again from the tracked
    files alone: training curves from each row's ``metrics.csv``, and the confusion matrix, ROC curves,
    reliability diagram and prediction grid of each evaluation from its ``metrics.json`` (the grid where
    the data set is at hand). The figures are not in the repository; this is what makes them."""
    from ferkit.evaluate import draw_figures
    from ferkit.train import read_epoch_metrics
    from ferkit.viz import plot_training_curves

    root = Path(reports_dir)
    folders = [root / get_paper(paper).key] if paper else sorted(p for p in root.glob("*") if p.is_dir())
    missing = [f for f in folders if not f.is_dir()]
    if missing or not folders:
        raise ConfigError(f"{missing[0] if missing else root}: no recorded rows here (`ferkit papers run` writes them)")
    out: list[Path] = []
    for folder in folders:
        def recorded(name: str) -> list[Path]:      # not in a killed evaluation's temporary folder
            return [f for f in sorted(folder.rglob(name)) if not any(part.startswith(".") for part in
                                                                      f.relative_to(folder).parts)]

        for csv_path in recorded("metrics.csv"):
            rows = read_epoch_metrics(csv_path)
            if rows:
                out.append(plot_training_curves(rows, csv_path.with_name("curves.png"), title=csv_path.parent.name))
        for metrics in recorded("metrics.json"):
            out += draw_figures(metrics.parent)
        if say:
            say(f"ferkit: drew the figures of {folder}")
    return out
