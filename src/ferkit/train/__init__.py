"""Training on PyTorch Lightning: configs, data module, training system, run folders."""
from ferkit.train.callbacks import read_epoch_metrics
from ferkit.train.config import TrainConfig
from ferkit.train.run import train

__all__ = ["TrainConfig", "read_epoch_metrics", "train"]
