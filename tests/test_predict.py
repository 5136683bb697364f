"""Predicting with trained runs (snnjax-predict): one tiny classifier run and one tiny detector run, trained
once through the real programs on synthetic data, predict on odd-sized PNG/JPEG/grey/RGBA/palette files."""

import json
import os
import shutil

import jax
import numpy as np
import pytest
from PIL import Image

from snnjax import predict
from snnjax.cli import predict as predict_cli
from snnjax.metrics.nms import non_max_suppression
from snnjax.tasks.classification.data import normalize
from snnjax.tasks.classification.data.synthetic import load_synthetic
from snnjax.tasks.detection.data.letterbox import letterbox
from snnjax.tasks.detection.data.synthetic import synthetic_class_names
from snnjax.trained import load_trained

IMAGES = {  # name -> (size (w, h), Pillow mode)
    "a_rgb.png": ((37, 23), "RGB"),
    "b_tall.jpg": ((50, 90), "RGB"),
    "c_grey.png": ((19, 41), "L"),
    "d_alpha.png": ((30, 30), "RGBA"),
    "e_palette.gif": ((45, 12), "P"),
}


@pytest.fixture(scope="module")
def runs(trained_runs, tmp_path_factory):
    """Paths of the trained runs (``cifar``, ``voc``) and of a folder of images with one unreadable file."""
    root = tmp_path_factory.mktemp("predict")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name, ((w, h), mode) in IMAGES.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode).save(images / name)
    (images / "f_broken.png").write_text("not an image")
    return {**trained_runs, "images": str(images), "root": root}


def run_predict(argv, capsys):
    """``predict.main(argv)``: (its summary or None, exit code, stdout, stderr lines)."""
    try:
        summary, code = predict_cli.main(argv), 0
    except SystemExit as e:
        summary, code = None, e.code
    out, err = capsys.readouterr()
    return summary, code, out, err.strip().splitlines()


def test_runs_save_what_inference_needs(runs):
    classifier = json.load(open(os.path.join(runs["cifar"], "model.json")))
    data = load_synthetic(num_train=64, num_test=16, image_size=8, seed=35)  # the run's (seed: cifar.py's)
    assert classifier == {
        "format": 1,
        "task": "classification",
        "class_names": [str(c) for c in range(10)],
        "image_shape": [8, 8, 3],
        "mean": list(data.mean),
        "std": list(data.std),
    }
    detector = json.load(open(os.path.join(runs["voc"], "model.json")))
    assert detector == {"format": 1, "task": "detection", "class_names": list(synthetic_class_names(3)), "img_size": 32}


def test_classifier_predicts_readable_files_reports_the_unreadable_and_matches_the_model(runs, capsys):
    argv = ["--workdir", runs["cifar"], runs["images"], "--top_k=10", "--batch_size=2"]
    _, code, out, err = run_predict(argv, capsys)
    assert code == "predict.py: error: 1 of 6 files could not be read (listed above)"
    assert err[0] == f"predict.py: error: skipped {runs['images']}/f_broken.png: not an image format Pillow reads"
    summary = json.load(open(os.path.join(runs["cifar"], "predictions", "predictions.json")))
    assert [os.path.basename(r["file"]) for r in summary["images"]] == sorted(IMAGES)
    assert [os.path.basename(f["file"]) for f in summary["failed"]] == ["f_broken.png"]
    for record in summary["images"]:
        probabilities = [p["probability"] for p in record["predictions"]]
        assert np.isclose(sum(probabilities), 1, atol=1e-5) and probabilities == sorted(probabilities, reverse=True)
    # The same file's probabilities, from the model run directly on the resized, normalised image.
    trained = load_trained(runs["cifar"])
    image = np.asarray(Image.open(os.path.join(runs["images"], "b_tall.jpg")).resize((8, 8), Image.BICUBIC))
    x = normalize(image[None], trained.info["mean"], trained.info["std"])
    apply = jax.jit(lambda variables, x: trained.model.apply(variables, x, train=False, rngs={"encoding": key}))
    key = jax.random.key(0)
    direct = np.asarray(jax.nn.softmax(apply(trained.variables, x)[0]))
    record = summary["images"][1]["predictions"]
    np.testing.assert_allclose([p["probability"] for p in record], direct[[p["index"] for p in record]], atol=1e-5)
    # A second predict into the tool's own folder replaces its files and says so; another --out refuses.
    two = [f"{runs['images']}/{name}" for name in ("a_rgb.png", "c_grey.png")]  # batches of 2: compiled already
    _, code, out, _ = run_predict(["--workdir", runs["cifar"], *two], capsys)
    assert code == 0 and out.startswith("replacing 1 earlier output(s) of predict in")
    other = runs["root"] / "elsewhere"
    other.mkdir()
    (other / "predictions.json").write_text("{}")
    _, code, _, _ = run_predict(
        ["--workdir", runs["cifar"], "--out", str(other), f"{runs['images']}/a_rgb.png"], capsys
    )
    assert "1 outputs exist already" in code and (other / "predictions.json").read_text() == "{}"


