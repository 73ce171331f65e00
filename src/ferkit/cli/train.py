"""`ferkit train CONFIG [key=value ...] [--resume RUN_DIR]`"""
from __future__ import annotations

import argparse

from ferkit.errors import FerkitError


def run(a: argparse.Namespace) -> int:
    from ferkit.train import train

    if a.config is None and a.resume is None:
        raise FerkitError("train: give a CONFIG file or a shipped config's name (see configs/) or --resume RUN_DIR")
    print(train(a.config, a.overrides, resume=a.resume))
    return 0


def add_parser(sub) -> None:
    t = sub.add_parser("train", help="train a model from a YAML config (configs/*.yaml); prints the run folder",
                       epilog="A shipped config can be named instead of a file "
                              "(ferkit train paper4_resnet18_gray_layer4). Any config value can be overridden: "
                              "ferkit train configs/x.yaml trainer.max_epochs=5 data.batch_size=32")
    t.add_argument("config", nargs="?", help="YAML config file")
    t.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    t.set_defaults(func=run)
