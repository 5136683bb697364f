"""The command-line programs. Each module's ``main(argv)`` parses the flags, runs, and returns its results
to a Python caller; ``experiments/<name>.py`` runs it from a checkout, and the ``*_command`` functions
below are the package's console scripts (``snnjax-<name>``, pyproject.toml), which exit 0 on success
whatever ``main`` returns. Every program first restarts itself with huge pages for its heap
(:mod:`snnjax.cli.hugepages`; ``SNNJAX_HUGEPAGES=0`` declines)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from snnjax.cli.hugepages import restart_with_hugepages


def run(name: str) -> None:
    """Runs the program ``snnjax.cli.<name>`` on the command line's flags, after
    :func:`~snnjax.cli.hugepages.restart_with_hugepages` and before importing it (JAX loads once)."""
    restart_with_hugepages()
    importlib.import_module(f"{__name__}.{name}").main()


def _console_script(name: str) -> Callable[[], None]:
    def command() -> None:
        run(name)

    command.__name__ = f"{name}_command"
    command.__doc__ = f"``snnjax-{name}``: runs :func:`snnjax.cli.{name}.main` on the command line's flags."
    return command


cifar_command = _console_script("cifar")
voc_command = _console_script("voc")
paper_command = _console_script("paper")
report_command = _console_script("report")
predict_command = _console_script("predict")
export_command = _console_script("export")