def test_detector_boxes_are_in_original_pixels_and_flags_filter_them(runs, capsys):
    out = runs["root"] / "detections"
    argv = ["--workdir", runs["voc"], runs["images"], "--out", str(out), "--batch_size=2", "--conf_thres=0.001"]
    _, code, _, _ = run_predict([*argv, "--max_det=7", "--classes", "circle", "2"], capsys)
    assert code == "predict.py: error: 1 of 6 files could not be read (listed above)"
    for name, ((w, h), _) in IMAGES.items():
        stem = os.path.splitext(name)[0]
        record = json.load(open(out / f"{stem}.json"))
        assert (record["width"], record["height"]) == (w, h) and Image.open(out / f"{stem}.png").size == (w, h)
        boxes = np.array([d["box_xyxy"] for d in record["detections"]]).reshape(-1, 4)
        assert 0 < len(boxes) <= 7 and {d["index"] for d in record["detections"]} <= {0, 2}
        assert (boxes >= 0).all() and (boxes[:, [0, 2]] <= w).all() and (boxes[:, [1, 3]] <= h).all()
        assert len((out / f"{stem}.txt").read_text().splitlines()) == len(boxes)
    # One image by hand: letterbox (gain 32/90, 18 columns centred: pad 7), NMS, then (x − pad) / gain.
    trained = load_trained(runs["voc"])
    image = np.asarray(Image.open(os.path.join(runs["images"], "b_tall.jpg")))
    boxed, gain, pad = letterbox(image, 32)
    assert (gain, pad) == (32 / 90, (7, 0))
    key = jax.random.key(0)
    batch = predict.pad_rows(boxed[None], 2)  # the batch shape compiled above
    decoded = predict.decoded_predictions(trained.model, trained.variables, batch, key)
    found, count = non_max_suppression(decoded, conf_thres=0.001, iou_thres=0.45, max_det=1000, multi_label=False)
    by_hand = np.array(found[0, : int(count[0])])
    by_hand[:, :4] = np.clip((by_hand[:, :4] - [7, 0, 7, 0]) / gain, 0, [50, 90, 50, 90])
    (detected,) = predict.detect(trained, [image], key, 2, conf_thres=0.001)
    np.testing.assert_allclose(detected, by_hand, rtol=1e-5, atol=1e-4)


def test_a_run_without_model_json_predicts_through_its_task(runs, capsys):
    copy = runs["root"] / "old_run"
    shutil.copytree(runs["cifar"], copy, ignore=shutil.ignore_patterns("predictions"))
    os.remove(copy / "model.json")
    trained = load_trained(str(copy))
    assert "has no model.json" in capsys.readouterr().err
    assert trained.info == json.load(open(os.path.join(runs["cifar"], "model.json")))
    probabilities = predict.classify(trained, [np.zeros((5, 7, 3), np.uint8)], jax.random.key(0), rows=2)
    assert probabilities.shape == (1, 10)


@pytest.mark.parametrize(
    "run, flags, message",
    [
        ("voc", ["--top_k=3"], "argument --top_k: accepted only for a classification run"),
        ("cifar", ["--agnostic_nms"], "argument --agnostic_nms: accepted only for a detection run"),
        ("voc", ["--conf_thres=1.5"], "argument --conf_thres: got 1.5; accepted: a finite number in [0, 1)"),
        (
            "voc",
            ["--classes", "dog"],
            "argument --classes: got 'dog'; accepted: names or indices 0-2: circle, square, triangle",
        ),
        ("cifar", ["--batch_size=0"], "argument --batch_size: got 0; accepted: an int >= 1"),
        ("/no/such/run", [], "argument --workdir: got '/no/such/run'; accepted: an existing run folder or checkpoint"),
    ],
)
def test_bad_flags_give_one_line_errors(runs, run, flags, message, capsys):
    _, code, _, err = run_predict(["--workdir", runs.get(run, run), runs["images"], *flags], capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith(f"predict.py: error: {message}"), err


def test_nms_class_filter_and_agnostic_suppression():
    # Two boxes overlapping at IoU 0.81, the first of class 0, the second of class 1 (decoded: xywh, obj, probs).
    decoded = np.array([[[50, 50, 20, 20, 0.9, 1.0, 0.0], [51, 51, 18, 18, 0.8, 0.0, 1.0]]], np.float32)
    nms = lambda **kw: non_max_suppression(decoded, conf_thres=0.25, iou_thres=0.45, multi_label=False, **kw)[0][0]  # noqa: E731
    assert np.asarray(nms()[:2, 5]).tolist() == [0, 1]
    assert np.asarray(nms(agnostic=True)[:, 4] > 0).sum() == 1
    kept = nms(classes=(1,))
    assert np.asarray(kept[:, 4] > 0).sum() == 1 and float(kept[0, 5]) == 1
