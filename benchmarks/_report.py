"""A benchmark's printed report, kept as it printed: run any script here with ``--update-docs`` and its
output goes (less what belongs to one machine or run: temporary folders, this checkout's path, loopback
ports), with the machine it ran on (CPU flags included), the date and the command, between
``<!-- ferkit-bench-NAME:start -->`` and ``<!-- ferkit-bench-NAME:end -->`` in ``benchmarks/README.md``
(the default), or in the FILEs named instead: the figures in the docs are the scripts' output, never typed.

    python benchmarks/bench_detect.py --update-docs                                  # benchmarks/README.md
    python benchmarks/bench_detect.py --update-docs benchmarks/README.md README.md   # and README.md's block

Each script's ``__main__`` is ``_report.run(NAME, main)``; the markers are checked before the script runs,
so a missing block fails at once, not after a long measurement.
"""
from __future__ import annotations

import io
import os
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ferkit import _docblock
from ferkit.errors import FerkitError

HERE = Path(__file__).resolve().parent
LOG = HERE / "README.md"


def block_name(name: str) -> str:
    return f"bench-{name}"


class _Tee(io.TextIOBase):
    """stdout as it was, and a copy of everything written to it."""

    def __init__(self, out) -> None:
        self.out, self.copy = out, io.StringIO()

    def write(self, s: str) -> int:
        self.copy.write(s)
        return self.out.write(s)

    def flush(self) -> None:
        self.out.flush()


def _docs_argument(argv: list[str]) -> tuple[list[str], list[Path] | None]:
    """``argv`` without ``--update-docs [FILE ...]`` (the files run to the next option; only before a ``--``,
    after which the options are another program's), and the docs to update: the files named, else
    benchmarks/README.md; None without the option."""
    end = argv.index("--") if "--" in argv else len(argv)
    if "--update-docs" not in argv[:end]:
        return argv, None
    i = argv.index("--update-docs")
    j = i + 1
    while j < end and not argv[j].startswith("-"):
        j += 1
    docs = [Path(f) for f in argv[i + 1:j]] or [LOG]
    return argv[:i] + argv[j:], list(dict.fromkeys(p.resolve() for p in docs))


def target(text: str, met: bool) -> None:
    """Print one target line (the README's targets are these lines, copied with the rest of the output)."""
    print(f"target: {text}: {'met' if met else 'missed'}")


def portable(text: str) -> str:
    """``text`` without what belongs to one machine or one run: temporary folders become ``<tmp>``, this
    checkout ``.`` and its parent folder ``..`` (where ../shared/data is), loopback ports ``<port>``;
    trailing spaces go."""
    for folder, short in ((HERE.parent, "."), (HERE.parent.parent, "..")):   # first: a checkout may be in /tmp
        text = text.replace(f"{folder}/", f"{short}/")
    tmp = re.escape(tempfile.gettempdir().rstrip("/"))
    text = re.sub(tmp + r"/[^\s/:,;)]+", "<tmp>", text)
    text = re.sub(r"(127\.0\.0\.1|localhost|\[::1\]):\d+", r"\1:<port>", text)
    return "\n".join(line.rstrip() for line in text.splitlines())


def report_block(output: str, command: str, machine: str, when: str) -> str:
    """The generated block: where and when it was measured, the command, then the output as printed, in a
    fence longer than any run of backticks in it."""
    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", output)), default=0))
    return f"Measured on {machine}, {when}: `{portable(command)}`\n\n{fence}text\n{portable(output).strip()}\n{fence}\n"


def run(name: str, main: Callable[[], int | None]) -> None:
    """Run a benchmark's ``main`` (which reads ``sys.argv``) as the script, and exit with its code; with
    ``--update-docs``, put what it printed into the docs' ``bench-NAME`` blocks when it succeeded."""
    sys.argv, docs = _docs_argument(sys.argv)
    if docs is not None:
        try:
            _docblock.check_markers(docs, block_name(name))
        except FerkitError as e:
            sys.exit(f"{Path(sys.argv[0]).name}: {e}")
    load = os.getloadavg()[0]   # before the run: whether the machine was idle
    command = "python " + shlex.join([f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    tee = _Tee(sys.stdout)
    sys.stdout = tee
    try:
        code = main()
    finally:
        sys.stdout = tee.out
    if docs is not None and not code:
        block = report_block(tee.copy.getvalue(), command, f"{machine()}, load average {load:.2f} at the start",
                             when)
        for doc in docs:
            if _docblock.put_block(doc, block, block_name(name)):
                print(f"updated the {block_name(name)} block of {doc}", file=sys.stderr)
    sys.exit(code)


def machine() -> str:
    """The CPU (its speed flags), cores and GPU, and the versions; not torch's threads, which each script
    sets and prints for itself."""
    from ferkit.evaluate.benchmark import machine_info  # torch: only once the script has run

    return machine_info()["platform"]
