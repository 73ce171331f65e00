"""What a paper's ensembles are measured from: each member's probabilities on every image.

A run that is a member of one of its paper's ensembles records, beside its row, its probabilities on
each image of the sets those ensembles are measured and fitted on (``outputs.npz``), on the views it
votes on: its own region for a model trained on one, the face and, as a whole-face member of a region
vote, each region it judges there (``ferkit.models.voting_views``). An ensemble row is then combined
from these arrays with the ensemble's own rules (``soft_vote``, ``majority_vote``, ``region_vote``)
and measured like a model (``ferkit.evaluate.evaluation_of_probs``), so its members need not be on
one machine at one time: ``runs/`` is not kept, and one ResNet50 trains for hours on a CPU. A shipped
member's outputs are computed when needed (its weights ship with ferkit).

``outputs.npz`` holds, per set, the image ids and one float16 ``(images, classes)`` array per view, and
a JSON ``meta`` (the sha256 of the weights, the ``limit``, the classes, the member's region, the
views, and per set its data and dlib's landmark counts); it is read with ``allow_pickle=False``.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.errors import ConfigError
from ferkit.papers._catalog import EvalSet, Paper, PaperEnsemble

__all__ = ["OUTPUTS", "MemberOutputs", "combine_outputs", "compute_outputs", "member_needs", "outputs_usable",
           "read_outputs", "write_outputs"]

OUTPUTS = "outputs.npz"
SCHEMA = "ferkit-outputs/1"
Say = Callable[[str], None]


def _views(paper: Paper, ens: PaperEnsemble) -> list[tuple[str, ...]]:
    """The views each member of ``ens`` votes on (a region member's own region, else the face)."""
    from ferkit.data.regions import REGIONS
    from ferkit.models import voting_views

    regions = [paper.run(m).region if m in paper.run_keys else None for m in ens.members]   # shipped: whole faces
    if ens.method == "regions":
        return voting_views(regions, REGIONS)
    return [(r or "face",) for r in regions]


def _fit_set(paper: Paper, ens: PaperEnsemble) -> EvalSet | None:
    """The set ``ens`` fits its weights on (its ``fit_split`` of the paper's first evaluation data)."""
    if ens.fit_split is None:
        return None
    data = paper.evals[0]
    return EvalSet(f"fit_{ens.fit_split}", f"{ens.fit_split} (fitting)", data.data, data.format, ens.fit_split)


def member_needs(paper: Paper, member: str) -> tuple[tuple[str, ...], tuple[EvalSet, ...]]:
    """The views and the sets ``member`` records outputs on: what every ensemble of ``paper`` it is
    in votes with and is measured or fitted on; no views when it is in none."""
    views: list[str] = []
    sets = {}
    for ens in paper.ensembles:
        if member not in ens.members:
            continue
        for v in _views(paper, ens)[ens.members.index(member)]:
            views += [] if v in views else [v]
        for s in (*paper.evals, _fit_set(paper, ens)):
            if s is not None:
                sets[s.key] = s
    return tuple(views), tuple(sets.values())


@dataclass
class MemberOutputs:
    """One member's recorded probabilities: ``probs[set key][view]`` (images, classes) for the images
    ``ids[set key]``, over ``classes``; ``landmarks[set key]`` dlib's counts where regions were cut."""
    name: str
    sha256: str
    limit: int | None
    classes: list[str]
    region: str | None
    input: dict[str, Any]                     # the member's input block (size, channels, ...)
    ids: dict[str, np.ndarray]
    probs: dict[str, dict[str, np.ndarray]]
    landmarks: dict[str, dict[str, int]]
    sets: dict[str, dict[str, str]]           # each set's data, format and split

    def covers(self, views: Sequence[str], sets: Sequence[EvalSet]) -> bool:
        """Whether these outputs hold ``views`` on each of ``sets`` (the same data, format and split)."""
        return all(self.sets.get(s.key) == _set_def(s) and all(v in self.probs[s.key] for v in views) for s in sets)


def _set_def(s: EvalSet) -> dict[str, str]:
    return {"data": str(s.data), "format": s.format, "split": s.split}


def compute_outputs(model: str, sha256: str, views: Sequence[str], sets: Sequence[EvalSet], limit: int | None,
                    say: Say) -> MemberOutputs:
    """``model``'s (a run folder or a shipped name; ``sha256`` of its weights) probabilities on ``views``
    of every image of ``sets``, as ensemble members see them (``ferkit.models.Ensemble``: each member's
    own preprocessing and temperature, a whole-face member's regions cut with dlib's landmarks)."""
    import torch

    from ferkit.ensemble import labelled_faces, load_members
    from ferkit.evaluate.inference import predict_logits
    from ferkit.models import Ensemble

    (net, meta), = load_members([model])
    ens = Ensemble([(net, meta)], "regions")
    member = ens.members[0]
    voted = ens.voting_views[0]     # a whole-face model alone: every view; a region model: its region
    if any(v not in voted for v in views):
        raise ConfigError(f"{model}: cannot record views {', '.join(views)} (a model trained on "
                          f"{member.region or 'whole faces'} votes on {', '.join(voted)})")
    cut = tuple(views) != ("face",)     # the face alone needs no landmarks

    class _Views(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ens = ens

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if cut:
                v = self.ens.region_votes(x)[0][[voted.index(name) for name in views]]   # (V, N, C)
            else:
                v = self.ens.member_probs(x)
            return v.permute(1, 0, 2).flatten(1)

    out = MemberOutputs(str(meta.get("name") or model), sha256, limit, list(ens.classes), member.region,
                        dict(meta["input"]), {}, {}, {}, {})
    for s in sets:
        say(f"ferkit: recording {out.name}'s outputs on {s.title} ({', '.join(views)})")
        faces, _ = labelled_faces(s.data, s.format, s.split, ens.classes, limit=limit)
        before = dict(ens.region_stats)
        with torch.inference_mode():
            logits, kept = predict_logits(_Views().eval(), ens.input_cfg, faces, batch_size=128, device="cpu")
        probs = logits[:, 0].reshape(len(kept), len(views), -1)
        out.ids[s.key] = faces.ids[kept]
        out.sets[s.key] = _set_def(s)
        out.probs[s.key] = {v: probs[:, i] for i, v in enumerate(views)}
        if cut:
            out.landmarks[s.key] = {k: v - before[k] for k, v in ens.region_stats.items()}
    return out


def write_outputs(out: MemberOutputs, row_dir: Path) -> Path:
    """``row_dir/outputs.npz``, written atomically (float16 probabilities: the vote and the fitted weights
    do not need more)."""
    from ferkit._fileio import atomic_path

    sets = {k: {**out.sets[k], "landmarks": out.landmarks.get(k), "views": list(v)} for k, v in out.probs.items()}
    meta = {"schema": SCHEMA, "name": out.name, "sha256": out.sha256, "limit": out.limit, "classes": out.classes,
            "region": out.region, "input": out.input, "sets": sets}
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta))}
    for key, views in out.probs.items():
        arrays[f"{key}/ids"] = out.ids[key]
        arrays.update({f"{key}/{v}": p.astype(np.float16) for v, p in views.items()})
    target = row_dir / OUTPUTS
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return target


