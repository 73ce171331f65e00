"""`ferkit benchmark`: the shipped models on small stratified subsets of the real data sets in
../shared/data, RESULTS.md's table, and the copy into documents between markers (no mocks)."""
from __future__ import annotations

import re

import pytest

from ferkit.cli import main
from ferkit.data.composite import build_composites
from ferkit.detect import DEFAULT_DETECTOR
from ferkit.evaluate import load_eval_data, run_evaluation
from ferkit.evaluate.benchmark import MARKER_END, MARKER_START, shipped_model_ids
from ferkit.models import resolve

from _paths import DATA

pytestmark = pytest.mark.skipif(not (DATA / "ferplus").is_dir(),
                                reason=f"data sets not found in {DATA} (set FERKIT_DATA)")

LIMIT, UNCROPPED = 30, 12


def table_rows(text: str) -> list[dict[str, str]]:
    """The rows of the markdown table between the markers, as dicts keyed by the header."""
    block = text.split(MARKER_START, 1)[1].split(MARKER_END, 1)[0]
    first = block[block.index("\n|"):].split("\n\n", 1)[0]  # the first table (the recall table follows)
    lines = [line for line in first.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]


@pytest.fixture(scope="module")
def results(tmp_path_factory, one_thread):
    """One small benchmark run with an extra --data folder (photos made from PrivateTest faces)."""
    tmp = tmp_path_factory.mktemp("bench")
    extra = tmp / "photos"
    faces, _ = load_eval_data(DATA / "fer2013", "fer2013-folder", "PrivateTest", limit=8)
    build_composites(faces, extra, canvas=400, samples_dir=DATA / "samples")
    doc = tmp / "DOC.md"
    doc.write_text(f"# Doc\n\nbefore\n\n{MARKER_START}\nold table, typed by hand: 99.9%\n{MARKER_END}\n\nafter\n")
    out = tmp / "RESULTS.md"
    argv = ["benchmark", "--data-root", str(DATA), "--limit", str(LIMIT), "--uncropped", str(UNCROPPED),
            "--data", str(extra), "--out", str(out), "--update-docs", str(doc)]
    assert main(argv) == 0
    return out.read_text(encoding="utf-8"), doc.read_text(encoding="utf-8"), extra


def test_results_table_has_every_model_on_every_data_set(results):
    text, _, extra = results
    assert "AMD" in text or "Intel" in text or "cores" in text        # the machine is named
    assert re.search(r"torch \d+\.\d+", text) and re.search(r"\d{4}-\d\d-\d\d", text)
    assert f"`ferkit benchmark --data {extra}" in text and f"--limit {LIMIT}" in text   # the exact command
    rows = table_rows(text)
    ids = shipped_model_ids()
    sets = ["FER2013 PublicTest", "FER2013 PrivateTest", "FER+ Valid, 7 classes", "FER+ test, 8 classes",
            "FER+ test, 7 classes",
            "FER2013 PublicTest subset, original crops", f"same faces in photos, {DEFAULT_DETECTOR}",
            "FER+ Valid subset, original crops", f"same faces in photos (FER+ labels), {DEFAULT_DETECTOR}", "photos",
            f"photos, {DEFAULT_DETECTOR}"]
    assert [(r["model"].split(" ")[0], r["data set"]) for r in rows] == [(m, s) for m in ids for s in sets]
    for r in rows:
        m = re.fullmatch(r"(\d+\.\d\d) \((\d+\.\d\d)-(\d+\.\d\d)\)", r["accuracy % (95% CI)"])
        assert m, r
        acc, lo, hi = map(float, m.groups())
        assert lo <= acc <= hi and hi - lo > 5            # a real interval around the estimate, on 8-30 images
        assert 0 <= float(r["macro-F1 %"]) <= 100 and float(r["faces/s"]) > 0
        prior = resolve(r["model"].split(" ")[0]).prior       # each under its own prior, named unless train
        assert (f"prior {prior}" in r["model"]) == (prior != "train"), r
    n = {r["data set"]: int(r["images"]) for r in rows}
    assert n["FER2013 PublicTest"] == n["FER2013 PrivateTest"] == LIMIT
    assert n["FER2013 PublicTest subset, original crops"] == n[f"same faces in photos, {DEFAULT_DETECTOR}"] == UNCROPPED
    assert (n["FER+ Valid subset, original crops"] == n[f"same faces in photos (FER+ labels), {DEFAULT_DETECTOR}"]
            == UNCROPPED)
    assert n["photos"] == n[f"photos, {DEFAULT_DETECTOR}"] == 8
    # photos without a found face are counted and said: as many as ferkit evaluate --detect counts
    notes = dict(re.findall(r"^(\d+)\. (.*)$", text, re.MULTILINE))
    photo_row = next(r for r in rows if r["data set"] == f"photos, {DEFAULT_DETECTOR}")
    said = (re.search(r"no face found in (\d+) of (\d+) photos", notes[k.strip()])
            for k in photo_row["notes"].split(","))
    (found,) = [m for m in said if m]
    m = run_evaluation(photo_row["model"].split(" ")[0], extra, "folder", "all", detect=DEFAULT_DETECTOR,
                       device="cpu").metrics
    assert (int(found[1]), int(found[2])) == (m["n_no_face"], 8)
    # each model's recall per class on the FER+ test split, from the same evaluation as its row
    recalls = re.search(r"Recall per class on FER\+ test, 7 classes \(%\):\n\n(\|.*\n)+", text)
    assert recalls and len(recalls.group(0).strip().splitlines()) == 2 + 2 + len(ids), text


def test_table_figures_are_those_of_ferkit_evaluate(results):
    text, _, _ = results
    row = next(r for r in table_rows(text) if r["data set"] == "FER2013 PrivateTest")
    m = run_evaluation(row["model"].split(" ")[0], DATA / "fer2013", "fer2013-folder", "PrivateTest", limit=LIMIT,
                       device="cpu").metrics
    lo, hi = m["ci95"]["accuracy"]
    assert row["accuracy % (95% CI)"] == f"{100 * m['accuracy']:.2f} ({100 * lo:.2f}-{100 * hi:.2f})"
    assert row["macro-F1 %"] == f"{100 * m['macro_f1']:.2f}"
    assert row["balanced acc. %"] == f"{100 * m['macro_recall']:.2f}"


def test_update_docs_copies_the_block_and_keeps_the_rest(results, tmp_path, capsys):
    text, doc, _ = results
    assert "99.9%" not in doc and doc.startswith("# Doc\n\nbefore\n\n") and doc.endswith("\n\nafter\n")
    assert table_rows(doc) == table_rows(text)
    def block(t: str) -> str:
        return t.split(MARKER_START, 1)[1].split(MARKER_END, 1)[0]

    assert block(doc) == block(text) and "`ferkit benchmark" in block(doc)
    # a document without markers is refused before anything runs, with one line naming it
    bare = tmp_path / "BARE.md"
    bare.write_text("no markers here\n")
    capsys.readouterr()
    # (the data root exists, so only the markers can stop it before measuring)
    assert main(["benchmark", "--out", str(tmp_path / "R.md"), "--update-docs", str(bare),
                 "--data-root", str(DATA)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"ferkit: error: {bare}: expected one {MARKER_START} ... {MARKER_END} pair, found 0"]
    assert not (tmp_path / "R.md").exists() and bare.read_text() == "no markers here\n"
