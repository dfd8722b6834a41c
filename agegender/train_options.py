"""A training run's options, TrainConfig, each declared once with its command-line option; and the errors
that keep a run from starting. Nothing here imports TensorFlow (seconds), so a training script refuses a
wrong option at once."""
from dataclasses import dataclass, field

from agegender import cli
from agegender.errors import AgeGenderError

# The networks model.ARCHITECTURES builds, by name (a test checks that the two agree).
ARCHITECTURES = ("original", "improved")
DEFAULT_LEARNING_RATES = {"adam": 0.001, "sgd": 0.01}  # a config without a learning rate takes its optimizer's
DEFAULT_TEACHER_SHARE = 0.5
SCHEDULES = ("exponential", "cosine")
# Tasks learned only to shape the shared features: no saved model has their heads, and early stopping
# does not count them. Race is one (--race-head): UTKFace labels it, and a model that shows it is a
# different product from the one this project offers.
AUXILIARY_TASKS = ("race",)
STRATEGIES = ("auto", "one", "mirrored", "multiworker")  # distribute.make_strategy's


class TrainError(AgeGenderError):
    """A run that cannot start: a run folder in the way, a store that does not fit."""


@dataclass
class TrainConfig:
    """A run's options. Each field that is a command-line option declares it here, once (cli.option: its
    help, and its flag, type or choices where needed); train_cli builds the training scripts' parser from
    them. tasks is set by the script, momentum is the original's."""
    tasks: tuple = ("gender", "age_group")
    architecture: str = field(default="original", metadata=cli.option(
        "the original CNN, or a stronger one with batch normalisation and residual blocks",
        flag="arch", choices=ARCHITECTURES))
    exact_age: bool = field(default=False, metadata=cli.option(
        "also learn the age in years (0..100) with a head of its own"))
    batch_size: int = field(default=128, metadata=cli.option(
        "faces a step on each replica; see --strategy", type=cli.positive_int))
    max_epochs: int = field(default=30, metadata=cli.option(
        "maximum epochs; with --resume, the run continues up to this many", flag="epochs", type=cli.positive_int))
    patience: int = field(default=4, metadata=cli.option(
        "stop after this many epochs without a better validation accuracy", type=cli.positive_int))
    # Adam reached a slightly better validation accuracy than the original's SGD with momentum in
    # 8 joint epochs on UTKFace (mean of gender and age 0.784 against 0.780; bench/RESULTS.md).
    optimizer: str = field(default="adam", metadata=cli.option(
        "Adam, or SGD with momentum as the original", choices=("sgd", "adam")))
    # None: the optimizer's own (__post_init__).
    learning_rate: float = field(default=None, metadata=cli.option(
        "initial learning rate", type=cli.positive_float,
        default_text=", ".join(f"{rate} for {name}" for name, rate in DEFAULT_LEARNING_RATES.items())))
    learning_rate_decay: float = field(default=0.9, metadata=cli.option(
        "factor applied after every epoch with --schedule exponential", type=cli.decay_factor))
    # "cosine": one epoch of warm-up from a tenth of the rate, then half a cosine down to zero at
    # max_epochs (Loshchilov & Hutter 2017): the last epochs take small steps, as weight averaging would.
    schedule: str = field(default="exponential", metadata=cli.option(
        "learning rate: times --learning-rate-decay after every epoch, or one warm-up epoch then a cosine "
        "down to zero at the last epoch", choices=SCHEDULES))
    momentum: float = 0.9
    weight_decay: float = field(default=5e-4, metadata=cli.option(
        "L2 on the kernels in the loss, as the original", type=cli.non_negative_float))
    dropout: float = field(default=0.5, metadata=cli.option(
        "share of the fully connected layers' units dropped in training", type=cli.fraction))
    augment: bool = field(default=True, metadata=cli.option(
        "no random flips and shifts of the training faces", flag="no-augment"))
    rotate_and_zoom: bool = field(default=False, metadata=cli.option(
        "augmentation also rotates (up to 15 degrees) and zooms (0.9-1.1) the faces"))
    edge_backgrounds: bool = field(default=False, metadata=cli.option(
        "augmentation also feathers half the faces' edges (2-15%% of the side) into a background, as faces "
        "against any background in photos"))
    label_smoothing: float = field(default=0.0, metadata=cli.option(
        "share of each gender / age-group label spread over the other classes", type=cli.fraction))
    input_size: int = field(default=128, metadata=cli.option(
        "side in pixels the network sees the 128x128 faces at; fewer FLOPs below 128", type=cli.input_size))
    # Exact age: weight of the mean absolute error of the expected age (years), beside the
    # distribution's cross-entropy (DLDL-v2, Gao et al. 2018): it trains the read-out itself.
    expected_age_loss: float = field(default=0.0, metadata=cli.option(
        "with --exact-age: weight of the expected age's absolute error in years", type=cli.non_negative_float))
    race_head: bool = field(default=False, metadata=cli.option(
        "also learn the race (UTKFace) as an auxiliary task; saved models have no race head"))
    # Knowledge distillation (Hinton et al. 2015; born-again networks, Furlanello et al. 2018): a share
    # of each target is a trained model's calibrated answer for the same augmented face, which says how
    # alike the classes look where the labels say only which one is right (and are noisy for ages).
    teacher: str = field(default="", metadata=cli.option(
        "a saved model folder whose calibrated answers the network also learns from, on every task the "
        "two share (knowledge distillation)", default_text="none"))
    # None: DEFAULT_TEACHER_SHARE where there is a teacher (__post_init__).
    teacher_share: float = field(default=None, metadata=cli.option(
        "with --teacher: share of each target that is the teacher's answer, the rest the label's",
        type=cli.fraction, default_text=str(DEFAULT_TEACHER_SHARE)))
    seed: int = field(default=0, metadata=cli.option(
        "seed of the initial weights, the shuffling and the augmentation", type=cli.non_negative_int))

    def __post_init__(self):
        """The rules between options, written once: the command line's parser and the library both meet
        them here (TrainError, one line); and the defaults that follow from another option."""
        if self.optimizer not in DEFAULT_LEARNING_RATES:
            raise TrainError(f"unknown optimizer {self.optimizer!r}; choose {' or '.join(DEFAULT_LEARNING_RATES)}")
        if self.schedule not in SCHEDULES:
            raise TrainError(f"unknown schedule {self.schedule!r}; choose {' or '.join(SCHEDULES)}")
        if self.learning_rate is None:
            self.learning_rate = DEFAULT_LEARNING_RATES[self.optimizer]
        if self.teacher_share is not None and not self.teacher:
            raise TrainError("--teacher-share: there is no teacher to share the targets with; add --teacher MODEL")
        if self.teacher and self.teacher_share is None:
            self.teacher_share = DEFAULT_TEACHER_SHARE
        if self.expected_age_loss and not self.exact_age:
            raise TrainError("--expected-age-loss: there is no exact-age head to train; add --exact-age")

    @property
    def learned_tasks(self):
        """The tasks the network has heads for: the script's, then exact age and race where asked."""
        return tuple(self.tasks) + (("exact_age",) if self.exact_age else ()) + (("race",) if self.race_head else ())

    @property
    def shown_tasks(self):
        """The learned tasks a saved model answers: all but the auxiliary ones."""
        return tuple(task for task in self.learned_tasks if task not in AUXILIARY_TASKS)
