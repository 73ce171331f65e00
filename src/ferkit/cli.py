"""The `ferkit` command: a thin layer over the Python API.

Machine-readable output goes to stdout; logs, progress and errors to stderr. A FerkitError is
printed as one line ``ferkit: error: ...`` with exit code 2.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Callable

from ferkit import __version__
from ferkit.errors import FerkitError

DEFAULT_SAMPLE = "../shared/data/samples/two_people.jpg"


def _cmd_train(a: argparse.Namespace) -> int:
    from ferkit.train import train

    if a.config is None and a.resume is None:
        raise FerkitError("train: give a CONFIG file (see configs/) or --resume RUN_DIR")
    run_dir = train(a.config, a.overrides, resume=a.resume)
    print(run_dir)
    return 0


def _cmd_data(a: argparse.Namespace) -> int:
    from ferkit.data import load_dataset

    faces = load_dataset(a.path, a.format, classes=a.classes, label_mode=a.label_mode,
                         ferplus_classes=a.ferplus_classes, group_regex=a.group_regex)
    if a.json:
        out = {"name": faces.name, "root": faces.root, "classes": faces.classes, "n_images": len(faces),
               "splits": {s: faces.split(s).class_counts() for s in faces.split_names()}, "notes": faces.notes}
        print(json.dumps(out, indent=2))
    else:
        print(faces.describe())
    return 0


def _cmd_models(a: argparse.Namespace) -> int:
    from ferkit.models import list_models

    for name in list_models(a.pattern):
        print(name)
    return 0


def _cmd_predict(a: argparse.Namespace) -> int:
    raise FerkitError(
        "predict: no model shipped yet - the default model arrives with the shipped-model issue; "
        "train one with `ferkit train configs/<recipe>.yaml` meanwhile"
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ferkit", description="Facial expression recognition: train, evaluate and run FER models.")
    p.add_argument("--version", action="version", version=f"ferkit {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help: str, **kw) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help, **kw)
        sp.set_defaults(func=fn)
        return sp

    t = add("train", _cmd_train, "train a model from a YAML config (configs/*.yaml); prints the run folder",
            epilog="Any config value can be overridden: ferkit train configs/x.yaml trainer.max_epochs=5 data.batch_size=32")
    t.add_argument("config", nargs="?", help="YAML config file")
    t.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")

    d = add("data", _cmd_data, "read a dataset and print its splits and class counts")
    d.add_argument("path")
    d.add_argument("--format", default="auto", help="auto | fer2013-csv | fer2013-folder | ferplus | folder")
    d.add_argument("--classes", help="keep only these classes, e.g. angry,happy,sad")
    d.add_argument("--label-mode", default="majority", help="FER+: majority | plurality | probability")
    d.add_argument("--ferplus-classes", type=int, default=8, choices=(7, 8))
    d.add_argument("--group-regex", help=r"subject id from file names, e.g. 'S(\d+)_'")
    d.add_argument("--json", action="store_true", help="print JSON to stdout")

    m = add("models", _cmd_models, "list model architectures (any timm model name also works)")
    m.add_argument("pattern", nargs="?", help="wildcard filter, e.g. 'resnet*'")

    pr = add("predict", _cmd_predict, "emotions of the faces in images")
    pr.add_argument("paths", nargs="*", default=[DEFAULT_SAMPLE])
    pr.add_argument("--model", default="default")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    if not getattr(a, "func", None):
        parser.print_help()
        return 0
    try:
        return a.func(a)
    except FerkitError as e:
        print(f"ferkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ferkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
