"""Live TensorBoard scalars: what a record becomes, and a run's event file read back."""

import glob
import struct

import pytest

from snnjax.engine import flags
from snnjax.engine.scalars import ScalarLog, scalars

event_pb2 = pytest.importorskip("tensorboardX.proto.event_pb2")


def read_scalars(logdir) -> dict[str, list[tuple[int, float]]]:
    """Tag -> [(step, value)] from the TFRecord event files in ``logdir`` (length, crc, event, crc)."""
    found: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(glob.glob(f"{logdir}/events.out.tfevents.*")):
        data = open(path, "rb").read()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 16 + length
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, value.simple_value))
    return found


def test_numbers_and_flat_maps_become_scalars():
    record = {"epoch": 2, "lr": 0.1, "eval_firing_rates": {"a/b": 0.25}, "note": "x", "eval_x": None, "ok": True}
    assert scalars(record) == {"epoch": 2.0, "lr": 0.1, "eval_firing_rates/a/b": 0.25}


def test_a_log_writes_each_records_scalars_at_its_step_and_none_writes_nothing(tmp_path):
    with ScalarLog(str(tmp_path / "on")) as on, ScalarLog(None) as off:
        for step, record in ((3, {"lr": 0.5, "eval_rates": {"a": 0.25}}), (6, {"lr": 0.125, "note": "x"})):
            on.write(record, step)
            off.write(record, step)
    assert off.writer is None
    assert read_scalars(tmp_path / "on") == {"lr": [(3, 0.5), (6, 0.125)], "eval_rates/a": [(3, 0.25)]}
    assert [p.name for p in tmp_path.iterdir()] == ["on"]


def test_a_run_with_tensorboard_writes_every_epochs_metrics(tmp_path):
    from test_engine import EXPERIMENT

    workdir = str(tmp_path / "run")
    flags.main(EXPERIMENT, ["--workdir", workdir, "--epochs", "2", "--tensorboard"])
    logged = read_scalars(f"{workdir}/tensorboard")
    assert [step for step, _ in logged["train_loss"]] == [4, 8]  # the record's train step
    assert {"lr", "eval_mse", "epoch_time_s"} <= set(logged)
