"""`ferkit data PATH`: read a dataset and print its splits and class counts."""
from __future__ import annotations

import argparse
import json


def run(a: argparse.Namespace) -> int:
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


def add_parser(sub) -> None:
    d = sub.add_parser("data", help="read a dataset and print its splits and class counts")
    d.add_argument("path")
    d.add_argument("--format", default="auto", help="auto | fer2013-csv | fer2013-folder | ferplus | folder")
    d.add_argument("--classes", help="keep only these classes, e.g. angry,happy,sad")
    d.add_argument("--label-mode", default="majority", help="FER+: majority | plurality | probability")
    d.add_argument("--ferplus-classes", type=int, default=8, choices=(7, 8))
    d.add_argument("--group-regex", help=r"subject id from file names, e.g. 'S(\d+)_'")
    d.add_argument("--json", action="store_true", help="print JSON to stdout")
    d.set_defaults(func=run)
