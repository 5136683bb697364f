"""The command-line programs. Each module's ``main(argv)`` parses the flags, runs, and returns its results
to a Python caller; ``experiments/<name>.py`` runs it from a checkout, and the ``*_command`` functions
below are the package's console scripts (``snnjax-<name>``, pyproject.toml), which exit 0 on success
whatever ``main`` returns."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def _console_script(name: str) -> Callable[[], None]:
    def command() -> None:
        importlib.import_module(f"{__name__}.{name}").main()

    command.__name__ = f"{name}_command"
    command.__doc__ = f"``snnjax-{name}``: runs :func:`snnjax.cli.{name}.main` on the command line's flags."
    return command


cifar_command = _console_script("cifar")
voc_command = _console_script("voc")
paper_command = _console_script("paper")
report_command = _console_script("report")
predict_command = _console_script("predict")
export_command = _console_script("export")
