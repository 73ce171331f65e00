"""`FERLitModule`: the training system (network + loss + metrics + optimiser + schedule).

The network is built by name with `ferkit.models.create_model`, so checkpoints hold only plain
hyper-parameters and describe themselves. Training phases (e.g. head only -> layer4 -> all) are
parameter groups whose learning rate is zero outside their phases: the optimiser is the same
object for the whole run, which keeps resume and DDP simple.
"""
from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from ferkit.data.transforms import BatchAugment
from ferkit.errors import ConfigError
from ferkit.models import create_model
from ferkit.train.config import PhaseConfig, TrainConfig
from ferkit.train.datamodule import mix_seed


def phase_lr_factor(cfg: TrainConfig, phase: PhaseConfig, step_in_phase: int, steps_in_phase: int,
                    steps_per_epoch: int) -> float:
    """Learning rate (absolute) at a step within a phase, under the configured schedule."""
    s = cfg.schedule
    t = step_in_phase / max(1, steps_in_phase)
    lr = float(phase.lr)
    if s.name == "onecycle":  # cosine up from lr/25 to lr, then cosine down to lr/1e4 (as torch's OneCycleLR)
        if t < s.pct_start:
            u = t / s.pct_start
            return lr / 25 + (lr - lr / 25) * (1 - math.cos(math.pi * u)) / 2
        u = (t - s.pct_start) / max(1e-8, 1 - s.pct_start)
        return lr / 1e4 + (lr - lr / 1e4) * (1 + math.cos(math.pi * u)) / 2
    if s.warmup > 0 and t < s.warmup:
        return lr * (step_in_phase + 1) / max(1, s.warmup * steps_in_phase)
    if s.name == "constant":
        return lr
    if s.name == "step":
        return lr * s.gamma ** ((step_in_phase // max(1, steps_per_epoch)) // max(1, s.step_epochs))
    lo = lr * s.final_lr_fraction
    u = (t - s.warmup) / max(1e-8, 1 - s.warmup)
    if s.name == "linear":
        return lr - (lr - lo) * u
    return lo + (lr - lo) * (1 + math.cos(math.pi * u)) / 2  # cosine


def trainable_prefixes(spec: Any, head: str) -> list[str] | None:
    """None = everything; else parameter-name prefixes ('head' -> the model's classifier)."""
    items = [spec] if isinstance(spec, str) else list(spec)
    if "all" in items:
        return None
    return [head if p == "head" else p for p in items]


class FERLitModule(L.LightningModule):
    def __init__(self, config: dict[str, Any], classes: list[str], class_weights: list[float] | None = None,
                 class_prior: list[float] | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = TrainConfig.from_dict(config)
        self.classes = list(classes)
        c = self.cfg
        self.net = create_model(c.model.name, num_classes=len(classes), in_chans=c.input.channels,
                                pretrained=c.model.pretrained, drop_rate=c.model.drop_rate, **c.model.kwargs)
        self.register_buffer("loss_weights", torch.tensor(class_weights) if class_weights else None, persistent=False)
        adjust = None
        if c.loss.logit_adjust:
            if class_prior is None:
                raise ConfigError("loss.logit_adjust needs the class prior of the training set")
            adjust = c.loss.logit_adjust * torch.log(torch.tensor(class_prior).clamp_min(1e-6))
        self.register_buffer("logit_adjustment", adjust, persistent=False)
        self.batch_augment = BatchAugment(c.input, c.augment) if c.augment.batch else None
        self.memory_format = torch.channels_last if c.trainer.channels_last else torch.contiguous_format
        if c.trainer.channels_last:
            self.net.to(memory_format=torch.channels_last)
        n = len(classes)
        self.train_acc = MulticlassAccuracy(n, average="micro")
        self.val_acc = MulticlassAccuracy(n, average="micro")
        self.val_f1 = MulticlassF1Score(n, average="macro")
        self.phases = c.resolved_phases()
        head = getattr(self.net, "ferkit_head", "")
        self._phase_prefixes = [trainable_prefixes(p.trainable, head) for p in self.phases]
        unmatched = [pre for prefs in self._phase_prefixes if prefs for pre in prefs
                     if not any(name.startswith(pre) for name, _ in self.net.named_parameters())]
        if unmatched:
            raise ConfigError(f"phases: trainable {', '.join(sorted(set(unmatched)))} matches no parameter of "
                              f"{c.model.name}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=self.memory_format))

    # ------------------------------------------------------------------ phases
    def _trainable(self, name: str, phase: int) -> bool:
        prefs = self._phase_prefixes[phase]
        return prefs is None or any(name.startswith(p) for p in prefs)

    def phase_of_epoch(self, epoch: int) -> int:
        end = 0
        for i, p in enumerate(self.phases):
            end += p.epochs
            if epoch < end:
                return i
        return len(self.phases) - 1

    def on_train_epoch_start(self) -> None:
        # Freezing by requires_grad saves backward work on one device; under DDP the gradients of
        # all parameters must stay registered, and the zero learning rate alone freezes them.
        if self.trainer.world_size == 1:
            phase = self.phase_of_epoch(self.current_epoch)
            for name, p in self.net.named_parameters():
                p.requires_grad_(self._trainable(name, phase))

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # dropout / mixup randomness fixed by (seed, step): resumed runs replay it exactly
        torch.manual_seed(mix_seed(self.cfg.seed, 7919, self.global_step))

    def export_net(self) -> torch.nn.Module:
        """The network as it is saved: with logit adjustment, a copy whose last linear layer's bias
        adds ``tau * log(prior)``, so that the saved model gives the usual posterior."""
        if self.logit_adjustment is None:
            return self.net
        import copy

        net = copy.deepcopy(self.net)
        last = [m for m in net.modules() if isinstance(m, torch.nn.Linear) and m.out_features == len(self.classes)]
        if not last or last[-1].bias is None:
            raise ConfigError(f"loss.logit_adjust: {self.cfg.model.name} has no final linear layer with a bias")
        with torch.no_grad():
            last[-1].bias.add_(self.logit_adjustment.to(last[-1].bias))
        return net

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.batch_augment is None or batch is None or not self.trainer.training:
            return batch
        x, y = batch
        g = torch.Generator(device=x.device).manual_seed(mix_seed(self.cfg.seed, 104729, self.global_step))
        return self.batch_augment(x, g), y

    # ------------------------------------------------------------------ steps
    def _mix(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mixup / cutmix on a batch; targets become distributions."""
        lc = self.cfg.loss
        if not (lc.mixup or lc.cutmix):
            return x, y
        if y.ndim == 1:
            y = F.one_hot(y, len(self.classes)).float()
        use_cutmix = lc.cutmix > 0 and (lc.mixup == 0 or torch.rand(()) < 0.5)
        alpha = lc.cutmix if use_cutmix else lc.mixup
        lam = float(torch.distributions.Beta(alpha, alpha).sample())
        perm = torch.randperm(x.shape[0], device=x.device)
        if use_cutmix:
            h, w = x.shape[-2:]
            rh, rw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
            cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
            y0, y1, x0, x1 = max(cy - rh // 2, 0), min(cy + rh // 2, h), max(cx - rw // 2, 0), min(cx + rw // 2, w)
            x = x.clone()
            x[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
            lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
        else:
            x = lam * x + (1 - lam) * x[perm]
        return x, lam * y + (1 - lam) * y[perm]

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, weight=self.loss_weights, label_smoothing=self.cfg.loss.label_smoothing)

    @staticmethod
    def _hard(y: torch.Tensor) -> torch.Tensor:
        return y.argmax(1) if y.ndim == 2 else y

    def training_step(self, batch: Any, batch_idx: int):
        if batch is None:  # every image of the batch was unreadable
            return None
        x, y = batch
        xm, ym = self._mix(x, y)
        logits = self(xm)
        loss = self._loss(logits if self.logit_adjustment is None else logits + self.logit_adjustment, ym)
        self.train_acc(logits.detach().argmax(1), self._hard(y))
        bs = x.shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=bs, sync_dist=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=bs)
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=True, on_epoch=False, batch_size=bs)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        if batch is None:
            return
        x, y = batch
        logits = self(x)
        if self.logit_adjustment is not None:  # the posterior under the training prior, as the saved model gives
            logits = logits + self.logit_adjustment
        loss = self._loss(logits, y)
        preds, target = logits.argmax(1), self._hard(y)
        self.val_acc(preds, target)
        self.val_f1(preds, target)
        bs = x.shape[0]
        self.log("val/loss", loss, on_epoch=True, prog_bar=True, batch_size=bs, sync_dist=True)
        self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True, batch_size=bs)
        self.log("val/macro_f1", self.val_f1, on_epoch=True, batch_size=bs)

    # ------------------------------------------------------------------ optimiser
    def _steps_per_epoch(self) -> int:
        """Optimiser steps per epoch. Not `trainer.estimated_stepping_batches`: that builds the train
        loader before a resumed run has restored its epoch counter."""
        t = self.trainer
        n = t.datamodule.train_batches_per_epoch(t.world_size)
        limit = t.limit_train_batches
        if isinstance(limit, int):
            n = min(n, limit)
        elif limit is not None:
            n = int(n * limit)
        return max(1, n // max(1, t.accumulate_grad_batches))

    def configure_optimizers(self):
        o = self.cfg.optim
        n_phases = len(self.phases)
        groups: dict[tuple[bool, ...], list[torch.nn.Parameter]] = {}
        for name, p in self.net.named_parameters():
            key = tuple(self._trainable(name, i) for i in range(n_phases))
            groups.setdefault(key, []).append(p)
        keys = list(groups)
        param_groups = [{"params": groups[k], "lr": 1.0} for k in keys]
        if o.name == "sgd":
            opt = torch.optim.SGD(param_groups, lr=1.0, momentum=o.momentum, nesterov=o.nesterov and o.momentum > 0,
                                  weight_decay=o.weight_decay)
        elif o.name == "adam":
            opt = torch.optim.Adam(param_groups, lr=1.0, weight_decay=o.weight_decay)
        else:
            opt = torch.optim.AdamW(param_groups, lr=1.0, weight_decay=o.weight_decay)

        spe = self._steps_per_epoch()
        bounds = []
        start = 0
        for p in self.phases:
            bounds.append((start, p.epochs * spe))
            start += p.epochs * spe

        def make_lambda(key: tuple[bool, ...]):
            def lr_at(step: int) -> float:
                for i, (s0, n) in enumerate(bounds):
                    if step < s0 + n or i == len(bounds) - 1:
                        return phase_lr_factor(self.cfg, self.phases[i], min(step - s0, n), n, spe) if key[i] else 0.0
                return 0.0
            return lr_at

        sched = torch.optim.lr_scheduler.LambdaLR(opt, [make_lambda(k) for k in keys])
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
