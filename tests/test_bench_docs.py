"""Benchmark scripts publish what they printed: ``--update-docs`` puts a real run's output, with the machine,
the date and the command, between a doc's ``bench-NAME`` markers, and only there; a doc without them fails
before anything is measured."""
from __future__ import annotations

import subprocess
import sys

from _paths import REPO, SAMPLES

SCRIPT = REPO / "benchmarks" / "bench_detect.py"
START, END = "<!-- ferkit-bench-detect:start -->", "<!-- ferkit-bench-detect:end -->"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--detectors", "haar", "--repeat", "1", "--frames", "3",
                           "--samples", str(SAMPLES), *args], capture_output=True, text=True, timeout=600, check=False)


def test_update_docs_puts_the_printed_report_between_the_markers(tmp_path):
    doc, other = tmp_path / "doc.md", tmp_path / "other.md"
    doc.write_text(f"# before\n\n{START}\nold figures\n{END}\n\nafter\n")
    other.write_text(f"{START}\n{END}\n")
    r = _run("--update-docs", str(doc), str(other))
    assert r.returncode == 0, r.stderr[-2000:]
    printed = r.stdout.strip()
    assert "haar" in printed and "43" in printed     # the table row of haar on the 43 VOC faces
    for path in (doc, other):
        text = path.read_text()
        block = text[text.index(START) + len(START):text.index(END)]
        assert printed in block and "old figures" not in block
        assert block.lstrip().startswith("Measured on ") and " cores, " in block and "load average" in block
        assert "`python benchmarks/bench_detect.py --detectors haar --repeat 1 --frames 3 --samples " in block
    assert doc.read_text().startswith("# before\n\n") and doc.read_text().endswith(f"{END}\n\nafter\n")


def test_update_docs_without_markers_fails_before_measuring(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("no markers here\n")
    r = _run("--update-docs", str(doc))
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr == f"bench_detect.py: {doc}: expected one {START} ... {END} pair, found 0\n"
    assert doc.read_text() == "no markers here\n"


def test_every_benchmark_script_has_its_block_and_every_block_a_script():
    """Each script's run(NAME, main) has one bench-NAME block in benchmarks/README.md; README.md's bench
    blocks are scripts' blocks (so that --update-docs README.md can fill each of them)."""
    import re

    names = {}
    for script in sorted((REPO / "benchmarks").glob("*.py")):
        found = re.findall(r'\brun\("([\w-]+)", main\)', script.read_text())
        if found:
            names[found[0]] = script.name
    assert {"detect", "video", "serve", "serve-huge", "batch", "predict-cli"} <= set(names)
    log = (REPO / "benchmarks" / "README.md").read_text()
    readme = (REPO / "README.md").read_text()
    for name in names:
        assert log.count(f"<!-- ferkit-bench-{name}:start -->") == 1, name
    in_readme = set(re.findall(r"<!-- ferkit-bench-([\w-]+):start -->", readme))
    assert in_readme and in_readme <= set(names)
