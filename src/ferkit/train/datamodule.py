"""`FERDataModule`: the dataset, its split into train/val, transforms and data loaders.

Reproducibility: the order of samples and the random augmentation of each sample depend only on
(seed, epoch, sample index), not on process history, so a run resumed after ``kill -9`` replays an
interrupted epoch exactly as an uninterrupted run would, and DDP ranks see disjoint shards.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from ferkit.data import (
    FaceSet,
    class_weights,
    kfold_splits,
    load_dataset,
    mix_ferplus_votes,
    stratified_split,
    stratified_subset,
)
from ferkit.data.transforms import eval_transform, model_size_transform, train_transform
from ferkit.errors import DataError
from ferkit.train.config import TrainConfig

log = logging.getLogger("ferkit")


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix-style), stable across processes and runs."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


class FaceDataset(Dataset):
    """Samples of a FaceSet through a transform. Items are (image tensor, target); the target is a
    class index, or a float distribution when the FaceSet has soft targets. An image that cannot
    be decoded yields None (dropped by `collate_skip_none`) with a warning naming the file."""

    def __init__(self, faces: FaceSet, transform: Any):
        self.faces, self.transform = faces, transform
        self.soft = faces.soft is not None

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, key: int | tuple[int, int]):
        index, seed = key if isinstance(key, tuple) else (key, None)
        try:
            img = self.faces.load_image(index)
        except DataError as e:
            log.warning("skipped: %s", e)
            return None
        if seed is None:
            x = self.transform(img)
        else:  # augmentation randomness fixed by (seed, epoch, index)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                x = self.transform(img)
        y = torch.from_numpy(self.faces.soft[index]) if self.soft else int(self.faces.labels[index])
        return x, y


def collate_skip_none(batch: list):
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    return default_collate(batch)


class EpochSampler(Sampler):
    """Shuffled (or class-balanced) order fixed by (seed, epoch), sharded over DDP ranks.

    Yields (index, augmentation seed) pairs when ``augment_seeds`` is set. The epoch is read from
    the trainer's loop state when a trainer is attached, so a resumed run gets the right order
    even before Lightning calls `set_epoch`."""

    def __init__(self, n: int, *, seed: int, shuffle: bool, weights: np.ndarray | None = None,
                 rank: int = 0, world_size: int = 1, augment_seeds: bool = False):
        self.n, self.seed, self.shuffle, self.weights = n, seed, shuffle, weights
        self.rank, self.world_size, self.augment_seeds = rank, world_size, augment_seeds
        self.epoch = 0
        self.trainer: L.Trainer | None = None
        self.per_rank = math.ceil(n / world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _current_epoch(self) -> int:
        if self.trainer is not None:
            return int(self.trainer.fit_loop.epoch_progress.current.processed)
        return self.epoch

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self):
        epoch = self._current_epoch()
        g = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
        if self.weights is not None:
            order = torch.multinomial(torch.as_tensor(self.weights, dtype=torch.double), self.n, True, generator=g)
        elif self.shuffle:
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        order = order.tolist()
        total = self.per_rank * self.world_size
        order += order[: total - len(order)]  # pad so every rank gets the same count
        for i in order[self.rank:total:self.world_size]:
            yield (i, mix_seed(self.seed, epoch, i)) if self.augment_seeds else i


class FERDataModule(L.LightningDataModule):
    def __init__(self, cfg: TrainConfig):
        super().__init__()
        self.cfg = cfg
        self.train_set: FaceSet | None = None
        self.val_set: FaceSet | None = None

    # ---------------------------------------------------------------- data
    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        d = self.cfg.data
        faces = load_dataset(
            d.path, d.format, classes=d.classes, label_mode=d.label_mode, ferplus_classes=d.ferplus_classes,
            group_regex=d.group_regex, cache_dir=d.cache_dir,
        )
        seed = self.cfg.seed
        if d.split.method == "dataset":
            train, val = faces.split(d.train_split), faces.split(d.val_split)
        else:
            base = faces.split(d.train_split) if d.train_split in faces.split_names() else faces
            if d.split.method == "stratified":
                ti, vi = stratified_split(base.labels, d.split.val_fraction, seed)
            else:
                ti, vi = kfold_splits(base.labels, d.split.folds, seed, groups=base.groups)[d.split.fold]
            train, val = base.select(ti), base.select(vi)
        if d.subset:
            train = train.select(stratified_subset(train.labels, min(d.subset, len(train)), seed))
        if d.val_subset:
            val = val.select(stratified_subset(val.labels, min(d.val_subset, len(val)), seed))
        if d.ferplus_votes:  # soft targets for training only: validation keeps the dataset's labels
            train = mix_ferplus_votes(train, d.ferplus_votes, d.ferplus_map, weight=d.ferplus_weight)
            log.info("%s", train.notes[-1])
        for name, part in (("training", train), ("validation", val)):
            if len(part) == 0:
                raise DataError(f"{d.path}: the {name} split is empty")
        if d.in_memory:
            train, val = train.decoded(), val.decoded()
        if self.cfg.input.region:
            from ferkit.data.regions import region_faceset

            train, val = (region_faceset(part, self.cfg.input, cache_dir=d.cache_dir, log=log.info)
                          for part in (train, val))
            log.info("%s", train.notes[-1])
        self.classes = list(faces.classes)
        self.train_set, self.val_set = train, val

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_prior(self) -> list[float]:
        """Class frequencies of the training targets (soft targets averaged when there are any)."""
        assert self.train_set is not None
        t = self.train_set
        p = t.soft.mean(axis=0) if t.soft is not None else np.bincount(t.labels, minlength=self.num_classes) / len(t)
        return [float(v) for v in p]

    def class_weights(self) -> torch.Tensor:
        assert self.train_set is not None
        return torch.as_tensor(class_weights(self.train_set.labels, self.num_classes))

    def train_batches_per_epoch(self, world_size: int = 1) -> int:
        """Batches per epoch on each rank (as `_loader` builds them), without creating a loader:
        an early train loader would fix its sample order before a resumed run restores its epoch."""
        assert self.train_set is not None
        per_rank = math.ceil(len(self.train_set) / world_size)
        bs = self.cfg.data.batch_size
        drop_last = len(self.train_set) > bs * world_size
        return per_rank // bs if drop_last else math.ceil(per_rank / bs)

    # ---------------------------------------------------------------- loaders
    def _workers(self) -> int:
        n = self.cfg.data.num_workers
        return min(4, max(0, (os.cpu_count() or 1) - 1)) if n < 0 else n

    def _loader(self, faces: FaceSet, transform: Any, train: bool) -> DataLoader:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        weights = None
        if train and self.cfg.data.balance == "sampler":
            weights = class_weights(faces.labels, self.num_classes)[faces.labels]
        # per-image augmentation seeds only where the loader augments (batch mode draws on the device)
        sampler = EpochSampler(len(faces), seed=self.cfg.seed, shuffle=train, weights=weights, rank=rank,
                               world_size=world, augment_seeds=train and not self.cfg.augment.batch)
        if train:
            sampler.trainer = trainer
        workers = self._workers()
        return DataLoader(
            FaceDataset(faces, transform), batch_size=self.cfg.data.batch_size, sampler=sampler,
            num_workers=workers, collate_fn=collate_skip_none,
            drop_last=train and len(faces) > self.cfg.data.batch_size * world,
            persistent_workers=False, pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        if self.cfg.augment.batch:  # uint8 images at the model's size; FERLitModule augments on the device
            return self._loader(self.train_set, model_size_transform(self.cfg.input), True)
        return self._loader(self.train_set, train_transform(self.cfg.input, self.cfg.augment), True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, eval_transform(self.cfg.input), False)
