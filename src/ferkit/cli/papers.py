"""`ferkit papers list` | `ferkit papers run PAPER [--runs KEY ...] [--recipe ...]` | `ferkit papers table PAPER`
| `ferkit papers figures [PAPER]` | `ferkit papers config [PAPER] [--runs KEY ...] [--out DIR]`"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ferkit.errors import FerkitError


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _pretrained(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or ():
        key, sep, path = item.partition("=")
        if not sep or not key or not path:
            raise FerkitError(f"--pretrained {item!r}: expected RUN=FILE, e.g. resnet18=~/weights/resnet18.pth")
        out[key] = path
    return out


#: the options each action uses (any other given is refused, not silently ignored)
_USES = {"list": (), "figures": ("reports_dir",),
         "run": ("runs", "recipe", "pretrained", "runs_dir", "reports_dir", "set", "limit", "update_docs"),
         "config": ("runs", "recipe", "pretrained", "runs_dir", "reports_dir", "set", "out", "missing")}
_USES["table"] = _USES["run"]
#: the options' defaults (None where not named)
_DEFAULTS = {"recipe": "auto", "runs_dir": "runs/papers", "reports_dir": "reports/papers", "missing": False}


def _after_parse(parser: argparse.ArgumentParser, a: argparse.Namespace, extra: list[str]) -> None:
    _paper_last(parser, a, extra)
    options = dict.fromkeys(dest for uses in _USES.values() for dest in uses)     # every option, once
    unused = [f"--{dest.replace('_', '-')}" for dest in options
              if dest not in _USES[a.action] and getattr(a, dest) != _DEFAULTS.get(dest)]
    if a.action == "list" and a.paper is not None:
        unused.insert(0, a.paper)
    if unused:
        parser.error(f"papers {a.action} does not take {', '.join(unused)}")


def _paper_last(parser: argparse.ArgumentParser, a: argparse.Namespace, extra: list[str]) -> None:
    """The paper named after the options (``papers config --missing paper1``, ``papers run --runs resnet18
    paper4``): argparse matches the optional positional as empty right after the action, then leaves the
    later word over, or gives it to a list option before it (run keys and files are never paper names)."""
    if a.paper is not None:
        return
    if len(extra) == 1 and not extra[0].startswith("-"):
        a.paper = extra.pop()
        return
    from ferkit.papers import PAPERS

    for option in ("runs", "update_docs"):
        values = getattr(a, option)
        if values and values[-1] in PAPERS:
            a.paper = values.pop()
            if option == "runs" and not values:
                parser.error(f"papers {a.action}: --runs needs a run key before the paper ({a.paper})")
            return


def run(a: argparse.Namespace) -> int:
    from ferkit.papers import PAPERS, paper_report

    if a.action == "list":
        for p in PAPERS.values():
            runs = ", ".join(r.key for r in p.runs)
            ens = ", ".join(e.key for e in p.ensembles)
            print(f"{p.key}: {p.title}\n  runs: {runs}" + (f"\n  ensembles: {ens}" if ens else ""))
        return 0
    if a.action == "figures":
        from ferkit.papers import paper_figures

        drawn = paper_figures(a.paper, reports_dir=a.reports_dir, say=_say)
        _say(f"ferkit: {len(drawn)} figures drawn under {a.reports_dir}")
        return 0
    if a.action == "config":
        return _configs(a)
    if not a.paper:
        raise FerkitError(f"papers {a.action}: name a paper ({', '.join(PAPERS)})")
    from ferkit import _docblock
    from ferkit.papers import BLOCK, papers_index

    docs = None if a.update_docs is None else (a.update_docs or ["README.md"])
    if docs:
        _docblock.check_markers(docs, BLOCK)     # before the training, not after
    path = paper_report(a.paper, runs_dir=a.runs_dir, reports_dir=a.reports_dir, train=a.action == "run",
                        recipe=a.recipe, only=a.runs, pretrained=_pretrained(a.pretrained), overrides=a.set or (),
                        limit=a.limit, say=_say)
    print(path.read_text(encoding="utf-8"), end="")
    _say(f"ferkit: wrote {path} and {path.with_name('README.md')}")
    for doc in docs or ():
        link = os.path.relpath(path.parent.resolve(), Path(doc).resolve().parent).replace(os.sep, "/") + "/"
        if _docblock.put_block(doc, papers_index(path.parent, link), BLOCK):
            _say(f"ferkit: updated {doc}")
    return 0


def _configs(a: argparse.Namespace) -> int:
    """Each run's training config (every paper's without PAPER): YAML documents on stdout, or one file
    per run, ``DIR/<run name>.yaml``, with --out (its paths on stdout), for ``ferkit train`` elsewhere."""
    from ferkit._fileio import atomic_write_text
    from ferkit.papers import PAPERS, paper_configs

    for given, name in ((a.runs, "--runs"), (a.pretrained, "--pretrained")):
        if given and not a.paper:
            raise FerkitError(f"papers config: {name} needs a paper")
    configs = [cfg for paper in ([a.paper] if a.paper else list(PAPERS))
               for cfg in paper_configs(paper, runs_dir=a.runs_dir, reports_dir=a.reports_dir, recipe=a.recipe,
                                        only=a.runs, pretrained=_pretrained(a.pretrained), overrides=a.set or (),
                                        missing=a.missing)]
    if a.out is None:
        print("---\n".join(cfg.to_yaml() for cfg in configs), end="")
        return 0
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for cfg in configs:
        print(atomic_write_text(out / f"{cfg.name}.yaml", cfg.to_yaml()))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "papers", help="reproduce the four FER papers' tables (train or reuse their runs, evaluate, write the table)",
        description="run: train the paper's runs that are missing (resuming interrupted ones), evaluate every row and "
                    "write reports/papers/PAPER.md beside the published figures; table: the same without training; "
                    "list: the papers and their runs; config: each run's training config (YAML), to train it elsewhere "
                    "with `ferkit train` (a run folder so trained, moved into --runs-dir as <run name>-<anything>, "
                    "is reused like one trained here).",
        epilog="example: ferkit papers run paper4 --runs resnet18   (then: ferkit papers table paper4)")
    p.add_argument("action", choices=("list", "run", "table", "figures", "config"),
                   help="list the papers; run (train and table); table (from what is trained or recorded); figures "
                        "(draw every recorded row's figures from its tracked metrics files; all papers without PAPER); "
                        "config (the runs' training configs; all papers without PAPER)")
    p.add_argument("paper", nargs="?", help="paper1 | paper2 | paper3 | paper4")
    p.add_argument("--runs", nargs="+", metavar="KEY", help="train only these runs (the others are reused if present)")
    p.add_argument("--recipe", default=_DEFAULTS["recipe"],
                   help="auto (ImageNet weights when cached in TORCH_HOME or given, else scratch48) "
                        "| scratch48 | imagenet")
    p.add_argument("--pretrained", action="append", metavar="RUN=FILE",
                   help="a local ImageNet weights file for one run (repeatable); implies the imagenet recipe for it")
    p.add_argument("--runs-dir", default=_DEFAULTS["runs_dir"],
                   help="where runs are trained and found (default: runs/papers)")
    p.add_argument("--reports-dir", default=_DEFAULTS["reports_dir"],
                   help="where tables and row reports go (default: reports/papers)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="config override (quick checks, or a shorter budget) for the runs named in --runs, or every "
                        "run; a row reused later keeps the overrides it was trained with")
    p.add_argument("--out", metavar="DIR", help="config: write DIR/<run name>.yaml per run instead of stdout")
    p.add_argument("--missing", action="store_true",
                   help="config: only the runs the tables lack (not complete in --runs-dir nor recorded complete; "
                        "a recorded run counts while an ensemble of it is not recorded: that needs its folder)")
    p.add_argument("--limit", type=int, help="evaluate on a stratified subset of N images per set (quick checks)")
    p.add_argument("--update-docs", nargs="*", metavar="FILE",
                   help="copy the papers' summary table into these files' ferkit-papers block (default: README.md)")
    p.set_defaults(func=run, _after_parse=_after_parse)   # `ferkit papers config --missing paper1` too
