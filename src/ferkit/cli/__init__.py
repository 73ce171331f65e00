"""The `ferkit` command: a thin layer over the Python API.

One module per subcommand (``ferkit/cli/<name>.py``), each with ``add_parser(subparsers)`` that
registers the subcommand and its handler. Machine-readable output goes to stdout; logs, progress
and errors to stderr. A FerkitError is printed as one line ``ferkit: error: ...`` (exit code 2), and so is a package
missing from a light install, with the extra that brings it; a deprecated name is one line
``ferkit: warning: ...``.
"""
from __future__ import annotations

import argparse
import logging
import sys
import warnings
from importlib import import_module

from ferkit import __version__
from ferkit.errors import FerkitDeprecationWarning, FerkitError

#: packages that come with an extra (the base install runs predict, video, webcam and batch on
#: ONNX Runtime) -> the extra that brings them
EXTRAS = {"torch": "train", "torchvision": "train", "lightning": "train", "timm": "train", "sklearn": "train",
          "onnx": "train", "safetensors": "train", "face_recognition_models": "landmarks", "fastapi": "serve",
          "uvicorn": "serve", "starlette": "serve", "pydantic_settings": "serve", "prometheus_client": "serve",
          "multipart": "serve", "websockets": "serve", "ray": "ray", "pyarrow": "batch", "pandas": "batch"}

#: subcommand modules, in the order `ferkit --help` lists them
COMMANDS = ("predict", "video", "webcam", "batch", "train", "evaluate", "compare", "calibrate", "data", "models",
            "export", "serve", "explain", "ensemble", "benchmark", "papers")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ferkit",
                                description="Facial expression recognition: train, evaluate and run FER models.")
    p.add_argument("--version", action="version", version=f"ferkit {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        import_module(f"ferkit.cli.{name}").add_parser(sub)
    return p


def _one_line_warning(show):
    """``warnings.showwarning`` that prints ferkit's deprecations as ``ferkit: warning: ...`` (no
    file and source line) and passes every other warning to ``show``."""
    def _show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, FerkitDeprecationWarning):
            print(f"ferkit: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)
    return _show


def _not_printed_already(record: logging.LogRecord) -> bool:
    """Filter of the root's handler: False for a record that a handler of a library's own logger has
    printed on its way up (Lightning's ``lightning`` logger has one and still propagates: each of its
    INFO lines came twice)."""
    logger = logging.getLogger(record.name)
    while logger.parent is not None and logger.propagate:  # up to the root, not included
        if logger.handlers:
            return False
        logger = logger.parent
    return True


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args``, except that a command may take back the words argparse left over
    (``_after_parse(parser, namespace, extra)``: ``ferkit papers config --missing paper1``)."""
    a, extra = parser.parse_known_args(argv)
    hook = getattr(a, "_after_parse", None)
    if hook:
        hook(parser, a, extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return a


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = _parse(parser, argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_not_printed_already)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", handlers=[handler])
    if not getattr(a, "func", None):
        parser.print_help()
        return 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", FerkitDeprecationWarning)   # shown once, as one line
            warnings.showwarning = _one_line_warning(warnings.showwarning)
            return a.func(a)
    except FerkitError as e:
        print(f"ferkit: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        top = (e.name or "").split(".")[0]
        if top not in EXTRAS:
            raise
        print(f"ferkit: error: ferkit {a.command} needs {top}, which this installation lacks: "
              f"pip install 'ferkit[{EXTRAS[top]}]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ferkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
