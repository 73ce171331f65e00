"""`ferkit ensemble build MODEL MODEL ... --method soft|vote|stack|regions [--fit accuracy|logloss|equal]
--data PATH --split SPLIT --out PATH` and `ferkit ensemble report MODEL MODEL ... --data PATH --out DIR`."""
from __future__ import annotations

import argparse
import json
import sys


def _parse_weights(text: str | None) -> list[float] | None:
    from ferkit.errors import ConfigError

    if not text:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--weights: expected comma-separated numbers, got {text!r}") from None


def run_build(a: argparse.Namespace) -> int:
    from pathlib import Path

    from ferkit.ensemble import build_ensemble, save_ensemble
    from ferkit.errors import FerkitError
    from ferkit.models import model_paths

    target = model_paths(a.out)[1]
    if target.exists() and not a.force:
        raise FerkitError(f"{target}: already exists; give another --out or --force to replace it")
    ens, meta = build_ensemble(a.models, a.method, fit=a.fit, weights=_parse_weights(a.weights), data=a.data,
                               format=a.format, split=a.split or "PublicTest", limit=a.limit, tta=a.tta,
                               name=a.name or Path(a.out.rstrip("/")).name, device=a.device)
    path = save_ensemble(ens, meta, a.out, link=a.models if a.link else None)
    fit = meta.get("fit") or {}
    if "accuracy_fitted" in fit:
        print(f"{meta['method']} ensemble of {len(meta['members'])} models; on {fit['split']} ({fit['n_images']} "
              f"images): accuracy {fit['accuracy_equal']:.4f} with equal weights, {fit['accuracy_fitted']:.4f} fitted"
              + (f"; weights {', '.join(f'{w:.3f}' for w in meta['weights'])}" if meta.get("weights") else ""))
    print(f"ferkit: wrote {path}", file=sys.stderr)
    return 0


def _report_command(a: argparse.Namespace) -> str:
    """The command line that reproduces this report (defaults left out)."""
    import shlex

    from ferkit.cli._common import changed_flags

    parts = ["ferkit", "ensemble", "report", *map(str, a.models), "--data", str(a.data)]
    parts += changed_flags((("--format", a.format, "auto"), ("--fit-split", a.fit_split, "PublicTest"),
                            ("--splits", a.splits, "PublicTest,PrivateTest"), ("--limit", a.limit, None)))
    parts += (["--no-regions"] if a.no_regions else []) + ["--out", str(a.out)]
    if a.update_docs is not None:
        parts += ["--update-docs", *a.update_docs]
    return shlex.join(parts)


def run_report(a: argparse.Namespace) -> int:
    from ferkit import _docblock
    from ferkit.ensemble.report import (
        BLOCK,
        ensemble_report,
        report_markdown,
        write_report,
    )

    docs = None if a.update_docs is None else (a.update_docs or ["README.md"])
    if docs:
        _docblock.check_markers(docs, BLOCK)     # before minutes of work, not after
    report = ensemble_report(a.models, a.data, a.format, fit_split=a.fit_split,
                             eval_splits=[s for s in a.splits.split(",") if s], limit=a.limit,
                             regions=not a.no_regions, device=a.device if a.device != "auto" else "cpu",
                             progress=lambda msg: print(f"ferkit: {msg}", file=sys.stderr))
    report["context"]["command"] = _report_command(a)
    out = write_report(report, a.out)
    print(json.dumps(report, indent=2) if a.json else report_markdown(report), end="")
    print(f"ferkit: wrote {out}/report.md", file=sys.stderr)
    if docs:
        changed = _docblock.copy_block(out / "report.md", docs, BLOCK)
        print(f"ferkit: copied the table into {', '.join(docs)} ({len(changed)} changed)", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    e = sub.add_parser("ensemble", help="combine trained models into an ensemble; measure ensembles",
                       description="Build an ensemble artifact (usable wherever a model is) or measure every way of "
                                   "combining models in one table.")
    esub = e.add_subparsers(dest="ensemble_command", metavar="ACTION", required=True)

    b = esub.add_parser("build", help="combine models into an ensemble saved at --out",
                        epilog="example: ferkit ensemble build vgg_fer.w15_fer2013 vgg_fer.w2_votes --method soft "
                               "--fit accuracy --data ../shared/data/fer2013 --format fer2013-folder "
                               "--split PublicTest --out runs/ens/")
    b.add_argument("models", nargs="+", help="shipped model names, run folders or model files (2 or more)")
    b.add_argument("--method", default="soft", help="soft | vote | stack | regions (default: soft)")
    b.add_argument("--fit", help="weights fitted on --split: accuracy | logloss | equal (default: accuracy for soft; "
                                 "regions without --fit or --weights is the papers' majority vote)")
    b.add_argument("--weights", help="give the soft or regions weights instead of fitting them, e.g. 0.6,0.4")
    b.add_argument("--data", help="validation data for fitting weights or stacking")
    b.add_argument("--format", default="auto", help="fer2013-csv | fer2013-folder | ferplus | folder (default: auto)")
    b.add_argument("--split", help="validation split (default: PublicTest)")
    b.add_argument("--tta", default="none", help="TTA of the members while fitting (default: none)")
    b.add_argument("--limit", type=int, help="fit on a stratified subset of N images")
    b.add_argument("--name", help="ensemble name (default: the --out folder's name)")
    b.add_argument("--out", required=True, help="folder (trailing /) or stem to write the ensemble to")
    b.add_argument("--link", action="store_true",
                   help="refer to the members' files by relative path instead of copying them next to the ensemble")
    b.add_argument("--force", action="store_true", help="replace an existing ensemble at --out")
    b.add_argument("--device", default="cpu")
    b.set_defaults(func=run_build)

    r = esub.add_parser("report", help="table of members, TTA and every ensemble method on the same data",
                        epilog="example: ferkit ensemble report vgg_fer.w15_fer2013 vgg_fer.w2_votes "
                               "--data ../shared/data/fer2013 --format fer2013-folder --out reports/ensembles")
    r.add_argument("models", nargs="+", help="shipped model names, run folders or model files (2 or more)")
    r.add_argument("--data", required=True, help="dataset path")
    r.add_argument("--format", default="auto", help="dataset format (default: auto)")
    r.add_argument("--fit-split", default="PublicTest", help="split the weights and stacking are fitted on")
    r.add_argument("--splits", default="PublicTest,PrivateTest", help="comma-separated evaluation splits")
    r.add_argument("--limit", type=int, help="stratified subset of N images per split")
    r.add_argument("--no-regions", action="store_true", help="leave out region voting (dlib landmarks per face)")
    r.add_argument("--out", required=True, help="folder for report.md and report.json")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    r.add_argument("--update-docs", nargs="*", metavar="FILE",
                   help="copy the table between the ferkit-ensemble-report markers of these files "
                        "(default when given alone: README.md)")
    r.add_argument("--device", default="cpu")
    r.set_defaults(func=run_report)
