"""Datasets: loaders for FER2013 (CSV and folders), FER+ and class-per-folder sets, all returning a
:class:`FaceSet`, plus split helpers. Importing this package needs numpy and Pillow only."""
from __future__ import annotations

from ferkit.data.faceset import FaceSet
from ferkit.data.labels import FER2013_CLASSES, FERPLUS_CLASSES, normalize_class_name
from ferkit.data.loaders import (
    FORMATS,
    load_dataset,
    load_fer2013_csv,
    load_fer2013_folder,
    load_ferplus,
    load_image_folder,
    mix_ferplus_votes,
)
from ferkit.data.splits import class_weights, kfold_splits, stratified_split, stratified_subset, subject_ids

__all__ = [
    "FER2013_CLASSES",
    "FERPLUS_CLASSES",
    "FORMATS",
    "FaceSet",
    "class_weights",
    "kfold_splits",
    "load_dataset",
    "load_fer2013_csv",
    "load_fer2013_folder",
    "load_ferplus",
    "load_image_folder",
    "mix_ferplus_votes",
    "normalize_class_name",
    "stratified_split",
    "stratified_subset",
    "subject_ids",
]
