"""Predict with a trained run on your own images: a classifier's top-k classes, a detector's boxes.

RUN is a run folder of cifar.py or voc.py (its latest checkpoint; the EMA weights when kept), its
checkpoints folder or one step folder. IMAGE_OR_FOLDER: image files of any format Pillow reads, or
folders of them (their image files, sorted by name). An unreadable file is reported in one line and the
others are still processed; the exit status is then 1.

Outputs go to --out, by default RUN/predictions (the tool's own folder: files there of an earlier predict
with the same names are replaced, and said so). In any other folder existing files are never replaced
unless --overwrite is given. A classifier writes predictions.json (top-k classes and probabilities per
image); a detector writes per image <name>.png (boxes and labels drawn), <name>.json (class, score and
xyxy box in the image's own pixels) and <name>.txt (YOLOv5 --save-txt --save-conf lines), and
predictions.json with every image. docs/predict.md describes them.

Examples:
    python experiments/predict.py --workdir runs/cifar/synthetic_3-64_ttfs+lt+lc+sg_T2_learnable_s35 cat.jpg photos/
    python experiments/predict.py --workdir runs/voc/RUN street.png --conf_thres 0.4 --classes person car
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from collections.abc import Sequence

import jax
from PIL import Image, UnidentifiedImageError

from snnjax.checks import BOOL, InvalidValue, check, check_args, integer, number
from snnjax.cli.hugepages import restart_with_hugepages
from snnjax.drawing import draw_detections
from snnjax.engine.checkpoint import CheckpointError
from snnjax.engine.flags import OneLineErrors
from snnjax.engine.rundir import RunFolderError
from snnjax.predict import (
    CONF_THRES,
    IOU_THRES,
    MAX_DET,
    classify,
    detect,
    image_files,
    read_image,
    top_classes,
    yolo_labels,
)
from snnjax.trained import TrainedModel, load_trained

PROG = "predict.py"
SUMMARY = "predictions.json"
OWN_FOLDER = "predictions"  # in the run folder
TOP_K = 5
# Flags of one kind of run, with their defaults and accepted values.
TASK_FLAGS = {
    "classification": {"top_k": (TOP_K, integer(1))},
    "detection": {
        "conf_thres": (CONF_THRES, number(0, 1, high_open=True)),
        "iou_thres": (IOU_THRES, number(0, 1)),
        "max_det": (MAX_DET, integer(1)),
        "classes": (None, None),
        "agnostic_nms": (False, BOOL),
    },
}


def build_parser() -> OneLineErrors:
    """The flags; those of one kind of run default to None (given to the other kind: an error)."""
    parser = OneLineErrors(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files or folders of them")
    parser.add_argument("--workdir", required=True, metavar="RUN", help="a run folder, its checkpoints or a step")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: RUN/predictions)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs in another --out")
    parser.add_argument("--batch_size", type=int, default=16, help="images per jitted batch (default: 16)")
    parser.add_argument("--seed", type=int, default=0, help="key of rate/poisson encoders (default: 0)")
    classifier = parser.add_argument_group("classifier runs")
    classifier.add_argument("--top_k", type=int, help=f"classes shown per image (default: {TOP_K})")
    detector = parser.add_argument_group("detector runs (YOLOv5 detect.py's NMS flags)")
    detector.add_argument("--conf_thres", type=float, help=f"confidence threshold (default: {CONF_THRES})")
    detector.add_argument("--iou_thres", type=float, help=f"NMS IoU threshold (default: {IOU_THRES})")
    detector.add_argument("--max_det", type=int, help=f"detections per image at most (default: {MAX_DET})")
    detector.add_argument("--classes", nargs="+", metavar="CLASS", help="keep only these class names or indices")
    detector.add_argument("--agnostic_nms", action="store_true", default=None, help="class-agnostic NMS")
    return parser


def task_settings(parser: argparse.ArgumentParser, args: argparse.Namespace, trained: TrainedModel) -> dict:
    """The run kind's flags, defaults filled in and checked; a flag of the other kind ends in ``parser.error``."""
    for task, table in TASK_FLAGS.items():
        given = [name for name in table if getattr(args, name) is not None]
        if task != trained.task and given:
            parser.error(
                f"argument --{given[0]}: accepted only for a {task} run; {args.workdir} is a {trained.task} run"
            )
    table = TASK_FLAGS[trained.task]
    settings = {
        name: default if getattr(args, name) is None else getattr(args, name) for name, (default, _) in table.items()
    }
    check_args(parser, argparse.Namespace(**settings), {k: a for k, (_, a) in table.items() if a is not None})
    if settings.get("classes") is not None:
        try:
            settings["classes"] = class_indices(settings["classes"], trained.class_names)
        except InvalidValue as e:
            parser.error(f"argument --classes: got {e.value!r}; accepted: {e.accepted}")
    return settings


