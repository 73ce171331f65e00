"""Drawing. The only package that renders images or plots; it takes plain data, never runs a model."""
from ferkit.viz.plots import plot_training_curves

__all__ = ["plot_training_curves"]
