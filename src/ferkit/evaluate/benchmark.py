"""`run_benchmark()`: every shipped model on every data set it is pointed at, as one results table.

The data sets (:func:`default_datasets`): FER2013 PublicTest and PrivateTest (folder layout), the
FER+ Valid and test splits with majority labels (as its 8 classes and mapped onto FER2013's 7), an
uncropped version of a FER2013 PublicTest subset, with FER2013's labels and with the FER+ labels of
the same images (its faces enlarged and placed into real photos by :mod:`ferkit.data.composite`),
classified through a face detector next to the same faces' original crops, and any extra
class-per-folder sets, with and without detection. Each cell is one
:func:`ferkit.evaluate.run_evaluation`, so the numbers are those ``ferkit evaluate`` prints.

:func:`write_results` writes ``RESULTS.md`` (atomically) with the machine, the date and the exact
command; :func:`copy_block` copies its table into README.md and MODEL_CARD.md between the markers
``<!-- ferkit-benchmark:start -->`` and ``<!-- ferkit-benchmark:end -->``, so that the accuracy
figures there are copied from the output, never typed.
"""
from __future__ import annotations

import functools
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ferkit import _docblock
from ferkit.detect import DEFAULT_DETECTOR
from ferkit.errors import ConfigError, FerkitError
from ferkit.evaluate.report import prior_words

__all__ = [
    "MARKER_END",
    "MARKER_START",
    "BenchmarkData",
    "BenchmarkRow",
    "BF16_FLAGS",
    "SPEED_FLAGS",
    "check_markers",
    "cpu_flags",
    "copy_block",
    "default_datasets",
    "folder_datasets",
    "machine_info",
    "results_markdown",
    "run_benchmark",
    "shipped_model_ids",
    "uncropped_sources",
    "write_results",
]

BLOCK = "benchmark"
MARKER_START, MARKER_END = _docblock.markers(BLOCK)
#: the shared data folder, relative to the repository root (as the other defaults)
DATA_ROOT = "../shared/data"
#: photos in each default uncropped data set (stratified subsets of PublicTest = FER2013Valid)
UNCROPPED_FACES = 300

Log = Callable[[str], None]


@dataclass(frozen=True)
class BenchmarkData:
    """One data set column of the benchmark: what :func:`run_evaluation` is given.

    ``detect`` names the face detector for detect-then-classify (uncropped photos), None for crops."""

    name: str
    path: str
    format: str = "folder"
    split: str | None = None
    classes: tuple[str, ...] | None = None
    detect: str | None = None
    limit: int | None = None
    note: str = ""


@dataclass
class BenchmarkRow:
    """One model on one data set: the metrics.json dict of that evaluation, and the table's view of it."""

    model: str
    aliases: list[str]
    data: BenchmarkData
    metrics: dict[str, Any] = field(repr=False)

    @property
    def accuracy_ci(self) -> tuple[float, float] | None:
        ci = (self.metrics.get("ci95") or {}).get("accuracy")
        return None if ci is None else (float(ci[0]), float(ci[1]))

    def notes(self) -> list[str]:
        m = self.metrics
        out = [self.data.note] if self.data.note else []
        r = m.get("class_restriction") or {}
        dropped = r.get("dropped_dataset_classes") or {}
        if dropped:
            out.append("left out: " + ", ".join(f"{c} ({n} image{'s' * (n != 1)})" for c, n in dropped.items())
                       + " (not a class of the model)")
        if r.get("restricted") and r.get("reason") == "shared":
            out.append("argmax over the " + str(len(m["classes"])) + " shared classes")
        if self.data.detect:
            n = m.get("n_no_face")
            if n is not None:
                out.append(f"no face found in {n} of {m['n_images']} photos (counted wrong)")
        return out


