"""A training run's options, TrainConfig, each declared once with its command-line option; and the errors
that keep a run from starting. Nothing here imports TensorFlow (seconds), so a training script refuses a
wrong option at once."""
from dataclasses import dataclass, field

from agegender import cli
from agegender.errors import AgeGenderError

# The networks model.ARCHITECTURES builds, by name (a test checks that the two agree).
ARCHITECTURES = ("original", "improved")
DEFAULT_LEARNING_RATES = {"adam": 0.001, "adamw": 0.001, "sgd": 0.01}
# L2 (sgd, adam) has its strength in the loss; AdamW's decoupled decay is a share of each kernel taken
# off per step, times the learning rate, so its usual values are a hundred times larger.
DEFAULT_WEIGHT_DECAYS = {"adam": 5e-4, "adamw": 0.05, "sgd": 5e-4}
STRATEGIES = ("auto", "one", "mirrored", "multiworker")  # train.make_strategy's


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
        "Adam, Adam with decoupled weight decay (AdamW, Loshchilov & Hutter 2019), or SGD with momentum as "
        "the original", choices=("sgd", "adam", "adamw")))
    # Not given, it is the optimizer's own (train_cli): TrainConfig(optimizer="sgd") keeps this one.
    learning_rate: float = field(default=DEFAULT_LEARNING_RATES["adam"], metadata=cli.option(
        "initial learning rate", type=cli.positive_float,
        default_text=", ".join(f"{rate} for {name}" for name, rate in DEFAULT_LEARNING_RATES.items())))
    learning_rate_decay: float = field(default=0.9, metadata=cli.option(
        "factor applied after every epoch with --schedule exponential", type=cli.decay_factor))
    # "cosine": one epoch of warm-up from a tenth of the rate, then half a cosine down to zero at
    # max_epochs (Loshchilov & Hutter 2017): the last epochs take small steps, as weight averaging would.
    schedule: str = field(default="exponential", metadata=cli.option(
        "learning rate: times --learning-rate-decay after every epoch, or one warm-up epoch then a cosine "
        "down to zero at the last epoch", choices=("exponential", "cosine")))
    momentum: float = 0.9
    # Not given, it is the optimizer's own (train_cli), as the learning rate.
    weight_decay: float = field(default=DEFAULT_WEIGHT_DECAYS["adam"], metadata=cli.option(
        "L2 on the kernels in the loss, as the original; with adamw the share of each kernel taken off per "
        "step, times the learning rate, in place of the L2", type=cli.non_negative_float,
        default_text=", ".join(f"{decay} for {name}" for name, decay in DEFAULT_WEIGHT_DECAYS.items())))
    dropout: float = field(default=0.5, metadata=cli.option(
        "share of the fully connected layers' units dropped in training", type=cli.fraction))
    augment: bool = field(default=True, metadata=cli.option(
        "no random flips and shifts of the training faces", flag="no-augment"))
    rotate_and_zoom: bool = field(default=False, metadata=cli.option(
        "augmentation also rotates (up to 15 degrees) and zooms (0.9-1.1) the faces"))
    photo_conditions: bool = field(default=False, metadata=cli.option(
        "augmentation also shrinks half the faces (to 32-128 px and back) and changes every face's exposure, "
        "as in photos and webcams"))
    edge_backgrounds: bool = field(default=False, metadata=cli.option(
        "augmentation also feathers half the faces' edges (2-15%% of the side) into a background, as faces "
        "against any background in photos"))
    random_erasing: float = field(default=0.0, metadata=cli.option(
        "augmentation also replaces a random rectangle (2-40%% of the area) of this share of the faces with "
        "noise, as hands, glasses and hair hide parts of faces in photos; 0.5 is usual", type=cli.fraction))
    label_smoothing: float = field(default=0.0, metadata=cli.option(
        "share of each gender / age-group label spread over the other classes", type=cli.fraction))
    # mixup (Zhang et al. 2018): each face is blended with another face of its batch, by a share drawn
    # from Beta(alpha, alpha), and its loss is the same blend of the two faces' losses. The epoch's
    # training accuracies are then those of the blended faces against each one's own labels.
    mixup: float = field(default=0.0, metadata=cli.option(
        "alpha of the Beta distribution each training face's mixup share is drawn from (0.2 is usual); "
        "0: no mixup", type=cli.non_negative_float))
    width: float = field(default=1.0, metadata=cli.option(
        "with --arch improved: its channels (32, 64, 128, 256) times this, rounded to eights; its FLOPs grow "
        "about as the square", type=cli.positive_float))
    input_size: int = field(default=128, metadata=cli.option(
        "side in pixels the network sees the 128x128 faces at; fewer FLOPs below 128", type=cli.input_size))
    # Exact age: weight of the mean absolute error of the expected age (years), beside the
    # distribution's cross-entropy (DLDL-v2, Gao et al. 2018): it trains the read-out itself.
    expected_age_loss: float = field(default=0.0, metadata=cli.option(
        "with --exact-age: weight of the expected age's absolute error in years", type=cli.non_negative_float))
    class_weights: bool = field(default=False, metadata=cli.option(
        "weight classes by inverse frequency in the loss (the age groups are imbalanced)"))
    # Children's gender is the hardest to tell (valid, models/improved: about 0.72 under 18 against 0.95+
    # for adults), and it is what leaves the races with the most children the worst gender accuracy.
    # Weighted 3x on both bundled recipes it gained children +4.7 and +0.6 points: no bundled recipe uses it.
    child_gender_weight: float = field(default=1.0, metadata=cli.option(
        "weight of the gender loss of faces under 18 in training (1: as any other face's)",
        type=cli.positive_float))
    race_head: bool = field(default=False, metadata=cli.option(
        "also learn the race (UTKFace) as an auxiliary task; saved models have no race head"))
    # Knowledge distillation (Hinton et al. 2015; born-again networks, Furlanello et al. 2018): a share
    # of each target is a trained model's calibrated answer for the same augmented face, which says how
    # alike the classes look where the labels say only which one is right (and are noisy for ages).
    teacher: str = field(default="", metadata=cli.option(
        "a saved model folder whose calibrated answers the network also learns from, on every task the "
        "two share (knowledge distillation)", default_text="none"))
    teacher_share: float = field(default=0.5, metadata=cli.option(
        "with --teacher: share of each target that is the teacher's answer, the rest the label's",
        type=cli.fraction))
    # Polyak averaging (an exponential moving average of the weights, as Inception-v3 and EfficientNet are
    # evaluated): the network validated, saved and tested is the average of its recent steps' weights,
    # which the noise of single steps moves less than the last step's weights.
    ema_decay: float = field(default=0.0, metadata=cli.option(
        "validate and save an exponential moving average of the weights, kept with this decay a step (0.998 "
        "averages about the last 500 steps); 0: the weights as trained", type=cli.fraction))
    # Sharpness-aware minimisation (SAM, Foret et al. 2021): each step's gradient is taken where the
    # loss is highest within rho of the weights (first-order: a step of length rho up the gradient), so
    # training settles in flat minima, which generalise better and are hurt less by noisy labels
    # (UTKFace's ages were estimated by a model). Each step costs two passes instead of one.
    sam_rho: float = field(default=0.0, metadata=cli.option(
        "sharpness-aware minimisation: radius of the weights' neighbourhood each step's gradient is taken "
        "at the worst point of (0.05 is usual); each step costs twice as much; 0: plain steps",
        type=cli.non_negative_float))
    seed: int = field(default=0, metadata=cli.option(
        "seed of the initial weights, the shuffling and the augmentation", type=cli.non_negative_int))
