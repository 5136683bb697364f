"""Tasks of the engine, one folder each: ``classification`` (QKFormer on CIFAR) and ``detection``
(YOLOv5n on VOC). A task owns its config (with presets), data pipeline, loss, optimizer, evaluators and
:class:`snnjax.engine.task.Task` implementation; docs/architecture.md shows how to add one."""
