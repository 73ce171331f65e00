"""`ferkit models [PATTERN]`: architectures and shipped models."""
from __future__ import annotations

import argparse


def run(a: argparse.Namespace) -> int:
    from ferkit.models import deprecated_names, list_models, resolve, shipped_aliases, shipped_models

    for name in list_models(a.pattern):
        print(name)
    shipped, aliases = shipped_models(), shipped_aliases()
    if shipped and not a.pattern:
        print("\nshipped trained models (use with --model; arch.tag, the short names that load it, the weights, "
              "the class prior it predicts under: see --prior):")
        for name, stem in shipped.items():
            if name not in aliases:
                short = ", ".join(a for a, c in aliases.items() if c == name)
                print(f"  {name:<23} {short:<10} {stem:<24} prior {resolve(name).prior}")
        old = deprecated_names()
        if old:
            print("deprecated names (still load, with a warning): "
                  + ", ".join(f"{o} -> {n}" for o, n in old.items()))
    return 0


def add_parser(sub) -> None:
    m = sub.add_parser("models", help="list model architectures (any timm model name also works) and shipped models")
    m.add_argument("pattern", nargs="?", help="wildcard filter, e.g. 'resnet*'")
    m.set_defaults(func=run)