def read_outputs(row_dir: Path, warn: Callable[[str], None]) -> MemberOutputs | None:
    """The outputs recorded in ``row_dir`` (None where there are none; a damaged file is one warning)."""
    import zipfile

    path = row_dir / OUTPUTS
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("schema") != SCHEMA:
                raise ValueError(f"schema {meta.get('schema')!r}, not {SCHEMA}")
            sets = meta["sets"]
            ids = {k: z[f"{k}/ids"] for k in sets}
            classes = [str(c) for c in meta["classes"]]
            probs = {}
            for k, d in sets.items():
                probs[k] = {v: z[f"{k}/{v}"].astype(np.float64) for v in d["views"]}
                if any(p.shape != (len(ids[k]), len(classes)) for p in probs[k].values()):
                    raise ValueError(f"set {k}: probabilities do not fit {len(ids[k])} images x {len(classes)} classes")
            return MemberOutputs(str(meta["name"]), str(meta["sha256"]), meta["limit"], classes, meta["region"],
                                 dict(meta["input"]), ids, probs,
                                 {k: d["landmarks"] for k, d in sets.items() if d.get("landmarks")},
                                 {k: {f: str(d[f]) for f in ("data", "format", "split")} for k, d in sets.items()})
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as e:
        warn(f"{path}: unreadable ({e}); not used")
        return None