#: the CPU flags that decide how fast torch runs here (``/proc/cpuinfo``; ``bf16`` is aarch64's): bf16
#: autocast is native with avx512_bf16, amx_bf16 or bf16 and emulated (slower than fp32) without
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "bf16")
#: the flags with which a CPU runs bf16 natively
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str | None, frozenset[str] | None]:
    """The CPU's model name and flags (x86 ``flags``, aarch64 ``Features``) from ``/proc/cpuinfo``, read
    once; (None, None) where there is no such file."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            lines = f.readlines()
    except OSError:
        return None, None
    name, flags = (next((line.split(":", 1)[1] for line in lines if line.startswith(keys)), None)
                   for keys in ("model name", ("flags", "Features")))
    return (name.strip() if name else None), frozenset((flags or "").split())


def cpu_flags() -> list[str]:
    """The :data:`SPEED_FLAGS` this CPU has, from ``/proc/cpuinfo``; elsewhere from torch's own CPU
    checks (x86 only)."""
    have = _cpuinfo()[1]
    if have is None:
        import torch

        have = frozenset(flag for flag, check in (("avx512_bf16", "_is_avx512_bf16_supported"),
                                                  ("amx_bf16", "_is_amx_tile_supported"))
                         if getattr(torch.cpu, check, lambda: False)())
    return [f for f in SPEED_FLAGS if f in have]


def machine_info() -> dict[str, Any]:
    """The machine the numbers were measured on: CPU model (``/proc/cpuinfo``), cores, GPU,
    the CPU flags of :data:`SPEED_FLAGS` it has, torch/Python/ferkit versions, torch threads and the load
    average; ``machine`` is one line of it, ``platform`` the same without torch's threads."""
    import torch

    from ferkit import __version__

    cpu = _cpuinfo()[0] or platform.processor() or platform.machine()
    flags = cpu_flags()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    info = {"cpu": cpu, "cores": cores, "arch": platform.machine(), "gpu": gpu, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(), "ferkit": __version__,
            "load_average": None if load is None else round(load, 2), "cpu_flags": flags}
    hardware = f"{cpu} ({platform.machine()}{''.join(f', {f}' for f in flags)}), {cores} cores, {gpu or 'no GPU'}"
    threads = info["torch_threads"]
    # "platform": for a script that sets torch's threads itself; "machine": with the threads of this process
    rest = f"Python {info['python']}, ferkit {__version__}"
    info["platform"] = f"{hardware}; torch {torch.__version__}, {rest}"
    info["machine"] = f"{hardware}; torch {torch.__version__} ({threads} thread{'s' * (threads != 1)}), {rest}"
    return info


def shipped_model_ids() -> dict[str, list[str]]:
    """Shipped model ids -> all names that load the same file (the first name in ``index.json`` is
    the id): ``{"default": ["default", "vgg_fer.w15_fer2013"]}``."""
    from ferkit.models import resolve_model_path, shipped_models

    by_file: dict[str, list[str]] = {}
    for name in shipped_models():
        by_file.setdefault(str(resolve_model_path(name).resolve()), []).append(name)
    return {names[0]: names for names in by_file.values()}


def uncropped_sources(data_root: str | os.PathLike[str] = DATA_ROOT,
                      n: int = UNCROPPED_FACES) -> list[tuple[BenchmarkData, str]]:
    """The face sets placed into photos: each one's original-crops row and the name of its photo rows.
    A stratified ``n``-face subset of FER2013 PublicTest (FER2013's labels) and one of FER2013Valid (the
    same images, FER+ majority labels over FER2013's 7 classes). :func:`run_benchmark` builds one folder
    of photos from each."""
    from ferkit.data import FER2013_CLASSES

    root = Path(data_root)
    return [
        (BenchmarkData("FER2013 PublicTest subset, original crops", str(root / "fer2013"), "fer2013-folder",
                       "PublicTest", limit=n, note=f"the {n} faces of the uncropped rows"),
         "same faces in photos"),
        (BenchmarkData("FER+ Valid subset, original crops", str(root / "ferplus"), "ferplus", "FER2013Valid",
                       tuple(FER2013_CLASSES), limit=n,
                       note=f"the {n} faces of the uncropped rows with FER+ labels (majority, contempt left out)"),
         "same faces in photos (FER+ labels)"),
    ]


