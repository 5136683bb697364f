"""Splits of a prepared tensorflow-datasets dataset as raw records, read without TensorFlow."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SYNTHETIC_ALTERNATIVE = "--dataset=synthetic (procedurally generated)"


class DatasetNotPreparedError(FileNotFoundError):
    """The tfds dataset is not prepared (as ArrayRecord) under the data directory."""


def not_prepared(name: str, data_dir: str, detail: str, alternatives: str) -> DatasetNotPreparedError:
    """The error for an unprepared dataset: how to prepare it, and what to run instead."""
    return DatasetNotPreparedError(
        f"dataset {name!r} is not prepared as ArrayRecord in data_dir {data_dir!r} ({detail}). "
        "snnjax never downloads while training. Prepare it once, on a machine with network "
        "access and TensorFlow:\n"
        '    pip install -e ".[prepare]"\n'
        f"    python -m snnjax.data.prepare {name} --data_dir {data_dir}\n"
        f"then pass that directory as --data_dir (or set TFDS_DATA_DIR). To run without it, use {alternatives}."
    )


def open_prepared(
    name: str,
    splits: Sequence[str],
    data_dir: str | None = None,
    *,
    prepare_names: Sequence[str] = (),
    alternatives: str = SYNTHETIC_ALTERNATIVE,
) -> tuple[list[Sequence[bytes]], Any]:
    """Random-access raw ``tf.Example`` records of ``splits`` of the tfds dataset ``name``.

    Returns ``(sources, info)``: one sequence of serialized records per split and the dataset's
    ``tfds.core.DatasetInfo``. ``data_dir=None`` means tfds' default. Never downloads: data not
    prepared as ArrayRecord raises :class:`DatasetNotPreparedError`, whose message tells how to
    prepare ``prepare_names`` (default: ``name``) and names the ``alternatives`` to run instead.
    """
    import tensorflow_datasets as tfds

    shown = " ".join(prepare_names or (name,))
    builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
    data_root = str(builder.data_dir_root)
    if not builder.is_prepared():
        raise not_prepared(shown, data_root, f"missing {builder.data_path}", alternatives)
    formats = [f.value for f in builder.info.available_file_formats()]
    if "array_record" not in formats:
        detail = f"{builder.data_path} holds {formats}: delete it or use another data_dir"
        raise not_prepared(shown, data_root, detail, alternatives)
    sources = builder.as_data_source(
        split=list(splits),
        deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES,
        file_format="array_record",
    )
    return sources, builder.info


def parse_example(record: bytes) -> Mapping[str, Any]:
    """One serialized ``tf.Example`` -> its feature map (``feature[key].<kind>_list.value``)."""
    from tensorflow_datasets.proto import tf_example_pb2

    return tf_example_pb2.Example.FromString(record).features.feature