def class_indices(values: Sequence[str], names: Sequence[str]) -> tuple[int, ...]:
    """Sorted class indices of ``values``, each a class name or index; :class:`InvalidValue` otherwise."""
    indices = set()
    for value in values:
        index = names.index(value) if value in names else int(value) if value.isdigit() else -1
        check(0 <= index < len(names), "classes", value, f"names or indices 0-{len(names) - 1}: {', '.join(names)}")
        indices.add(index)
    return tuple(sorted(indices))


def output_stems(files: Sequence[str]) -> list[str]:
    """A distinct output name per file: its stem, ``<stem>_2``, ... when taken (``predictions`` is taken)."""
    taken, stems = {os.path.splitext(SUMMARY)[0]}, []
    for path in files:
        stem = name = os.path.splitext(os.path.basename(path))[0]
        copy = 1
        while name in taken:
            copy += 1
            name = f"{stem}_{copy}"
        taken.add(name)
        stems.append(name)
    return stems


def output_folder(parser: argparse.ArgumentParser, args: argparse.Namespace, trained: TrainedModel, names: list):
    """``--out`` (default RUN/predictions), after checking which of ``names`` it already holds: in the tool's
    own folder they are replaced (and said so); elsewhere only with ``--overwrite``."""
    own = os.path.join(trained.run_dir, OWN_FOLDER) if trained.run_dir is not None else None
    if own is not None and not os.path.relpath(own).startswith(os.pardir):  # shown as the user named it
        own = os.path.relpath(own)
    out = args.out or own
    if out is None:
        parser.error(f"argument --out: required, since {args.workdir} lies outside a run folder")
    existing = [name for name in names if os.path.exists(os.path.join(out, name))]
    if existing and not args.overwrite and (own is None or os.path.abspath(out) != os.path.abspath(own)):
        sys.exit(
            f"{PROG}: error: {len(existing)} outputs exist already in {out} (e.g. {existing[0]}); "
            "pass --overwrite to replace them, or choose another --out"
        )
    if existing:
        print(f"replacing {len(existing)} earlier output(s) of predict in {out}", flush=True)
    return out


def classifier_records(files, images, trained, rng, rows, settings) -> list[dict]:
    """Per image: its file and top-k ``{"class", "index", "probability"}``, printed one line each."""
    indices, probabilities = top_classes(classify(trained, images, rng, rows), settings["top_k"])
    records = []
    for path, best, probs in zip(files, indices, probabilities):
        found = [
            {"class": trained.class_names[c], "index": int(c), "probability": float(p)} for c, p in zip(best, probs)
        ]
        records.append({"file": path, "predictions": found})
        print(f"{path}: " + ", ".join(f"{f['class']} {f['probability']:.3f}" for f in found), flush=True)
    return records