def default_datasets(data_root: str | os.PathLike[str] = DATA_ROOT, *,
                     uncropped: Sequence[str | os.PathLike[str]] | None = None,
                     uncropped_faces: int = UNCROPPED_FACES, detectors: Sequence[str] = (DEFAULT_DETECTOR,),
                     limit: int | None = None) -> list[BenchmarkData]:
    """The standard data sets under ``data_root``: FER2013 PublicTest/PrivateTest, FER+ FER2013Valid
    and FER2013Test (majority labels, 8 classes and FER2013's 7), and, when ``uncropped`` is given (one
    folder per :func:`uncropped_sources` entry, written by :func:`ferkit.data.composite.build_composites`
    from that entry's faces), each source's original crops and its photos through each of
    ``detectors``. ``limit`` applies to every set."""
    from ferkit.data import FER2013_CLASSES

    root = Path(data_root)
    fer, ferplus = str(root / "fer2013"), str(root / "ferplus")
    out = [
        BenchmarkData("FER2013 PublicTest", fer, "fer2013-folder", "PublicTest", limit=limit),
        BenchmarkData("FER2013 PrivateTest", fer, "fer2013-folder", "PrivateTest", limit=limit),
        BenchmarkData("FER+ Valid, 7 classes", ferplus, "ferplus", "FER2013Valid", tuple(FER2013_CLASSES), limit=limit,
                      note="majority labels, contempt left out; the split models are chosen on"),
        BenchmarkData("FER+ test, 8 classes", ferplus, "ferplus", "FER2013Test", limit=limit,
                      note="majority labels"),
        BenchmarkData("FER+ test, 7 classes", ferplus, "ferplus", "FER2013Test", tuple(FER2013_CLASSES), limit=limit,
                      note="majority labels, contempt left out"),
    ]
    if uncropped is not None:
        n = uncropped_faces if limit is None else min(uncropped_faces, limit)
        for (crops, photos), folder in zip(uncropped_sources(root, n), uncropped, strict=True):
            out.append(crops)
            out += [BenchmarkData(f"{photos}, {det}", str(folder), "folder", "all", detect=det,
                                  note="faces enlarged to 96-320 px in real photos") for det in detectors]
    return out


def folder_datasets(paths: Sequence[str | os.PathLike[str]], detectors: Sequence[str] = (DEFAULT_DETECTOR,),
                    limit: int | None = None) -> list[BenchmarkData]:
    """Extra class-per-folder sets (``--data``): each as given (crops) and through each detector."""
    out = []
    for p in paths:
        name = Path(os.fspath(p).rstrip("/\\")).name or str(p)
        out.append(BenchmarkData(name, str(p), "folder", "all", limit=limit))
        out += [BenchmarkData(f"{name}, {det}", str(p), "folder", "all", detect=det, limit=limit) for det in detectors]
    return out


def _build_uncropped(source: BenchmarkData, folder: Path, samples: Path, log: Log) -> None:
    from ferkit.data.composite import build_composites
    from ferkit.evaluate.runner import load_eval_data

    faces, _ = load_eval_data(source.path, source.format, source.split, source.classes, limit=source.limit)
    t0 = time.perf_counter()
    build_composites(faces, folder, samples_dir=samples)
    log(f"built {len(faces)} uncropped photos ({source.name.split(',')[0]}) in {time.perf_counter() - t0:.1f} s")


