"""Runs of two processes on one machine (JAX's distributed runtime on localhost, one CPU device each) and
SIGTERM: the same result as one process; a run stopped by SIGTERM inside an epoch resumes there and ends
with the parameters of an uninterrupted run; processes that do not share the run folder stop at once with
a clear error. Every process is joined with a timeout, so a hang fails the test instead of CI."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from test_engine import regression

from snnjax.engine.checkpoint import load_state
from snnjax.engine.loop import Trainer

TESTS = os.path.dirname(os.path.abspath(__file__))
LAUNCH = textwrap.dedent("""
    import os, signal, sys, time
    sys.path.insert(0, {tests!r})
    from test_engine import EXPERIMENT, RegressionTask
    from snnjax.engine import flags

    term_at = {term_at!r}  # (epoch, step) before which this process sends itself SIGTERM
    if term_at is not None:
        batches = RegressionTask.train_batches
        def train_batches(self, epoch, rng, start=0):
            for i, batch in enumerate(batches(self, epoch, rng, start), start):
                if (epoch, i) == term_at:
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(1.0)  # steps of microseconds would end the run before the processes agree
                yield batch
        RegressionTask.train_batches = train_batches
    flags.main(EXPERIMENT, {argv!r})
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(argvs: list[list[str]], term_at: list | None = None, timeout: float = 120) -> list[tuple[int, str]]:
    """Runs one process per argv (process i sends itself SIGTERM before ``term_at[i]``); returns each one's
    exit status and stderr. Fails if any is still running after ``timeout`` seconds (all are killed)."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", LAUNCH.format(tests=TESTS, argv=argv, term_at=(term_at or [None] * len(argvs))[i])],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, argv in enumerate(argvs)
    ]
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(f"the processes did not finish within {timeout} s")
    return [(p.returncode, err) for p, (_, err) in zip(procs, outputs, strict=True)]


def two_processes(*workdirs: str, extra: tuple[str, ...] = ()) -> list[list[str]]:
    port = free_port()
    distributed = ["--distributed", f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2"]
    return [[f"--workdir={w}", *distributed, f"--process_id={i}", "--epochs=3", *extra] for i, w in enumerate(workdirs)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """A two-process run of 3 epochs: its workdir."""
    workdir = str(tmp_path_factory.mktemp("two") / "run")
    statuses = launch(two_processes(workdir, workdir))
    assert [s for s, _ in statuses] == [0, 0], statuses
    return workdir


def test_two_processes_end_where_one_process_does(uninterrupted, tmp_path):
    single = Trainer(regression(tmp_path / "one", **{"loop.epochs": 3})).train()
    with open(os.path.join(uninterrupted, "results.json")) as f:
        results = json.load(f)
    assert results["devices"] == 2 and results["mse"] == pytest.approx(single["mse"], rel=1e-6)
    one, two = load_state(str(tmp_path / "one"))[0], load_state(uninterrupted)[0]
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), one, two)


def test_sigterm_saves_where_both_processes_agree_and_the_run_resumes_there(uninterrupted, tmp_path):
    workdir = str(tmp_path / "run")
    statuses = launch(two_processes(workdir, workdir), term_at=[None, (1, 2)])  # process 1, epoch 2
    assert [s for s, _ in statuses] == [75, 75], statuses
    message = statuses[0][1].strip().splitlines()[-1]
    assert (
        message.startswith("regression.py: stopped on SIGTERM after train step ") and f"--resume {workdir}" in message
    )
    steps = sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit())
    assert steps[-1] % 4 and 4 < steps[-1] < 12 and f"checkpoints/{steps[-1]};" in message  # inside an epoch
    resumed = launch(two_processes(workdir, workdir, extra=("--resume", workdir)))
    assert [s for s, _ in resumed] == [0, 0], resumed
    jax.tree_util.tree_map(np.testing.assert_array_equal, load_state(workdir)[0], load_state(uninterrupted)[0])
    with open(os.path.join(workdir, "metrics.jsonl")) as a, open(os.path.join(uninterrupted, "metrics.jsonl")) as b:
        for mine, theirs in zip(map(json.loads, a), map(json.loads, b), strict=True):
            assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-12)


def test_processes_without_a_shared_run_folder_stop_at_once_and_say_why(tmp_path):
    statuses = launch(two_processes(str(tmp_path / "a"), str(tmp_path / "b")), timeout=90)
    assert [s for s, _ in statuses] == [1, 1], statuses
    for _, err in statuses:
        assert "processes [1] do not see the run folder of process 0" in err.strip().splitlines()[-1]


def test_sigterm_stops_a_single_process_inside_an_epoch_and_it_resumes_there(tmp_path):
    workdir = tmp_path / "run"
    [(status, err)] = launch([[f"--workdir={workdir}", "--epochs=3"]], term_at=[(1, 2)])
    assert status == 75, err
    assert err.strip().splitlines()[-1].startswith("regression.py: stopped on SIGTERM after train step 6 of 12")
    resumed = Trainer(regression(workdir, **{"loop.epochs": 3})).train()
    reference = Trainer(regression(tmp_path / "reference", **{"loop.epochs": 3})).train()
    assert resumed["mse"] == reference["mse"]
    jax.tree_util.tree_map(
        np.testing.assert_array_equal, load_state(str(workdir))[0], load_state(str(tmp_path / "reference"))[0]
    )
    records = [[json.loads(line) for line in open(d / "metrics.jsonl")] for d in (workdir, tmp_path / "reference")]
    assert [r["train_loss"] for r in records[0]] == [r["train_loss"] for r in records[1]]


def test_processes_given_other_settings_stop_at_once_and_say_why(tmp_path):
    argvs = two_processes(str(tmp_path / "run"), str(tmp_path / "run"))
    argvs[1].append("--lr=0.2")
    statuses = launch(argvs, timeout=90)
    assert [s for s, _ in statuses] == [1, 1], statuses
    for _, err in statuses:
        assert "processes [1] run other settings than process 0" in err.strip().splitlines()[-1]
