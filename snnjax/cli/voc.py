"""Train or evaluate the spiking YOLOv5n ("SEW-YOLOv5n") with a learnable temporal encoder on PASCAL VOC
(or on a synthetic detection set).

Defaults reproduce the paper's detection setting: YOLOv5n with SEW-ADD bottlenecks, T = 4, phase encoding
with learnable threshold (LT), learnable conv (LC) and surrogate gradient (SG), learnable LIF neurons
(τ = 2, V_th = 1, sigmoid surrogate; every BatchNorm after the encoder starts at γ = 2, --bn_scale),
VOC07+12 trainval -> VOC07 test at 320×320, 300 epochs at batch 24, and YOLOv5 v7.0's scratch-low recipe
(SGD + Nesterov 0.937, lr 0.01 decaying linearly to 1e-4, 3 warm-up epochs, accumulation to a nominal
batch of 64, weight decay 5e-4, clipping at 10, EMA of the weights; mosaic, scale/translate, HSV and flip
augmentation). mAP is reported under YOLOv5's val.py rule (primary) and the VOC07/VOC12 devkit rules.
Re-running the same command resumes; a finished run is never retrained (--resume WORKDIR --extend
--epochs N trains it further).

Examples:
    python experiments/voc.py --encoding=phase --data_dir ~/tensorflow_datasets
    python experiments/voc.py --encoding=phase --dataset=synthetic            # quick CPU run
    python experiments/voc.py --mode=ann --data_dir ~/tensorflow_datasets     # the YOLOv5n baseline
    python experiments/voc.py --encoding=phase --dataset=synthetic --eval_only  # re-evaluate the last checkpoint
"""

from snnjax.cli.hugepages import restart_with_hugepages
from snnjax.engine.flags import Experiment
from snnjax.engine.flags import main as run_experiment
from snnjax.tasks import detection

EXPERIMENT = Experiment(
    prog="voc.py",
    description=__doc__,
    default=detection.PAPER,
    presets={"synthetic": detection.SYNTHETIC},
    setup=detection.setup,
    workdir=detection.default_workdir,
    result_keys=("map50", "map50_95", "voc07_map50", "voc12_map50", "mean_firing_rate", "params", "wall_time_s"),
)


def main(argv: list[str] | None = None) -> dict:
    """Parses the flags, then trains (or resumes) or evaluates; returns the results."""
    return run_experiment(EXPERIMENT, argv)


if __name__ == "__main__":
    restart_with_hugepages()
    main()