def run_benchmark(
    models: Sequence[str] | None = None,
    datasets: Sequence[BenchmarkData] | None = None,
    *,
    data_root: str | os.PathLike[str] = DATA_ROOT,
    extra: Sequence[str | os.PathLike[str]] = (),
    detectors: Sequence[str] = (DEFAULT_DETECTOR,),
    uncropped_faces: int = UNCROPPED_FACES,
    limit: int | None = None,
    tta: str = "none",
    batch_size: int = 128,
    device: str = "cpu",
    log: Log | None = None,
) -> list[BenchmarkRow]:
    """Evaluate each model on each data set; one :class:`BenchmarkRow` per pair, models outermost.

    Args:
        models: model names or paths (default: every shipped model and ensemble, one id per file).
        datasets: the data sets (default: :func:`default_datasets` under ``data_root``, with an
            photos of ``uncropped_faces`` faces of each :func:`uncropped_sources` entry built in a
            temporary folder).
        extra: class-per-folder sets added to ``datasets`` (see :func:`folder_datasets`).
        detectors: face detectors for the uncropped and extra sets (default: ``ferkit.detect.DEFAULT_DETECTOR``).
        limit: a stratified subset of this many images per data set (quick runs, tests).
        tta, batch_size, device: as for ``ferkit evaluate``.
        log: called with one line per finished evaluation (progress).
    Every data set is loaded (and checked) before the first model runs, so a missing folder stops
    the run at once with one line naming it.
    """
    from ferkit.detect import DetectorError, list_detectors
    from ferkit.evaluate.runner import load_eval_data, run_evaluation

    log = log or (lambda _line: None)
    ids = {m: [m] for m in models} if models else shipped_model_ids()
    if not ids:
        raise ConfigError("ferkit benchmark: no models given and none shipped (src/ferkit/weights/index.json)")
    unknown = [d for d in detectors if d not in list_detectors()]
    if unknown:
        raise DetectorError(f"unknown face detector {unknown[0]!r} (choose from: {', '.join(list_detectors())})")
    with tempfile.TemporaryDirectory(prefix="ferkit-benchmark-") as tmp:
        if datasets is None:
            root = Path(data_root)
            uncropped = None
            if uncropped_faces > 0:
                n = uncropped_faces if limit is None else min(uncropped_faces, limit)
                uncropped = []
                for i, (source, _) in enumerate(uncropped_sources(root, n)):
                    uncropped.append(Path(tmp) / f"uncropped{i}")
                    _build_uncropped(source, uncropped[-1], root / "samples", log)
            datasets = default_datasets(root, uncropped=uncropped, uncropped_faces=uncropped_faces,
                                        detectors=detectors, limit=limit)
        datasets = [*datasets, *folder_datasets(extra, detectors, limit)]
        loaded = {d: load_eval_data(d.path, d.format, d.split, d.classes, limit=d.limit) for d in datasets}
        first = next((d for d in datasets if d.detect is None), None)
        rows = []
        for model, aliases in ids.items():
            if first is not None:   # a warm-up, so that one-time costs (lazy imports, allocator) are not timed
                run_evaluation(model, first.path, first.format, first.split, first.classes, tta, batch_size, device,
                               limit=16, n_boot=0)
            for d in datasets:
                t0 = time.perf_counter()
                try:       # detect-then-classify takes no TTA: it classifies as `ferkit predict` does
                    ev = run_evaluation(model, d.path, d.format, d.split, d.classes, "none" if d.detect else tta,
                                        batch_size, device, limit=d.limit, faces_info=loaded[d], detect=d.detect)
                except FerkitError as e:
                    raise type(e)(f"{model} on {d.name}: {e}") from e
                row = BenchmarkRow(model, list(aliases), d, ev.metrics)
                rows.append(row)
                log(f"{model} on {d.name}: accuracy {ev.metrics['accuracy']:.4f} ({ev.metrics['n_images']} images, "
                    f"{time.perf_counter() - t0:.1f} s)")
    return rows


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


