"""Weight import/export between ultralytics YOLOv5 v7.0's YOLOv5n and :class:`YOLOv5n` with ``mode="ann"``.

One table, :func:`ultralytics_names`, pairs every entry of the PyTorch ``state_dict()`` of ultralytics'
YOLOv5n with its Flax variable and layout (docs/yolov5n.md §7; layouts in ``snnjax.models.state_dict``);
both directions walk it. PyTorch -> Flax:

    model.{i}.conv.weight (O, I, kh, kw)         -> params/model_{i}/conv/kernel (kh, kw, I, O)
    model.{i}.bn.weight|bias                     -> params/model_{i}/bn/scale|bias
    model.{i}.bn.running_mean|running_var        -> batch_stats/model_{i}/bn/mean|var
    model.{i}.cv1…, model.{i}.m.{j}.cv1…         -> model_{i}/cv1/…, model_{i}/m_{j}/cv1/…  (C3, SPPF)
    model.24.m.{l}.weight (3·(5+nc), C, 1, 1)    -> params/model_24/m_{l}/kernel (1, 1, C, 3·(5+nc))
    model.24.m.{l}.bias (3·(5+nc),)              -> params/model_24/m_{l}/bias; channel a·(5+nc) + k both
    model.24.anchors (3, 3, 2)                   ANCHORS / stride: must match on import, written on export
    *.num_batches_tracked                        ignored on import, 0 on export

v7.0's Detect keeps ``anchor_grid`` and ``grid`` as plain attributes, not buffers, so neither is in the
state_dict (an entry of that name is reported as unexpected).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from snnjax.checks import check
from snnjax.models.state_dict import Entry, conv_bn_entries, export_state_dict, import_state_dict, read_state_dict
from snnjax.models.yolo import ANCHORS, NUM_ANCHORS, STRIDES, YOLOv5n

# YOLOv5n v7.0's layers with weights (docs/yolov5n.md §1.2): Conv units, C3s (-> bottlenecks), the SPPF.
CONVS = (0, 1, 3, 5, 7, 10, 14, 18, 21)
C3_DEPTHS = {2: 1, 4: 2, 6: 3, 8: 1, 13: 1, 17: 1, 20: 1, 23: 1}
SPPF_LAYER = 9
DETECT_LAYER = 24
HOW_TO_CONVERT = (
    "; ultralytics' yolov5n.pt is a pickled model: in a clone of ultralytics/yolov5 run torch.save(torch.load("
    "'yolov5n.pt', weights_only=False)['model'].float().state_dict(), 'yolov5n_sd.pt') and pass yolov5n_sd.pt"
)


def _unit(torch_name: str, flax_path: tuple[str, ...]) -> Iterator[Entry]:
    """A YOLOv5 ``Conv`` (``{name}.conv`` + ``{name}.bn``) held by the Flax ConvBN at ``flax_path``."""
    return conv_bn_entries(f"{torch_name}.conv", f"{torch_name}.bn", flax_path, "conv2d")


def ultralytics_names() -> Iterator[Entry]:
    """Yields (PyTorch name, Flax variable path or fixed value, layout) for YOLOv5n, in state_dict order
    (349 entries; the names do not depend on the number of classes)."""
    for i in range(DETECT_LAYER):
        torch_name, flax_path = f"model.{i}", (f"model_{i}",)
        if i in CONVS:
            yield from _unit(torch_name, flax_path)
        elif i in C3_DEPTHS or i == SPPF_LAYER:
            for cv in ("cv1", "cv2") if i == SPPF_LAYER else ("cv1", "cv2", "cv3"):
                yield from _unit(f"{torch_name}.{cv}", (*flax_path, cv))
            for j in range(C3_DEPTHS.get(i, 0)):
                for cv in ("cv1", "cv2"):
                    yield from _unit(f"{torch_name}.m.{j}.{cv}", (*flax_path, f"m_{j}", cv))
    detect = f"model.{DETECT_LAYER}"
    yield f"{detect}.anchors", ANCHORS / np.asarray(STRIDES, np.float32)[:, None, None], "fixed"
    for level in range(len(STRIDES)):
        flax_path = ("params", f"model_{DETECT_LAYER}", f"m_{level}")
        yield f"{detect}.m.{level}.weight", (*flax_path, "kernel"), "conv2d"
        yield f"{detect}.m.{level}.bias", (*flax_path, "bias"), "vector"


def _check_model(model: YOLOv5n) -> None:
    check(model.mode == "ann", "model.mode", model.mode, "'ann' (ultralytics YOLOv5n weights map to the ANN only)")


def _accepted(model: YOLOv5n, state: Mapping[str, np.ndarray]) -> str:
    """What the import wants, with the class count of the state_dict's Detect head where that differs."""
    accepted = f"the entries of ultralytics YOLOv5n v7.0 with num_classes={model.num_classes}"
    bias = state.get(f"model.{DETECT_LAYER}.m.0.bias")
    if bias is not None and bias.ndim == 1 and bias.shape[0] % NUM_ANCHORS == 0:
        classes = bias.shape[0] // NUM_ANCHORS - 5
        if classes != model.num_classes:
            accepted += f" (this state_dict's Detect head has {classes} classes: COCO weights 80, VOC 20)"
    return accepted


def load_ultralytics_yolov5n(state_dict_or_path: Mapping | str | os.PathLike, model: YOLOv5n) -> dict:
    """Variables ``{"params", "batch_stats"}`` of ``model`` (``mode="ann"``) from ultralytics' YOLOv5n.

    Accepts a mapping name -> array (numpy or torch), an ``.npz`` path or a ``.pt`` path holding a plain
    state_dict (needs torch; ultralytics' pickled ``yolov5n.pt`` is refused with the line converting it).
    """
    _check_model(model)
    state = read_state_dict(state_dict_or_path, HOW_TO_CONVERT)
    template = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    return import_state_dict(state, ultralytics_names(), template, _accepted(model, state))


def export_ultralytics_yolov5n(variables: Mapping, model: YOLOv5n) -> dict[str, np.ndarray]:
    """Ultralytics' YOLOv5n state_dict (name -> numpy array) of ``variables``; num_batches_tracked = 0."""
    _check_model(model)
    return export_state_dict(variables, ultralytics_names())
