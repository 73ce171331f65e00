"""Drawing. The only package that renders images or plots; it takes plain data, never runs a model."""
from ferkit.viz.annotate import (
    BoxAnnotator,
    LabelAnnotator,
    LandmarkAnnotator,
    ProbabilityBarAnnotator,
    annotate,
    draw_fps,
    emotion_color,
)
from ferkit.viz.cam import draw_heatmaps, heatmap_to_rgb
from ferkit.viz.plots import plot_track_emotions, plot_training_curves
from ferkit.viz.report_plots import (
    plot_accuracy_vs_latency,
    plot_confusion_matrix,
    plot_prediction_grid,
    plot_reliability_diagram,
    plot_roc_curves,
)

__all__ = [
    "BoxAnnotator",
    "LabelAnnotator",
    "LandmarkAnnotator",
    "ProbabilityBarAnnotator",
    "annotate",
    "draw_fps",
    "draw_heatmaps",
    "emotion_color",
    "heatmap_to_rgb",
    "plot_accuracy_vs_latency",
    "plot_confusion_matrix",
    "plot_prediction_grid",
    "plot_reliability_diagram",
    "plot_roc_curves",
    "plot_track_emotions",
    "plot_training_curves",
]
