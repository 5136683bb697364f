"""Train or evaluate QKFormer with a learnable temporal encoder on CIFAR-10/100 (or synthetic/npz data).

Defaults reproduce the paper's CIFAR setting: QKFormer-3-256, T = 4, TTFS encoding with learnable
threshold (LT), learnable conv (LC) and surrogate gradient (SG), learnable LIF neurons, and the
official QKFormer recipe (AdamW 1e-3, weight decay 0.06, batch 64, 400 + 10 cooldown epochs, cosine
with 20 warm-up epochs, RandAugment + mixup + label smoothing + random erasing), seed 35 (the paper's
other seeds: 1000 and 0). Re-running the same command resumes; a finished run is never retrained or
overwritten (--resume WORKDIR --extend --epochs N trains it further).

Examples:
    python experiments/cifar.py --encoding=ttfs --dataset=cifar10 --data_dir ~/tensorflow_datasets
    python experiments/cifar.py --encoding=ttfs --dataset=synthetic          # quick CPU run
    python experiments/cifar.py --resume runs/cifar/synthetic_3-64_ttfs+lt+lc+sg_T2_learnable_s35
    python experiments/cifar.py --encoding=ttfs --dataset=synthetic --eval_only --shuffle_time  # Appendix B
    python experiments/cifar.py --eval_only --init_from qkformer.pth --encoding=direct --neuron=lif \\
        --model=4-384 --official_ssa_scan
"""

from snnjax.cli.hugepages import restart_with_hugepages
from snnjax.engine.flags import Experiment
from snnjax.engine.flags import main as run_experiment
from snnjax.tasks import classification

EXPERIMENT = Experiment(
    prog="cifar.py",
    description=__doc__,
    default=classification.PAPER,
    presets={"synthetic": classification.SYNTHETIC},
    setup=classification.setup,
    workdir=classification.default_workdir,
    result_keys=("accuracy", "loss", "mean_firing_rate", "params", "wall_time_s"),
)


def main(argv: list[str] | None = None) -> dict:
    """Parses the flags, then trains (or resumes) or evaluates; returns the results."""
    return run_experiment(EXPERIMENT, argv)


if __name__ == "__main__":
    restart_with_hugepages()
    main()
