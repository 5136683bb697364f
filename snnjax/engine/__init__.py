"""The task-agnostic engine: one jitted, data-parallel training loop with checkpoints, resume and a run
folder, for any task that implements :class:`snnjax.engine.task.Task`.

    config.py       LoopConfig, the loop's settings in every task's config
    task.py         the Task and Evaluator protocols a task implements
    evaluators.py   SumEvaluator: statistics summed over batches on the devices
    optimizer.py    the Optimizer a task hands over; shared optax helpers
    sharding.py     the device mesh, replicated and batch-split arrays, processes
    state.py        the train state (params, model state, optimizer state, EMA) as one pytree
    checkpoint.py   orbax checkpoints (the only module that imports orbax)
    rundir.py       the run folder's files, written atomically; the processes' agreement on it
    preemption.py   stopping cleanly on SIGTERM
    loop.py         Trainer: compile once, train / resume / extend, evaluate
    flags.py        an experiment's command line, derived from its config dataclasses

The engine imports no task (tests/test_architecture.py checks it).
"""
