"""Training configuration: YAML files in ``configs/`` plus ``key.sub=value`` command-line overrides.

The config is a tree of dataclasses, so every key is documented here, typos are errors that name
the key, and the resolved config (defaults filled in) is written into each run folder.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

from ferkit.errors import ConfigError

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


@dataclass
class SplitConfig:
    #: "dataset" (the dataset's own train/val splits), "stratified" (a random stratified
    #: hold-out from train_split) or "kfold" (fold `fold` of `folds` stratified folds,
    #: identity-disjoint when `group_regex` is set).
    method: str = "dataset"
    val_fraction: float = 0.1
    folds: int = 5
    fold: int = 0


@dataclass
class DataConfig:
    path: str = "../shared/data/fer2013"
    #: fer2013-csv | fer2013-folder | ferplus | folder | auto
    format: str = "auto"
    train_split: str = "Training"
    val_split: str = "PublicTest"
    #: keep only these classes (names or aliases), e.g. [angry, disgust, fear, happy, sad, surprise]
    classes: list[str] | None = None
    #: FER+ labels: majority | plurality | probability (soft targets from the votes)
    label_mode: str = "majority"
    #: FER+ classes: 8 (with contempt) or 7 (mapped onto FER2013's classes)
    ferplus_classes: int = 8
    #: regex whose first group is the subject id in a file name, e.g. 'S(\d+)_' for CK+
    group_regex: str | None = None
    split: SplitConfig = field(default_factory=SplitConfig)
    #: train on a stratified subset of this many training images (quick runs, tests)
    subset: int | None = None
    val_subset: int | None = None
    #: rare classes: none | weights (class-weighted loss) | sampler (balanced sampling)
    balance: str = "none"
    #: FER+ root whose votes become soft targets for the same FER2013 images (see ferplus_map)
    ferplus_votes: str | None = None
    #: ``fer2013_file,ferplus_file`` CSV pairing the images (../shared/data/fer2013_ferplus_map.csv)
    ferplus_map: str | None = None
    #: weight of the dataset's own labels in the mixed targets (0 = FER+ votes alone where present)
    ferplus_weight: float = 0.5
    batch_size: int = 64
    #: decode every image once into memory before training (small same-size sets: FER2013, FER+)
    in_memory: bool = False
    #: DataLoader worker processes; -1 = one per spare CPU core (at most 4)
    num_workers: int = -1
    cache_dir: str | None = None


@dataclass
class InputConfig:
    size: int = 48
    #: 1 = grayscale, 3 = RGB
    channels: int = 1
    mean: list[float] = field(default_factory=lambda: [0.5])
    std: list[float] = field(default_factory=lambda: [0.5])
    #: train on one facial region cut out with dlib landmarks (left_eye, right_eye, nose, mouth, rest),
    #: for region voting; None = the whole face
    region: str | None = None


@dataclass
class AugmentConfig:
    hflip: bool = True
    #: max rotation in degrees
    rotation: float = 10.0
    #: max shift as a fraction of the size
    shift: float = 0.1
    #: max zoom in or out, as a fraction (0.1 -> scale 0.9..1.1)
    zoom: float = 0.1
    #: shear in degrees (part of the random affine)
    shear: float = 0.0
    brightness: float = 0.2
    contrast: float = 0.2
    #: random crop of `size` after padding by this many pixels (0 = off)
    crop_padding: int = 0
    #: random resized crop with this minimum area fraction (0 = off)
    resized_crop: float = 0.0
    #: random erasing probability
    erasing: float = 0.0
    #: augment whole batches on the training device (GPU or CPU) after the transfer instead of
    #: each image in the loader workers (fast on a GPU; needed for gamma/blur/downscale/noise)
    batch: bool = False
    #: max log-gamma change (0.3 -> gamma in exp(+-0.3)); batch mode only
    gamma: float = 0.0
    #: probability of a Gaussian blur (sigma 0.3-1 px); batch mode only
    blur: float = 0.0
    #: probability of a low-resolution copy (half the side to the full side); batch mode only
    downscale: float = 0.0
    #: max std of additive Gaussian noise, as a fraction of the range; batch mode only
    noise: float = 0.0


@dataclass
class ModelConfig:
    name: str = "resnet18"
    #: false | true (torchvision ImageNet weights from TORCH_HOME) | path to a local weights file
    pretrained: Any = False
    drop_rate: float = 0.0
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: the run's model.safetensors predicts only these of the trained classes (its head's rows, in this
    #: order; ``ferkit.models.restrict_classes``): train on FER+'s 8, ship FER2013's 7. None: all of them
    export_classes: list[str] | None = None


@dataclass
class OptimConfig:
    #: adam | adamw | sgd
    name: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    nesterov: bool = True


@dataclass
class ScheduleConfig:
    #: constant | cosine | onecycle | step | linear
    name: str = "cosine"
    #: fraction of each phase spent warming up linearly (cosine/linear/constant)
    warmup: float = 0.0
    #: step schedule: multiply by gamma every step_epochs epochs
    step_epochs: int = 10
    gamma: float = 0.1
    #: onecycle: fraction of the phase rising to the peak
    pct_start: float = 0.25
    #: the lr at the end of a cosine/linear phase, as a fraction of the phase's lr
    final_lr_fraction: float = 0.0


@dataclass
class PhaseConfig:
    epochs: int = 1
    lr: float | None = None
    #: parameter-name prefixes to train ("head" = the classifier, "layer4", ...) or "all"
    trainable: Any = "all"


@dataclass
class LossConfig:
    label_smoothing: float = 0.0
    #: mixup alpha (0 = off)
    mixup: float = 0.0
    #: cutmix alpha (0 = off)
    cutmix: float = 0.0
    #: logit adjustment (Menon et al. 2021): train on logits + tau * log(class prior), so that the
    #: network learns class-balanced scores; the saved model adds the prior back (the usual
    #: posterior), and `prior="uniform"` at inference removes it. 0 = off, 1 = the paper's tau.
    logit_adjust: float = 0.0


@dataclass
class EarlyStoppingConfig:
    enabled: bool = True
    monitor: str = "val/acc"
    patience: int = 10
    min_delta: float = 0.0


@dataclass
class TrainerConfig:
    #: epochs when no phases are given; with phases, a cap on the phases' total (the schedule keeps its plan)
    max_epochs: int = 30
    #: auto | cpu | gpu | cuda | mps
    accelerator: str = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    #: auto | ddp | ddp_spawn | ...
    strategy: str = "auto"
    #: auto (bf16-mixed on a GPU or CPU that runs bf16 natively: AVX512-BF16 or AMX; else 16-mixed on a GPU,
    #: 32 on a CPU) | 32 | 16-mixed | bf16-mixed
    precision: str = "auto"
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    log_every_n_steps: int = 20
    progress_bar: bool = True
    tensorboard: bool = False
    gradient_clip_val: float | None = None
    #: torch threads on CPU (None = torch's default)
    threads: int | None = None
    #: keep the network and its batches in channels-last memory format (oneDNN's preferred layout:
    #: vgg_fer w2 trained 20% faster on an AVX2 CPU; the saved weights are the same either way)
    channels_last: bool = False



#: the configs shipped in the package (``src/ferkit/configs``; ``configs/`` in the repository points there)
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def shipped_configs() -> list[str]:
    """Names of the configs shipped in the package (those starting with ``_`` are bases of others)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def shipped_config(name: str | Path) -> Path:
    """The file of a shipped config by name (``quick_resnet18`` or ``quick_resnet18.yaml``); ConfigError
    naming the known ones otherwise."""
    text = str(name)
    stem = text.removesuffix(".yaml")
    path = CONFIG_DIR / f"{stem}.yaml"
    if "/" in text or os.sep in text or not path.is_file():
        known = ", ".join(n for n in shipped_configs() if not n.startswith("_"))
        raise ConfigError(f"{text}: no such config file, nor a shipped config (shipped: {known})")
    return path


