"""`ferkit models [PATTERN]`: architectures and shipped models."""
from __future__ import annotations

import argparse


def run(a: argparse.Namespace) -> int:
    from ferkit.models import list_models, shipped_models

    for name in list_models(a.pattern):
        print(name)
    shipped = shipped_models()
    if shipped and not a.pattern:
        print("\nshipped trained models (use with --model):")
        for name, stem in shipped.items():
            print(f"  {name:<12} {stem}")
    return 0


def add_parser(sub) -> None:
    m = sub.add_parser("models", help="list model architectures (any timm model name also works) and shipped models")
    m.add_argument("pattern", nargs="?", help="wildcard filter, e.g. 'resnet*'")
    m.set_defaults(func=run)