def detector_records(files, images, trained, rng, rows, settings, out, stems) -> list[dict]:
    """Per image: writes ``<stem>.png/.json/.txt`` in ``out``; returns the JSON records, printed one line each."""
    options = {k: v for k, v in settings.items() if k != "agnostic_nms"}
    found = detect(trained, images, rng, rows, agnostic=settings["agnostic_nms"], **options)
    records = []
    for path, image, detections, stem in zip(files, images, found, stems):
        height, width = image.shape[:2]
        boxes = [
            {
                "class": trained.class_names[int(d[5])],
                "index": int(d[5]),
                "score": float(d[4]),
                "box_xyxy": [float(v) for v in d[:4]],
            }
            for d in detections
        ]
        record = {"file": path, "width": width, "height": height, "image": f"{stem}.png", "detections": boxes}
        draw_detections(image, detections, trained.class_names).save(os.path.join(out, f"{stem}.png"))
        write_text(os.path.join(out, f"{stem}.json"), json.dumps(record, indent=2) + "\n")
        write_text(os.path.join(out, f"{stem}.txt"), yolo_labels(detections, height, width))
        records.append(record)
        counts = collections.Counter(b["class"] for b in boxes)
        shown = ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "no detections"
        print(f"{path}: {shown} -> {os.path.join(out, stem + '.png')}", flush=True)
    return records


def unreadable(error: Exception) -> str:
    """Why an image file could not be read, in words."""
    if isinstance(error, UnidentifiedImageError):
        return "not an image format Pillow reads"
    return getattr(error, "strerror", None) or str(error)


def write_text(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def main(argv: list[str] | None = None) -> dict:
    """Parses the flags, predicts, writes the outputs; returns the summary (``predictions.json``'s content).
    Exits with status 1 when a file could not be read (after the others), 2 on a bad flag."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args, {"batch_size": integer(1), "seed": integer()})
    given = {k: a for table in TASK_FLAGS.values() for k, (_, a) in table.items() if a and getattr(args, k) is not None}
    check_args(parser, args, given)  # before the (slower) loading
    try:
        trained = load_trained(args.workdir)
    except InvalidValue as e:
        parser.error(f"argument --workdir: got {e.value!r}; accepted: {e.accepted}")
    except (OSError, RunFolderError, CheckpointError) as e:
        sys.exit(f"{PROG}: error: {e}")
    settings = task_settings(parser, args, trained)
    files = image_files(args.inputs)
    if not files:
        parser.error(f"argument IMAGE_OR_FOLDER: got {args.inputs}; accepted: image files, or folders holding some")
    stems = output_stems(files)
    planned = [f"{s}{e}" for s in stems for e in (".png", ".json", ".txt")] if trained.task == "detection" else []
    out = output_folder(parser, args, trained, [*planned, SUMMARY])
    rows, rng = min(args.batch_size, len(files)), jax.random.key(args.seed)
    records, failed, pending, batch = [], [], [], 0
    try:
        os.makedirs(out, exist_ok=True)
        for i, path in enumerate(files):
            try:
                pending.append((path, read_image(path), stems[i]))
            except (OSError, ValueError, Image.DecompressionBombError) as e:
                failed.append({"file": path, "error": unreadable(e)})
                print(f"{PROG}: error: skipped {path}: {unreadable(e)}", file=sys.stderr, flush=True)
            if pending and (len(pending) == rows or i == len(files) - 1):
                paths, images, names = (list(column) for column in zip(*pending))
                key, batch = jax.random.fold_in(rng, batch), batch + 1
                if trained.task == "classification":
                    records += classifier_records(paths, images, trained, key, rows, settings)
                else:
                    records += detector_records(paths, images, trained, key, rows, settings, out, names)
                pending = []
        summary = {
            "workdir": args.workdir,
            "checkpoint": trained.checkpoint,
            "task": trained.task,
            "settings": {**settings, "batch_size": args.batch_size, "seed": args.seed},
            "images": records,
            "failed": failed,
        }
        write_text(os.path.join(out, SUMMARY), json.dumps(summary, indent=2) + "\n")
    except OSError as e:
        sys.exit(f"{PROG}: error: {e}; use a writable --out")
    print(f"{len(records)} images predicted; results in {os.path.join(out, SUMMARY)}", flush=True)
    if failed:
        sys.exit(f"{PROG}: error: {len(failed)} of {len(files)} files could not be read (listed above)")
    return summary


if __name__ == "__main__":
    restart_with_hugepages()
    main()