@dataclass
class TrainConfig:
    name: str = "run"
    seed: int = 42
    #: runs are written to <output_dir>/<name>-<timestamp>/
    output_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    input: InputConfig = field(default_factory=InputConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    #: training phases; empty = one phase of trainer.max_epochs at optim.lr, all trainable
    phases: list[PhaseConfig] = field(default_factory=list)
    loss: LossConfig = field(default_factory=LossConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    # ------------------------------------------------------------------ helpers
    def resolved_phases(self) -> list[PhaseConfig]:
        if not self.phases:
            return [PhaseConfig(epochs=self.trainer.max_epochs, lr=self.optim.lr, trainable="all")]
        return [PhaseConfig(p.epochs, self.optim.lr if p.lr is None else p.lr, p.trainable) for p in self.phases]

    @property
    def total_epochs(self) -> int:
        return sum(p.epochs for p in self.resolved_phases())

    @property
    def planned_epochs(self) -> int:
        """The epochs a run trains: its phases' sum, cut at ``trainer.max_epochs`` when there are phases."""
        return min(self.total_epochs, self.trainer.max_epochs) if self.phases else self.total_epochs

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> TrainConfig:
        cfg = _build(cls, d, source, "")
        cfg.validate(source)
        return cfg

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
        """Read a YAML config (or start from the defaults) and apply ``a.b=value`` overrides.

        ``path`` is a YAML file, or the name of a config shipped in the package (``shipped_configs()``:
        the papers' recipes and the shipped models' own, e.g. ``"paper4_resnet18_gray_layer4"``)."""
        d: dict[str, Any] = {}
        source = "config"
        if path is not None:
            p = Path(path)
            if not p.is_file():
                p = shipped_config(path)
            source = str(p)
            try:
                d = yaml.safe_load(p.read_text()) or {}
            except yaml.YAMLError as e:
                raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
            if not isinstance(d, dict):
                raise ConfigError(f"{p}: the top level must be a mapping of keys to values")
            base = d.pop("base", None)  # configs may extend another config
            if base:
                parent = cls.load(p.parent / base).to_dict()
                d = _merge(parent, d)
        for ov in overrides or []:
            _apply_override(d, ov)
        return cls.from_dict(d, source)

    def validate(self, source: str = "config") -> None:
        def check(key: str, value: Any, allowed: tuple) -> None:
            if value not in allowed:
                raise ConfigError(f"{source}: {key}={value!r} is not one of {', '.join(map(str, allowed))}")

        check("data.format", self.data.format, ("auto", "fer2013-csv", "fer2013-folder", "ferplus", "folder"))
        check("data.label_mode", self.data.label_mode, ("majority", "plurality", "probability"))
        check("data.ferplus_classes", self.data.ferplus_classes, (7, 8))
        check("data.split.method", self.data.split.method, ("dataset", "stratified", "kfold"))
        check("data.balance", self.data.balance, ("none", "weights", "sampler"))
        check("input.channels", self.input.channels, (1, 3))
        if self.input.region is not None:
            from ferkit.data.regions import check_region

            check_region(self.input.region, f"{source}: input.region")
        check("optim.name", self.optim.name, ("adam", "adamw", "sgd"))
        check("schedule.name", self.schedule.name, ("constant", "cosine", "onecycle", "step", "linear"))
        check("trainer.precision", str(self.trainer.precision),
              ("auto", "32", "32-true", "16-mixed", "bf16-mixed", "16", "bf16"))
        if len(self.input.mean) != self.input.channels or len(self.input.std) != self.input.channels:
            raise ConfigError(f"{source}: input.mean and input.std need {self.input.channels} values for "
                              f"{self.input.channels} channel(s)")
        a = self.augment
        if not a.batch:
            extra = [k for k in ("gamma", "blur", "downscale", "noise") if getattr(a, k)]
            if extra:
                raise ConfigError(f"{source}: augment.{extra[0]} needs augment.batch: true")
        elif a.resized_crop or a.crop_padding:
            raise ConfigError(f"{source}: augment.batch: true does not do resized_crop or crop_padding "
                              "(use zoom and shift)")
        if self.data.ferplus_votes and not self.data.ferplus_map:
            raise ConfigError(f"{source}: data.ferplus_votes needs data.ferplus_map (fer2013_file,ferplus_file CSV)")
        if self.loss.logit_adjust < 0:
            raise ConfigError(f"{source}: loss.logit_adjust must be >= 0")
        from ferkit.models import model_kwargs_problem

        problem = model_kwargs_problem({"drop_rate": self.model.drop_rate, **self.model.kwargs}, "model.kwargs")
        if problem:
            raise ConfigError(f"{source}: {problem}")
        if self.input.size < 16:
            raise ConfigError(f"{source}: input.size={self.input.size} is too small (at least 16)")
        if self.data.batch_size < 1:
            raise ConfigError(f"{source}: data.batch_size must be at least 1")
        if self.data.split.method == "kfold" and not 0 <= self.data.split.fold < self.data.split.folds:
            raise ConfigError(f"{source}: data.split.fold={self.data.split.fold} not in 0..{self.data.split.folds - 1}")
        for i, p in enumerate(self.resolved_phases()):
            if p.epochs < 1:
                raise ConfigError(f"{source}: phases[{i}].epochs must be at least 1")


# ---------------------------------------------------------------------- building from dicts
def _build(cls: type, d: Any, source: str, prefix: str) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'top level'} must be a mapping, got {d!r}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in d.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            raise ConfigError(f"{source}: unknown key {prefix}{key}{hint}")
        kwargs[key] = _coerce(hints[key], value, source, f"{prefix}{key}")
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, source: str, key: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, source, key + ".")
    origin, args = get_origin(tp), get_args(tp)
    if origin is list and args and dataclasses.is_dataclass(args[0]):
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} must be a list")
        return [_build(args[0], v, source, f"{key}[{i}].") for i, v in enumerate(value)]
    if value is None:
        return None
    base = [a for a in args if a is not type(None)] if args else [tp]
    if float in base and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if base == [int] and not isinstance(value, int):
        raise ConfigError(f"{source}: {key} must be an integer, got {value!r}")
    if bool in base and not isinstance(value, bool):
        raise ConfigError(f"{source}: {key} must be true or false, got {value!r}")
    if str in base and len(base) == 1 and not isinstance(value, str):
        return str(value)
    return value


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _apply_override(d: dict, override: str) -> None:
    if "=" not in override:
        raise ConfigError(f"override {override!r}: expected key=value, e.g. trainer.max_epochs=5")
    key, raw = override.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    parts = key.strip().split(".")
    node = d
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value
