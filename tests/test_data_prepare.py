"""The preparation command asks tfds for ArrayRecord files (TensorFlow itself is not needed to test it)."""

from snnjax.data import prepare


class FakeBuilder:
    calls: list = []

    def __init__(self, name, data_dir, file_format):
        self.name, self.data_path = name, f"{data_dir}/{name}/1.0.0"
        FakeBuilder.calls.append(("builder", name, data_dir, file_format))

    def download_and_prepare(self, file_format):
        FakeBuilder.calls.append(("prepare", self.name, file_format))


def test_prepare_writes_array_record_for_every_named_dataset(monkeypatch, capsys):
    FakeBuilder.calls = []
    monkeypatch.setattr(prepare.tfds, "builder", FakeBuilder)
    prepare.main(["cifar10", "voc/2007", "--data_dir", "/data"])
    assert FakeBuilder.calls == [
        ("builder", "cifar10", "/data", "array_record"),
        ("prepare", "cifar10", "array_record"),
        ("builder", "voc/2007", "/data", "array_record"),
        ("prepare", "voc/2007", "array_record"),
    ]
    assert "voc/2007: prepared in /data/voc/2007/1.0.0" in capsys.readouterr().out
