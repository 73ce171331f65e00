"""Ensembles of trained FER models, as first-class models.

>>> from ferkit.ensemble import build_ensemble, save_ensemble
>>> ens, meta = build_ensemble(["vgg_fer.w15_fer2013", "vgg_fer.w2_votes"], "soft", fit="accuracy",
...                            data="../shared/data/fer2013", format="fer2013-folder", split="PublicTest")
>>> save_ensemble(ens, meta, "runs/my_ensemble/")        # then: ferkit predict --model runs/my_ensemble ...

Methods (:data:`METHODS`): ``soft`` (weighted averaging of probabilities, weights fitted on a
validation split for accuracy or log-loss), ``vote`` (hard majority, ties by summed probabilities),
``stack`` (logistic regression on the members' log-probabilities) and ``regions`` (majority over
members x the face and its five dlib-landmark regions, or with ``fit`` the members' probabilities on
their views averaged with fitted weights). ``ferkit ensemble report`` measures them
all, with each member and its test-time augmentation, in one table.
"""
from __future__ import annotations

from ferkit.data.regions import REGIONS, crop_landmarks, region_boxes
from ferkit.ensemble._build import build_ensemble, labelled_faces, labels_in, load_members, member_probabilities
from ferkit.ensemble.voting import (
    METHODS,
    OBJECTIVES,
    fit_stacking,
    fit_weights,
    majority_vote,
    soft_vote,
    stack_logits,
)
from ferkit.models import (
    ENSEMBLE_FORMAT,
    Ensemble,
    ensemble_input,
    ensemble_meta,
    is_ensemble_json,
    load_ensemble,
    save_ensemble,
)

__all__ = [
    "ENSEMBLE_FORMAT", "METHODS", "OBJECTIVES", "REGIONS", "Ensemble", "build_ensemble", "crop_landmarks",
    "ensemble_input", "ensemble_meta", "fit_stacking", "fit_weights", "is_ensemble_json", "labelled_faces",
    "labels_in", "load_ensemble", "load_members", "majority_vote", "member_probabilities", "region_boxes",
    "save_ensemble", "soft_vote", "stack_logits",
]
