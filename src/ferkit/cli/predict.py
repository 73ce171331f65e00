"""`ferkit predict PATH...`: emotions of the faces in images (placeholder until the main job lands)."""
from __future__ import annotations

import argparse

from ferkit.errors import FerkitError

DEFAULT_SAMPLE = "../shared/data/samples/two_people.jpg"


def run(a: argparse.Namespace) -> int:
    raise FerkitError("predict: face detection and prediction are not implemented yet (see the main-job issue)")


def add_parser(sub) -> None:
    pr = sub.add_parser("predict", help="emotions of the faces in images")
    pr.add_argument("paths", nargs="*", default=[DEFAULT_SAMPLE])
    pr.add_argument("--model", default="default")
    pr.set_defaults(func=run)
