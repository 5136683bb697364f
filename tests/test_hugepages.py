"""snnjax.cli.hugepages: when a program restarts itself with glibc's huge-page tunable, and that it does."""

import os
import platform
import subprocess
import sys

import pytest

from snnjax.cli.hugepages import (
    TUNABLE,
    glibc_version,
    hugepage_environment,
    hugepages_in_use,
    kernel_thp_mode,
)

GLIBC = (2, 36)


def test_the_tunable_joins_the_users_tunables_and_keeps_the_rest_of_the_environment():
    environ = {"PATH": "/bin", "GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
    assert hugepage_environment(environ, GLIBC, "madvise") == {
        "PATH": "/bin",
        "GLIBC_TUNABLES": f"glibc.malloc.arena_max=2:{TUNABLE}=1",
    }
    assert hugepage_environment({}, (2, 35), "always") == {"GLIBC_TUNABLES": f"{TUNABLE}=1"}


@pytest.mark.parametrize(
    "environ, glibc, thp",
    [
        ({"SNNJAX_HUGEPAGES": "0"}, GLIBC, "madvise"),  # declined
        ({"GLIBC_TUNABLES": f"{TUNABLE}=0"}, GLIBC, "madvise"),  # the user's own choice, or a done restart
        ({}, (2, 34), "madvise"),  # glibc without the tunable
        ({}, None, "madvise"),  # another C library or platform
        ({}, GLIBC, "never"),  # huge pages off in the kernel
        ({}, GLIBC, None),  # no THP setting to read
    ],
)
def test_no_restart_where_it_would_change_nothing_or_was_declined(environ, glibc, thp):
    assert hugepage_environment(environ, glibc, thp) is None


def test_the_kernel_mode_is_the_bracketed_word(tmp_path):
    setting = tmp_path / "enabled"
    setting.write_text("always [madvise] never\n")
    assert kernel_thp_mode(str(setting)) == "madvise"
    assert kernel_thp_mode(str(tmp_path / "missing")) is None


def test_glibc_version_agrees_with_the_platform_module():
    name, version = platform.libc_ver()
    expected = tuple(int(part) for part in version.split(".")[:2]) if name == "glibc" else None
    assert glibc_version() == expected


def test_in_use_reads_this_processs_tunables():
    on = {"GLIBC_TUNABLES": f"glibc.malloc.arena_max=2:{TUNABLE}=1"}
    assert hugepages_in_use(on) == (glibc_version() is not None)
    assert not hugepages_in_use({"GLIBC_TUNABLES": f"{TUNABLE}=0"}) and not hugepages_in_use({})


def test_a_program_restarts_once_with_its_arguments_before_importing_jax():
    code = (
        "import sys; from snnjax.cli.hugepages import restart_with_hugepages; "
        "print('jax' in sys.modules, sys.argv[1:]); restart_with_hugepages(); import os; "
        "print(os.environ.get('GLIBC_TUNABLES'))"
    )
    environ = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "SNNJAX_HUGEPAGES")}
    out = subprocess.run(
        [sys.executable, "-c", code, "--flag"], env=environ, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    restarted = hugepage_environment(environ, glibc_version(), kernel_thp_mode()) is not None
    first = "False ['--flag']"
    assert out == ([first, first, f"{TUNABLE}=1"] if restarted else [first, "None"])


def test_run_restarts_then_runs_the_program_on_the_command_lines_flags_once():
    code = "from snnjax.cli import run; run('report')"
    environ = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    done = subprocess.run([sys.executable, "-c", code, "--help"], env=environ, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.count("usage: report.py") == 1, done.stderr