def results_markdown(rows: Sequence[BenchmarkRow], *, tta: str, machine: str, date: str, command: str) -> str:
    """The block copied into README.md and MODEL_CARD.md: one line saying what, where and how, the
    table (one row per model and data set) and its numbered notes."""
    lines = [(f"`{command}` on {date}: {machine}; TTA {tta}"
              f"{'' if tta == 'none' else ' (photos: none, as ferkit predict)'}. "
              "Each model under its own class prior, as `ferkit predict` runs it (named where it is not the "
              "training one). Accuracy with its bootstrap 95% interval; "
              "balanced accuracy = the mean of the per-class recalls (what a class-balanced test set would give); "
              "faces/s = images per second through the whole evaluation (decoding, preprocessing, the model; "
              "for photos also the face detector)."), "",
             "| model | data set | images | accuracy % (95% CI) | balanced acc. % | macro-F1 % | faces/s | notes |",
             "|---|---|---:|---|---:|---:|---:|---|"]
    notes: list[str] = []
    for r in rows:
        m = r.metrics
        ci = r.accuracy_ci
        acc = _pct(m["accuracy"]) + ("" if ci is None else f" ({_pct(ci[0])}-{_pct(ci[1])})")
        refs = []
        for text in r.notes():
            if text not in notes:
                notes.append(text)
            refs.append(str(notes.index(text) + 1))
        said = [f"= {', '.join(a for a in r.aliases if a != r.model)}"] if len(r.aliases) > 1 else []
        said += prior_words(m)
        model = r.model + (f" ({'; '.join(said)})" if said else "")
        lines.append(f"| {model} | {r.data.name} | {m['n_images']} | {acc} | {_pct(m['macro_recall'])} | "
                     f"{_pct(m['macro_f1'])} | "
                     f"{m['timing']['images_per_s']:.0f} | {', '.join(refs)} |")
    if notes:
        lines += [""] + [f"{i}. {text}" for i, text in enumerate(notes, 1)]
    lines += recall_table(rows, RECALL_DATA)
    return "\n".join(lines) + "\n"


#: the data set whose per-class recalls the benchmark block shows for every model (what a user's faces
#: are judged closest to: the FER+ crowd's majority labels)
RECALL_DATA = "FER+ test, 7 classes"


def recall_table(rows: Sequence[BenchmarkRow], data: str) -> list[str]:
    """Lines of a table of each model's recall per class on ``data`` ([] when no row is on it)."""
    on = [r for r in rows if r.data.name == data]
    if not on:
        return []
    classes = list(on[0].metrics["classes"])
    out = ["", f"Recall per class on {data} (%):", "",
           "| model | " + " | ".join(classes) + " |", "|---|" + "---:|" * len(classes)]
    for r in on:
        per = r.metrics["per_class"]
        out.append(f"| {r.model} | " + " | ".join(_pct((per.get(c) or {}).get("recall")) for c in classes) + " |")
    return out


def write_results(rows: Sequence[BenchmarkRow], out: str | os.PathLike[str] = "RESULTS.md", *, tta: str = "none",
                  command: str = "ferkit benchmark", info: dict[str, Any] | None = None) -> Path:
    """Write RESULTS.md atomically: a heading, the machine, the command and the table between the markers."""
    from ferkit._fileio import atomic_write_text

    info = info or machine_info()
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = results_markdown(rows, tta=tta, machine=info["machine"], date=date, command=command)
    load = "" if info.get("load_average") is None else (
        f"\n- load average when the run started: {info['load_average']} (other work on the machine slows faces/s)")
    text = (f"# ferkit benchmark\n\nWritten by `ferkit benchmark`; do not edit by hand (rerun the command). "
            f"The table between the markers is what `ferkit benchmark --update-docs` copies into README.md and "
            f"MODEL_CARD.md.\n\n- command: `{command}`\n- date: {date}\n- machine: {info['machine']}{load}\n\n"
            f"{_docblock.wrap(block, BLOCK)}")
    return atomic_write_text(out, text)


def check_markers(paths: Sequence[str | os.PathLike[str]]) -> None:
    """FerkitError (one line naming the file) unless each file exists and has one benchmark marker pair."""
    _docblock.check_markers(paths, BLOCK)


def copy_block(results: str | os.PathLike[str], targets: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Copy the marked table of ``results`` (RESULTS.md) into each target between its markers (the
    text around them kept), atomically; returns the files that changed."""
    return _docblock.copy_block(results, targets, BLOCK)
