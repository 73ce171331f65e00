"""The four FER papers' experiments, reproduced by ferkit: one command per table.

>>> from ferkit.papers import PAPERS, paper_report
>>> paper_report("paper4")        # trains (or reuses, or resumes) ResNet18/34/50, writes reports/papers/paper4.md

Each paper (:data:`PAPERS`) names its runs (a shipped ``configs/paper*.yaml`` and a recipe:
``imagenet``, the config exactly from ImageNet weights, or ``scratch48``, from scratch at 48 px
grey where no ImageNet weights are at hand), its ensembles (ferkit.ensemble's methods over those
runs), the data its table is measured on and the figures the paper published. Runs live in
``runs/papers/`` (reused while their config is the recipe's, resumed when interrupted); each row's
metrics, curves and reports in ``reports/papers/<paper>/<row>/``, the table in
``reports/papers/<paper>.md``.
"""
from __future__ import annotations

from ferkit.papers._catalog import (
    GAP_POINTS,
    PAPERS,
    RECIPES,
    SCRATCH_EPOCHS,
    EvalSet,
    Paper,
    PaperEnsemble,
    PaperModel,
    PaperRun,
    get_paper,
)
from ferkit.papers._runs import RunState, choose_recipe, find_run, recipe_config, run_state, train_run
from ferkit.papers._tables import (
    BLOCK,
    SCHEMA,
    paper_configs,
    paper_figures,
    paper_markdown,
    paper_report,
    papers_index,
)

__all__ = [
    "BLOCK", "GAP_POINTS", "PAPERS", "RECIPES", "SCHEMA", "SCRATCH_EPOCHS", "EvalSet", "Paper", "PaperEnsemble",
    "PaperModel", "PaperRun", "RunState",
    "choose_recipe", "find_run", "get_paper", "paper_configs", "paper_figures", "paper_markdown", "paper_report",
    "papers_index", "recipe_config", "run_state", "train_run",
]
