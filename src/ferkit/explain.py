"""Grad-CAM: where a model looks when it names an emotion. Pure computation; drawing is ``ferkit.viz.cam``.

>>> from ferkit.infer import Recognizer
>>> from ferkit.explain import explain_image
>>> rec = Recognizer()
>>> for face, heat in explain_image(rec, "photo.jpg"):   # heat: (h, w) float32 in [0, 1] over face.box
...     ...

:func:`grad_cam` works on one preprocessed input ``(1, C, H, W)`` and any ``nn.Module`` classifier
(Selvaraju et al., 2017): the rectified activations ``A_k`` of a convolution layer are weighted by the spatial
mean of the target logit's gradient, summed, passed through ReLU, upsampled to the input and divided
by their maximum. Only the gradient with respect to that layer's output is computed: no parameter
``.grad`` is written, every hook is removed, and the model is left in eval mode.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ferkit.errors import FerkitError
from ferkit.types import FaceResult

__all__ = ["explain_image", "find_cam_layer", "grad_cam"]


def _leaf_outputs(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[str, nn.Module, torch.Tensor]]]:
    """One forward pass recording the 4-D output of every leaf module, in execution order; hooks removed after."""
    names = {m: n for n, m in model.named_modules()}
    seen: list[tuple[str, nn.Module, torch.Tensor]] = []

    def hook(module: nn.Module, _inp: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor) and out.ndim == 4:
            seen.append((names.get(module, "?"), module, out))

    handles = [m.register_forward_hook(hook) for m in model.modules() if next(m.children(), None) is None]
    try:
        logits = model(x)
    finally:
        for h in handles:
            h.remove()
    return logits, seen


def _pick(seen: list[tuple[str, nn.Module, torch.Tensor]]) -> tuple[str, nn.Module, torch.Tensor]:
    """The last ``nn.Conv2d`` with a spatial output larger than 1x1, followed through the modules that keep
    its shape (its BatchNorm and activation): Grad-CAM weighs rectified feature maps, as in the paper. The
    raw convolution output differs from them by BatchNorm's shift, a constant that can push the whole map
    below zero."""
    for i in range(len(seen) - 1, -1, -1):
        _, module, out = seen[i]
        if isinstance(module, nn.Conv2d) and out.shape[-2] * out.shape[-1] > 1:  # a 1x1 map explains nothing
            j = i
            while j + 1 < len(seen) and seen[j + 1][2].shape == out.shape and not isinstance(seen[j + 1][1], nn.Conv2d):
                j += 1
            return seen[j]
    raise FerkitError("grad_cam: the model has no Conv2d layer with a spatial output larger than 1x1; give layer=")


def find_cam_layer(model: nn.Module, x: torch.Tensor) -> str:
    """Name of the default Grad-CAM layer for input ``x``: the last ``nn.Conv2d`` run whose output is
    larger than 1x1, or the module after it that keeps its shape (BatchNorm, activation) and ran last."""
    model.eval()
    with torch.inference_mode(False), torch.no_grad():
        _, seen = _leaf_outputs(model, _as_input(model, x))
    return _pick(seen)[0]


def _as_input(model: nn.Module, x: Any) -> torch.Tensor:
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x.detach().clone())
    t = t.to(device=device, dtype=torch.float32)
    if t.ndim != 4 or t.shape[0] != 1:
        raise FerkitError(f"grad_cam: expected one preprocessed input of shape (1, C, H, W), got {tuple(t.shape)}")
    return t


def grad_cam(model: nn.Module, x: Any, target: int | None = None, layer: str | nn.Module | None = None) -> np.ndarray:
    """Grad-CAM heat map for one preprocessed input.

    Args:
        model: a classifier mapping ``(N, C, H, W)`` to ``(N, classes)`` logits.
        x: ``(1, C, H, W)`` tensor or array, as ``ferkit.data.transforms.eval_transform`` makes it (batched).
        target: class index to explain; None = the predicted class.
        layer: a module of ``model`` or its name (``"features.3.1.2"``); None = :func:`find_cam_layer`'s
            choice (the rectified output of the last convolution larger than 1x1). A module that runs more
            than once (a reused activation) gives its last output.

    Returns ``(H, W)`` float32 in [0, 1] (the input's size); all zeros when nothing speaks for the target.
    """
    model.eval()
    with torch.inference_mode(False):
        x = _as_input(model, x).requires_grad_(True)  # a graph even when the parameters are frozen
        with torch.enable_grad():
            if layer is None:
                logits, seen = _leaf_outputs(model, x)
                act = _pick(seen)[2]
                seen.clear()
            else:
                module = model.get_submodule(layer) if isinstance(layer, str) else layer
                if not any(m is module for m in model.modules()):
                    raise FerkitError("grad_cam: layer is not a module of the model")
                box: list[torch.Tensor] = []
                handle = module.register_forward_hook(lambda _m, _i, out: box.append(out))
                try:
                    logits = model(x)
                finally:
                    handle.remove()
                if not box or not isinstance(box[-1], torch.Tensor) or box[-1].ndim != 4:
                    raise FerkitError("grad_cam: the layer did not produce a (1, K, h, w) output")
                act = box[-1]
            n = logits.shape[-1]
            k = int(logits[0].argmax()) if target is None else int(target)
            if not 0 <= k < n:
                raise FerkitError(f"grad_cam: target {target} is not a class index (0..{n - 1})")
            (grad,) = torch.autograd.grad(logits[0, k], act)
        with torch.no_grad():
            weights = grad[0].mean(dim=(1, 2))  # (K,)
            cam = torch.relu((weights[:, None, None] * act[0].detach()).sum(0))
            cam = nn.functional.interpolate(cam[None, None], size=tuple(x.shape[-2:]), mode="bilinear",
                                            align_corners=False)[0, 0]
            cam = cam.clamp_min(0)
            top = float(cam.max())
            cam = cam / top if top > 0 else torch.zeros_like(cam)
    return cam.float().cpu().numpy()


def _box_map(cam: np.ndarray, box: tuple[int, int, int, int], margin: float, points: np.ndarray | None) -> np.ndarray:
    """A heat map over a face crop (any size), brought back onto the face box ``(h, w)``; the crop
    geometry is the one of ``ferkit.detect.crop_face`` (margin, square, optional eye alignment)."""
    import cv2

    from ferkit.detect import expand_boxes, eye_angle

    (x, y, w, h), = expand_boxes(np.asarray(box, np.float64).reshape(1, 4), margin).tolist()
    cx, cy = x + w / 2, y + h / 2
    side = max(1, round(max(w, h)))
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    if points is not None:
        m = cv2.getRotationMatrix2D((cx, cy), eye_angle(points), 1.0)
        m[0, 2] -= x0
        m[1, 2] -= y0
    else:
        m = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]])
    bx, by, bw, bh = (int(v) for v in box)
    m[:, 2] += m[:, :2] @ np.array([bx, by], np.float64)  # box-local pixel -> crop pixel
    crop_map = cv2.resize(cam.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    out = cv2.warpAffine(crop_map, m, (bw, bh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def explain_image(recognizer: Any, image: Any, target: str | int | None = None,
                  layer: str | nn.Module | None = None) -> list[tuple[FaceResult, np.ndarray]]:
    """Every face of ``image`` with its Grad-CAM heat map.

    Args:
        recognizer: a ``ferkit.infer.Recognizer`` with the torch backend.
        image: a path, an RGB uint8 array or a PIL image.
        target: the class to explain (name or index); None = each face's predicted class.
        layer: see :func:`grad_cam`.

    Returns ``[(face, heat)]`` in the detector's order: ``face`` is the FaceResult ``predict`` gives
    (box, emotion, probabilities...), ``heat`` a float32 ``(h, w)`` map in [0, 1] over ``face.box``
    (normalised per face over the whole crop). An image without a face gives ``[]``. Raises
    ImageReadError for an unreadable file, FerkitError for an unknown class or a non-torch backend.
    """
    from ferkit.infer import to_rgb_array

    model = recognizer.model
    if model is None:
        raise FerkitError("explain: Grad-CAM needs the torch backend (the model's gradients)")
    classes = list(recognizer.classes)
    if target is None:
        k = None
    elif isinstance(target, str):
        if target not in classes:
            raise FerkitError(f"explain: unknown class {target!r} (the model's classes: {', '.join(classes)})")
        k = classes.index(target)
    else:
        k = int(target)
        if not 0 <= k < len(classes):
            raise FerkitError(f"explain: class index {target} out of range (0..{len(classes) - 1})")
    batch = recognizer.prepare(to_rgb_array(image))
    if not batch.crops:
        return []
    recognizer.classify(batch)
    faces, points, crops = batch.faces, batch.landmarks, batch.crops
    out = []
    for i, (face, box, crop) in enumerate(zip(batch.face_results(recognizer.classes), faces.boxes, crops)):
        # no target: the class the face is labelled with (its argmax under the recognizer's prior)
        own = classes.index(face.emotion) if k is None else k
        cam = grad_cam(model, recognizer.transform(crop)[None], target=own, layer=layer)
        align_pts = points[i] if recognizer.align and points is not None else None
        out.append((face, _box_map(cam, box, recognizer.margin, align_pts)))
    return out
