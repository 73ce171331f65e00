"""Training on PyTorch Lightning: configs, data module, training system, run folders."""
from ferkit.train.config import TrainConfig
from ferkit.train.run import train

__all__ = ["TrainConfig", "train"]
