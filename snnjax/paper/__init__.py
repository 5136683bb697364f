"""Reproducing the paper: the grid of runs behind its tables (``grid``), running it (``runner``), and the
report with the paper's numbers beside ours (``report``, ``figures``, ``probe``).
``experiments/paper.py`` and ``experiments/report.py`` are the command lines."""
