"""Benchmark scripts publish what they printed: ``--update-docs`` puts a real run's output, with the machine,
the date and the command, between a doc's ``bench-NAME`` markers, and only there; a doc without them fails
before anything is measured, and a run that fails writes nothing."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from _paths import REPO, SAMPLES

SCRIPT = REPO / "benchmarks" / "bench_detect.py"
START, END = "<!-- ferkit-bench-detect:start -->", "<!-- ferkit-bench-detect:end -->"
QUICK = ["--repeat", "1", "--frames", "3", "--samples", str(SAMPLES)]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600,
                          check=False)


def _block(text: str) -> str:
    return text[text.index(START) + len(START):text.index(END)]


def test_update_docs_puts_the_printed_report_between_the_markers(tmp_path):
    doc, other = tmp_path / "doc.md", tmp_path / "other.md"
    doc.write_text(f"# before\n\n{START}\nold figures\n{END}\n\nafter\n")
    other.write_text(f"{START}\n{END}\n")
    r = _run("--detectors", "haar", "--update-docs", str(doc), str(other), *QUICK)   # files, then more options
    assert r.returncode == 0, r.stderr[-2000:]
    haar = next(line for line in r.stdout.splitlines() if line.startswith("haar "))
    assert re.match(r"haar\s+\d+/43\s", haar)            # its row: recall on the 43 VOC faces
    for path in (doc, other):
        block = _block(path.read_text())
        assert haar in block and "old figures" not in block and "target: " not in block    # haar is no default
        assert block.lstrip().startswith("Measured on ") and " cores, " in block and "load average" in block
        # the command as run, with this checkout's folders written as relative paths
        assert "`python benchmarks/bench_detect.py --detectors haar --repeat 1 --frames 3 --samples " in block
        if SAMPLES.is_relative_to(REPO.parent):
            assert str(REPO.parent) not in block and "../" in block
    assert doc.read_text().startswith("# before\n\n") and doc.read_text().endswith(f"{END}\n\nafter\n")


def test_update_docs_without_markers_fails_before_measuring_and_a_failed_run_writes_nothing(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("no markers here\n")
    r = _run("--detectors", "haar", *QUICK, "--update-docs", str(doc))
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr == f"bench_detect.py: {doc}: expected one {START} ... {END} pair, found 0\n"
    assert doc.read_text() == "no markers here\n"
    doc.write_text(f"{START}\nkept\n{END}\n")
    r = _run("--detectors", "no-such-detector", *QUICK, "--update-docs", str(doc))
    assert r.returncode != 0 and "no-such-detector" in r.stderr
    assert doc.read_text() == f"{START}\nkept\n{END}\n"


def test_only_a_run_that_succeeds_updates_the_docs(tmp_path):
    """_report.run puts what main printed into the block when main returns 0, and leaves the block as it
    was when main returns an error code after printing (as bench_serve and bench_soak do on failure)."""
    script = tmp_path / "bench_fake.py"
    script.write_text('import sys\n\nimport _report\n\n\ndef main():\n    print("figure 42")\n'
                      '    return int(sys.argv[1])\n\n\n_report.run("detect", main)\n')
    doc = tmp_path / "doc.md"
    doc.write_text(f"{START}\nkept\n{END}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "benchmarks"), os.environ.get("PYTHONPATH", "")])}
    for code in (1, 0):
        r = subprocess.run([sys.executable, str(script), str(code), "--update-docs", str(doc)], capture_output=True,
                           text=True, timeout=120, check=False, env=env)
        assert r.returncode == code and r.stdout == "figure 42\n", r.stderr
        assert ("figure 42" in _block(doc.read_text())) == (code == 0)
        assert ("kept" in doc.read_text()) == (code == 1)


def test_every_benchmark_script_has_its_block_and_every_block_a_script():
    """Each script's _report.run(NAME, main) has one bench-NAME block in benchmarks/README.md and each block
    there a script; the bench blocks of README.md and MODEL_CARD.md are scripts' blocks, filled."""
    names = {}
    for script in sorted((REPO / "benchmarks").glob("*.py")):
        found = re.findall(r'_report\.run\("([\w-]+)", main\)', script.read_text())
        if found:
            names[found[0]] = script.name
    assert {"detect", "video", "serve", "serve-huge", "batch", "predict-cli", "infer-backends"} <= set(names)
    log = (REPO / "benchmarks" / "README.md").read_text()
    assert sorted(re.findall(r"<!-- ferkit-bench-([\w-]+):start -->", log)) == sorted(names)
    for doc in ("README.md", "MODEL_CARD.md"):
        text = (REPO / doc).read_text()
        blocks = re.findall(r"<!-- ferkit-bench-([\w-]+):start -->\n(.*?)<!-- ferkit-bench-\1:end -->", text, re.S)
        assert blocks and {name for name, _ in blocks} <= set(names), doc
        for name, body in blocks:
            assert body.startswith("Measured on ") and "```text\n" in body, (doc, name)