def _aligned(members: Sequence[MemberOutputs], views: Sequence[tuple[str, ...]], key: str, ids: np.ndarray,
             classes: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The images of ``ids`` every member has outputs for, and each member's ``(V, K, C)`` probabilities
    on its views there, in ``classes`` order (renormalised where a member has more classes)."""
    have = np.ones(len(ids), bool)
    for m in members:
        have &= np.isin(ids, m.ids[key])
    kept = np.flatnonzero(have)
    if len(ids) and not len(kept):
        raise ConfigError(f"{key}: no image has every member's outputs ({', '.join(m.name for m in members)}); "
                          "record them again")
    rows = [{i: n for n, i in enumerate(m.ids[key])} for m in members]
    votes = []
    for m, pos, names in zip(members, rows, views):
        missing = [c for c in classes if c not in m.classes]
        if missing:
            raise ConfigError(f"{m.name}: no class {', '.join(missing)} (its classes: {', '.join(m.classes)})")
        cols = [m.classes.index(c) for c in classes]
        at = [pos[i] for i in ids[kept]]
        p = np.stack([m.probs[key][v][at][:, cols] for v in names])
        votes.append(p / np.clip(p.sum(-1, keepdims=True), 1e-12, None))
    return kept, votes


def combine_outputs(paper: Paper, ens: PaperEnsemble, members: Sequence[MemberOutputs], limit: int | None,
                    measure: Callable[[EvalSet, Any], None]) -> list[float] | None:
    """Fit ``ens``'s weights (when it fits them) on its members' outputs, then measure it on each of the
    paper's evaluation sets: ``measure(set, evaluation)`` writes its report. Returns the weights (None
    for a vote)."""
    from ferkit import __version__
    from ferkit.ensemble import labelled_faces, labels_in
    from ferkit.ensemble.voting import fit_weights
    from ferkit.evaluate import evaluation_of_probs, load_eval_data
    from ferkit.models import combine_votes, ensemble_input

    views = _views(paper, ens)
    classes = members[0].classes
    weights = None
    fit_set = _fit_set(paper, ens)
    if fit_set is not None:
        faces, _ = labelled_faces(fit_set.data, fit_set.format, fit_set.split, classes, limit=limit)
        kept, votes = _aligned(members, views, fit_set.key, faces.ids, classes)
        y = labels_in(faces, kept, classes)
        weights = [float(w) for w in fit_weights(np.stack([v.mean(0) for v in votes]), y, ens.fit)]
    elif ens.method == "soft":
        weights = [1.0 / len(members)] * len(members)
    key = json.dumps({"method": ens.method, "weights": weights, "members": [m.sha256 for m in members]})
    ident = {"name": f"{paper.key}_{ens.key}", "path": None, "arch": "ensemble",
             "sha256": hashlib.sha256(key.encode()).hexdigest(),
             "classes": list(classes), "input": ensemble_input([m.input for m in members]), "num_params": None,
             "temperature": None, "ferkit_version": __version__, "method": ens.method, "weights": weights,
             "members": [{"name": m.name, "sha256": m.sha256} for m in members]}
    for s in paper.evals:
        t0 = time.perf_counter()
        faces, info = load_eval_data(s.data, s.format, s.split, limit=limit)
        known = np.flatnonzero(np.isin(np.asarray(faces.classes)[faces.labels], classes))
        kept, votes = _aligned(members, views, s.key, faces.ids[known], classes)
        # the images of a class the ensemble lacks stay, to be left out and counted as for a model
        rows = np.sort(np.concatenate([known[kept], np.setdiff1d(np.arange(len(faces)), known)]))
        if len(kept) < len(known):
            info = dict(info, notes=[*info["notes"], f"{len(known) - len(kept)} images without every member's outputs "
                                     "(not decodable when they were recorded) were left out"])
        p = combine_votes(ens.method, votes, weights)
        ev = evaluation_of_probs(p.numpy(), classes, (faces.select(rows), info), ident, label=ident["name"],
                                 seconds=time.perf_counter() - t0)
        landmarks = next((m.landmarks[s.key] for m in members if s.key in m.landmarks), None)
        if landmarks is not None and ens.method == "regions":
            ev.metrics["region_landmarks"] = landmarks
        measure(s, ev)
    return weights


def outputs_usable(out: MemberOutputs | None, sha256: str | None, limit: int | None, views: Sequence[str],
                   sets: Sequence[EvalSet]) -> bool:
    """Whether ``out`` was recorded with these weights and ``limit`` and covers the views and sets."""
    return out is not None and out.sha256 == sha256 and out.limit == limit and out.covers(views, sets)
