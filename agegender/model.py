"""The networks (the original CNN and a stronger option), their heads, and saving / loading them.

Both take uint8 128x128 faces, grayscale ([n,128,128], the original's) or RGB ([n,128,128,3], a model
trained on a colour store: `channels`); a network may look at them at a lower resolution (`input_size`,
resized inside it), which costs fewer FLOPs a face. A trunk turns a face into features;
each task then has its own hidden FC layer (dropout) -> logits: "gender" (2), "age_group" (the age groups) and,
as an option, "exact_age" (0..100 years, read as the softmax's expected value). Inference divides each
task's logits by a temperature fitted on the valid split, so that probabilities mean what they say, and
may average the logits of several views of each face: its mirror image (`flip_average`) and the face
zoomed in or out (`zooms`), each view one more pass of the network.
Written with tf.nn ops on plain variables, as the original was.
"""
import json
import os
import zipfile
import zlib

import numpy as np

from agegender import atomic, cli, labels, store
from agegender.errors import AgeGenderError
from agegender.faces import COLOURS, FACE_SIZE, face_shape
from agegender.quiet_tensorflow import tf

MODEL_JSON = "model.json"
WEIGHTS = "weights.npz"


EXACT_AGES = 101  # the exact-age head's classes: 0..100 years (wash keeps ages in that range)
# The store's label column each task learns: the task's own name, but the exact age learns the years ("age").
TASK_LABEL = {"gender": "gender", "age_group": "age_group", "exact_age": "age", "race": "race"}


def task_classes(task, age_edges):
    """Class names of a task's output, in output order."""
    if task == "gender":
        return list(labels.GENDER_NAMES)
    if task == "age_group":
        return list(labels.age_group_names(age_edges))
    if task == "exact_age":
        return [str(years) for years in range(EXACT_AGES)]
    if task == "race":
        return list(labels.RACE_NAMES)
    raise ValueError(f"unknown task {task!r}")


def expected_age(probabilities):
    """Years from the exact-age head's softmax [n, 101]: its expected value (DEX, Rothe et al. 2015)."""
    return probabilities @ np.arange(EXACT_AGES, dtype=np.float32)


# model.json's temperatures["age_interval"]: the exact-age head's distribution is made sharper or flatter
# by it for the age interval alone (evaluate.age_interval), fitted so that the intervals hold 80% of the
# valid split's ages (scoring.calibrate). The head's own temperature, which the expected age (the age
# shown) reads, stays apart from it.
AGE_INTERVAL = "age_interval"


def age_interval_temperature(description):
    """The age interval's temperature in a model.json: 1, the head's distribution as it is, until fitted."""
    return description.get("temperatures", {}).get(AGE_INTERVAL, 1.0)


def zoomed(images, zoom):
    """Float faces [n,128,128,c] seen closer (zoom > 1: their centre 1/zoom, cropped) or from further away
    (zoom < 1: inside a reflected border of the faces' own edge), at a side of about 128 / zoom pixels."""
    side = round(FACE_SIZE / zoom)
    if side < FACE_SIZE:
        start = (FACE_SIZE - side) // 2
        return images[:, start:start + side, start:start + side]
    pad = (side - FACE_SIZE) // 2
    return tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], "REFLECT") if pad else images  # MirrorPad in TFLite


def local_response_normalization(x, depth_radius=2, bias=1.0, alpha=1e-4, beta=0.75):
    """tf.nn.local_response_normalization (AlexNet's LRN, as the original used), computed faster.

    The sum of squares over the 2 * depth_radius + 1 neighbouring channels is a product with a band
    matrix, and d ** -0.75 is rsqrt(d) * rsqrt(sqrt(d)). Same values (to 1e-6) and, in TensorFlow,
    the same speed; but TFLite's own LRN kernel is slow: with it one face took 7 ms in TFLite float32,
    with this form 1.1-1.5 ms.
    """
    channels = x.shape[-1]
    offsets = np.subtract.outer(np.arange(channels), np.arange(channels))
    band = tf.constant(np.abs(offsets) <= depth_radius, tf.float32)
    squares = tf.tensordot(tf.square(x), band, axes=1)
    scale = bias + alpha * squares
    if beta == 0.75:
        return x * tf.math.rsqrt(scale) * tf.math.rsqrt(tf.sqrt(scale))
    return x * tf.pow(scale, -beta)


class OriginalCNN(tf.Module):
    """The original three-conv CNN with one softmax head per task ({"gender": 2, "age_group": 4}, ...)."""

    architecture = "original"
    feature_size = 512   # what the trunk hands to every head
    head_size = 100      # each head's hidden layer

    def __init__(self, class_counts, dropout=0.5, seed=0, input_size=FACE_SIZE, temperatures=None,
                 flip_average=False, zooms=(1.0,), channels=1):
        super().__init__(name="cnn")
        self.class_counts = dict(class_counts)
        self.dropout = dropout
        self.input_size = input_size
        self.channels = channels
        # Traced for this model's faces: [None,128,128] gray, [None,128,128,3] RGB.
        self.probabilities = tf.function(self.calibrated_probabilities, input_signature=[self.input_spec()],
                                         reduce_retracing=True)
        # Plain floats, part of the traced inference graph: model.json holds them, not weights.npz.
        self.temperatures = {task: float((temperatures or {}).get(task, 1.0)) for task in self.class_counts}
        self.flip_average = bool(flip_average)
        self.zooms = tuple(float(zoom) for zoom in zooms)
        self._generator = tf.random.Generator.from_seed(seed)
        self.build_trunk()
        # Small output weights: every class starts near equally likely, so the first steps are not
        # spent undoing confident random guesses.
        self.heads = {task: (self.layer(f"{task}/fc", [self.feature_size, self.head_size]),
                             self.layer(f"{task}/logits", [self.head_size, count], gain=0.1))
                      for task, count in self.class_counts.items()}
        del self._generator  # its state is a variable, and no part of the model

    def layer(self, name, shape, gain=2.0):
        """He-initialised kernel and zero bias: ReLU layers then start with a stable signal."""
        fan_in = int(np.prod(shape[:-1]))
        kernel = tf.Variable(self._generator.truncated_normal(shape) * np.sqrt(gain / fan_in) / 0.88,
                             name=f"{name}/kernel")
        return kernel, tf.Variable(tf.zeros(shape[-1:]), name=f"{name}/bias")

    def build_trunk(self):
        self.conv1 = self.layer("conv1", [7, 7, self.channels, 32])
        self.conv2 = self.layer("conv2", [5, 5, 32, 64])
        self.conv3 = self.layer("conv3", [3, 3, 64, 64])
        self.fc = self.layer("fc", [self.pooled_side ** 2 * 64, self.feature_size])

    @property
    def pooled_side(self):
        """Side of the last feature map: the stride-2 conv and three stride-2 pools divide by 16."""
        return -(-self.input_size // 16)

    def trunk(self, x, training, seed=None):
        """conv 7x7/32 stride 2 -> ReLU -> LRN -> max-pool 3x3/2; conv 5x5/64 -> ReLU -> LRN -> max-pool;
        conv 3x3/64 -> ReLU -> max-pool; flatten (8x8x64 for 128 px faces) -> FC 512 ReLU (dropout)."""
        for (kernel, bias), stride, normalise in ((self.conv1, 2, True), (self.conv2, 1, True),
                                                  (self.conv3, 1, False)):
            x = tf.nn.relu(tf.nn.conv2d(x, kernel, stride, "SAME") + bias)
            if normalise:
                x = local_response_normalization(x)
            x = tf.nn.max_pool2d(x, 3, 2, "SAME")
        return self._dense(tf.reshape(x, [-1, self.pooled_side ** 2 * 64]), self.fc, training, seed, 0)

    @property
    def batch_norms(self):
        """The batch normalisation layers (none in the original)."""
        return [module for module in self.submodules if isinstance(module, BatchNorm)]

    @property
    def kernels(self):
        """The weights L2 regularisation applies to (not the biases, nor batch normalisation's)."""
        return [v for v in self.trainable_variables if v.name.split(":")[0].endswith("kernel")]

    def input_spec(self, batch=None):
        """The faces this model takes: uint8 [batch,128,128] gray, [batch,128,128,3] RGB."""
        return tf.TensorSpec([batch, *face_shape(self.channels)], tf.uint8)

    def preprocess(self, images, zooms=(1.0,), mirror=False):
        """uint8 faces [b,128,128] or [b,128,128,1] (gray), [b,128,128,3] (RGB) -> zero-mean,
        unit-variance floats, per image over all its channels, at the network's input size: the faces
        as they are, or their views (`zoomed` at each of `zooms`, and mirrored too with `mirror`), one
        view of every face after the other in one batch.

        Standardising each face removes the brightness and contrast of its photo, which differ far
        more between a webcam and the training set than faces do; over all channels together, so
        that the face's colours stay as they were relative to each other.
        """
        images = tf.reshape(images, [-1, FACE_SIZE, FACE_SIZE, self.channels])
        # Mirrored as uint8, before any arithmetic: TFLite has integer kernels for that reverse.
        seen = [images, tf.reverse(images, axis=[2])] if mirror else [images]
        views = []
        for zoom in zooms:
            for faces in seen:
                view = zoomed(tf.cast(faces, tf.float32), zoom)
                if view.shape[1] != self.input_size:
                    view = tf.image.resize(view, [self.input_size, self.input_size])  # bilinear: a TFLite builtin
                views.append(view)
        # Standardised once the views are one batch: from here the faces stay float into the first
        # convolution of an int8 export (export.py), where a concatenation would have cut them to int8.
        return tf.image.per_image_standardization(tf.concat(views, axis=0) if len(views) > 1 else views[0])

    def __call__(self, images, training=False, seed=None):
        """Logits per task for a batch of uint8 faces; in training, `seed` draws the dropout (see dropped)."""
        return self.logits(self.preprocess(images), training, seed)

    def logits(self, x, training=False, seed=None):
        """Logits per task for preprocessed faces."""
        x = self.trunk(x, training, seed)
        logits = {}
        for site, (task, (hidden, output)) in enumerate(self.heads.items(), start=1):
            h = self._dense(x, hidden, training, seed, site)
            logits[task] = tf.matmul(h, output[0]) + output[1]
        return logits

    def _dense(self, x, layer, training, seed, site):
        return self.dropped(tf.nn.relu(tf.matmul(x, layer[0]) + layer[1]), training, seed, site)

    def dropped(self, x, training, seed, site):
        """x with dropout in training, its units drawn from `seed` [2] and the layer's `site` number:
        stateless, so that the same step of a resumed run drops the same units as the uninterrupted run."""
        if not (training and self.dropout):
            return x
        return tf.nn.experimental.stateless_dropout(
            x, self.dropout, tf.random.experimental.stateless_fold_in(seed, site))

    @property
    def views(self):
        """Views of each face that inference averages: network passes a face."""
        return len(self.zooms) * (2 if self.flip_average else 1)

    def calibrated_probabilities(self, faces):
        """Calibrated softmax probabilities per task for uint8 faces (input_spec): what inference uses,
        as the tf.function `probabilities`. With several views of each face (zooms, mirror images), the
        mean of their logits."""
        logits = self.logits(self.preprocess(faces, self.zooms, self.flip_average))  # every view in one pass
        if self.views > 1:
            shape = [self.views, tf.shape(faces)[0]]
            logits = {task: tf.reduce_mean(tf.reshape(values, shape + [values.shape[-1]]), axis=0)
                      for task, values in logits.items()}
        return {task: tf.nn.softmax(values / self.temperatures[task]) for task, values in logits.items()}

    def weights(self):
        """Every variable by name (batch normalisation's running statistics too), as numpy arrays."""
        return {v.name.split(":")[0]: v.numpy() for v in self.variables}

    def assign(self, weights):
        for v in self.variables:
            v.assign(weights[v.name.split(":")[0]])


class BatchNorm(tf.Module):
    """Batch normalisation: batch statistics in training, running averages of them at inference."""

    def __init__(self, name, channels, momentum=0.9):
        super().__init__()
        self.momentum = momentum
        self.scale = tf.Variable(tf.ones([channels]), name=f"{name}/scale")
        self.offset = tf.Variable(tf.zeros([channels]), name=f"{name}/offset")
        # momentum 0.9: an epoch of UTKFace is only ~130 steps, and 0.99 left the averages far from the
        # batch statistics after it (valid accuracy 0.55 against 0.76 in training).
        # ON_READ + MEAN: under tf.distribute each replica updates its own copy; reading averages them.
        running = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                       aggregation=tf.VariableAggregation.MEAN)
        self.mean = tf.Variable(tf.zeros([channels]), name=f"{name}/mean", **running)
        self.variance = tf.Variable(tf.ones([channels]), name=f"{name}/variance", **running)

    def __call__(self, x, training):
        if training:
            mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
            self.mean.assign(self.momentum * self.mean + (1 - self.momentum) * mean)
            self.variance.assign(self.momentum * self.variance + (1 - self.momentum) * variance)
        else:
            mean, variance = self.mean, self.variance
        return tf.nn.batch_normalization(x, mean, variance, self.offset, self.scale, 1e-3)


def convolve(x, conv_bn, stride, training, relu=True):
    """Convolution -> batch normalisation (-> ReLU), with a (kernel, BatchNorm) pair.

    A plain function: AutoGraph, tracing a saved model's signature, called a static method of the
    network with the network as its first argument."""
    kernel, norm = conv_bn
    x = norm(tf.nn.conv2d(x, kernel, stride, "SAME"), training)
    return tf.nn.relu(x) if relu else x


class ImprovedCNN(OriginalCNN):
    """A stronger trunk for the same faces and heads: batch normalisation, residual blocks, more filters.

    conv 5x5/32 stride 2 -> BN -> ReLU -> max-pool (32x32); conv 3x3/64 -> BN -> ReLU -> max-pool (16x16);
    residual block 128 -> max-pool (8x8); residual block 256 -> global average pool (256) -> dropout.
    Fewer parameters than the original (its FC 512 layer held most) but more FLOPs a face: forward_flops
    counts both models' from their graphs.
    """

    architecture = "improved"
    head_size = 128

    feature_size = 256

    def build_trunk(self):
        stem, conv, block1, block2 = 32, 64, 128, self.feature_size
        self.stem = self.conv_bn("stem", [5, 5, self.channels, stem])
        self.conv = self.conv_bn("conv", [3, 3, stem, conv])
        self.blocks = [self.residual_block(f"block{i}", inputs, outputs)
                       for i, (inputs, outputs) in enumerate(((conv, block1), (block1, block2)), start=1)]

    def conv_bn(self, name, shape):
        kernel, _ = self.layer(name, shape)  # the bias is batch normalisation's offset
        return kernel, BatchNorm(f"{name}/bn", shape[-1])

    def residual_block(self, name, inputs, outputs):
        return (self.conv_bn(f"{name}/conv1", [3, 3, inputs, outputs]),
                self.conv_bn(f"{name}/conv2", [3, 3, outputs, outputs]),
                self.conv_bn(f"{name}/shortcut", [1, 1, inputs, outputs]))

    def trunk(self, x, training, seed=None):
        x = tf.nn.max_pool2d(convolve(x, self.stem, 2, training), 3, 2, "SAME")
        x = tf.nn.max_pool2d(convolve(x, self.conv, 1, training), 3, 2, "SAME")
        for i, (first, second, shortcut) in enumerate(self.blocks):
            y = convolve(convolve(x, first, 1, training), second, 1, training, relu=False)
            x = tf.nn.relu(y + convolve(x, shortcut, 1, training, relu=False))
            if i < len(self.blocks) - 1:
                x = tf.nn.max_pool2d(x, 3, 2, "SAME")
        return self.dropped(tf.reduce_mean(x, axis=[1, 2]), training, seed, 0)


ARCHITECTURES = {network.architecture: network for network in (OriginalCNN, ImprovedCNN)}


def forward_flops(model):
    """Floating-point operations inference spends on one face: the network's, counted by TensorFlow's
    profiler in the traced, frozen graph of one face's forward pass, times its views."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    one_face = tf.function(lambda faces: model(faces)).get_concrete_function(model.input_spec(1))
    profiler = tf.compat.v1.profiler
    options = profiler.ProfileOptionBuilder(profiler.ProfileOptionBuilder.float_operation()).with_empty_output()
    flops = profiler.profile(graph=convert_variables_to_constants_v2(one_face).graph,
                             options=options.build()).total_float_ops
    return flops * model.views


def build_model(architecture, class_counts, dropout=0.5, seed=0, input_size=FACE_SIZE, channels=1):
    if architecture not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {architecture!r}; choose {' or '.join(ARCHITECTURES)}")
    return ARCHITECTURES[architecture](class_counts, dropout=dropout, seed=seed, input_size=input_size,
                                       channels=channels)


def model_folder_problem(folder):
    """Why `folder` is not a model folder save_model wrote (so it must not be replaced), or None."""
    return atomic.folder_problem(folder, "a model folder", MODEL_JSON, {MODEL_JSON: atomic.FILE, WEIGHTS: atomic.FILE})


def save_model(model, folder, metadata):
    """Write model.json (architecture, tasks, label names, age edges, ...) and weights.npz.

    Written to a temporary folder that replaces `folder` in one rename: a reader never sees half.
    """
    description = {"architecture": model.architecture, "face_size": FACE_SIZE, "channels": model.channels,
                   "input_size": model.input_size, "dropout": model.dropout,
                   "class_counts": model.class_counts, "temperatures": model.temperatures,
                   "flip_average": model.flip_average, "zooms": list(model.zooms), **metadata}
    with atomic.replacing_folder(folder, model_folder_problem) as temporary:
        atomic.write_json(os.path.join(temporary, MODEL_JSON), description)
        np.savez_compressed(os.path.join(temporary, WEIGHTS), **model.weights())


def without_heads(model, tasks):
    """A copy of the model without the heads of `tasks` (auxiliary tasks, learned but never shown)."""
    kept = {task: count for task, count in model.class_counts.items() if task not in tasks}
    copy = type(model)(kept, dropout=model.dropout, input_size=model.input_size,
                       temperatures=model.temperatures, flip_average=model.flip_average, zooms=model.zooms,
                       channels=model.channels)
    copy.assign(model.weights())
    return copy


class ModelError(AgeGenderError):
    """A model folder that is missing, damaged, or whose description does not fit its weights."""


def load_model(folder):
    """(the network, OriginalCNN or ImprovedCNN, with the saved weights; its model.json as a dict) from a
    folder save_model wrote."""
    json_path = os.path.join(folder, MODEL_JSON)
    try:
        with open(json_path, encoding="utf-8") as file:
            description = json.load(file)
        with np.load(os.path.join(folder, WEIGHTS), allow_pickle=False) as archive:
            weights = dict(archive)
    except FileNotFoundError as error:
        raise ModelError(f"{folder}: not a saved model ({os.path.basename(error.filename)} missing)") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        # ValueError: model.json is not JSON; the others: weights.npz cut short or damaged.
        raise ModelError(f"{folder}: damaged model ({error}); copy it again from the run that "
                         "trained it") from None
    check_description(description, json_path, weights)
    model = ARCHITECTURES[description["architecture"]](description["class_counts"],
                                                       dropout=description.get("dropout", 0.0),
                                                       input_size=description.get("input_size", FACE_SIZE),
                                                       temperatures=description.get("temperatures"),
                                                       flip_average=description.get("flip_average", False),
                                                       zooms=description.get("zooms", [1.0]),
                                                       channels=description.get("channels", 1))
    try:
        model.assign(weights)
    except (KeyError, ValueError) as error:
        raise ModelError(f"{folder}: weights do not fit the architecture ({error})") from None
    return model, description


def is_number(value):
    """A finite int or float from JSON (not a bool: JSON's true would pass as 1)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def check_description(description, json_path, weights=None):
    """ModelError unless model.json agrees with itself and with its `weights` (where given): each field of
    the right type and range, a known architecture, known tasks, and for every head the class names its
    output count and age edges give (inference labels faces with these names), a temperature that is a
    finite number above 0 (a negative one inverts every answer, 0 divides by zero), and an input size the
    network was trained at. The age interval's temperature (AGE_INTERVAL) is held to the same rule. Every
    error names the file and the field."""
    def refuse(problem):
        raise ModelError(f"{json_path}: {problem}; copy model.json again from the run that trained it")

    if not isinstance(description, dict) or description.get("architecture") not in ARCHITECTURES:
        architecture = description.get("architecture") if isinstance(description, dict) else None
        raise ModelError(f"{json_path}: unknown architecture {architecture!r}; "
                         f"expected {' or '.join(ARCHITECTURES)}")
    channels = description.get("channels", 1)
    if isinstance(channels, bool) or channels not in COLOURS:
        refuse(f"faces of {channels!r} channels, not 1 (grayscale) or 3 (RGB)")
    zooms = description.get("zooms", [1.0])
    low, high = cli.ZOOMS
    if not isinstance(zooms, list) or not zooms or not all(is_number(zoom) and low <= zoom <= high for zoom in zooms):
        refuse(f"zooms {zooms!r}, not a list of numbers from {low} to {high}")
    if not isinstance(description.get("flip_average", False), bool):
        refuse(f"flip_average {description['flip_average']!r}, not true or false")
    input_size = description.get("input_size", FACE_SIZE)
    low, high = cli.INPUT_SIZES
    if isinstance(input_size, bool) or not isinstance(input_size, int) or not low <= input_size <= high:
        refuse(f"input_size {input_size!r}, not a whole number of pixels from {low} to {high}")
    train_config = description.get("train_config")
    trained_at = train_config.get("input_size", input_size) if isinstance(train_config, dict) else input_size
    if trained_at != input_size:  # a network sees other features at another size, and answers otherwise
        refuse(f"input_size {input_size}, but the network was trained at {trained_at} (its train_config)")
    for field in ("class_counts", "classes", "temperatures"):
        if not isinstance(description.get(field, {}), dict):
            refuse(f"{field} {description[field]!r}, not a mapping of task to values")
    try:
        counts, names, edges = description["class_counts"], description["classes"], description["age_edges"]
    except KeyError as error:
        raise ModelError(f"{json_path}: incomplete model description ({error}); "
                         "copy it again from the run that trained it") from None
    if not isinstance(edges, list) or not labels.are_age_edges(edges):
        refuse(f"age_edges {edges!r}, not whole years strictly ascending within 1..{labels.MAX_AGE}")
    unknown = [task for task in counts if task not in TASK_LABEL]
    if unknown:
        raise ModelError(f"{json_path}: unknown task {unknown[0]!r} (the tasks are {', '.join(TASK_LABEL)}); "
                         "a model saved by another version of agegender needs that version")
    for task, count in counts.items():
        expected = task_classes(task, tuple(edges))
        if names.get(task) != expected or count != len(expected):
            refuse(f"the {task} head has {count} outputs but its class names are {names.get(task)} "
                   f"(the age edges {edges} give {expected})")
    for task, temperature in description.get("temperatures", {}).items():
        if not is_number(temperature) or temperature <= 0:
            refuse(f"temperatures[{task!r}] {temperature!r}, not a finite number above 0")
    if weights is not None:
        check_weights(description, json_path, weights, refuse)


def check_weights(description, json_path, weights, refuse):
    """The parts of model.json its weights fix, checked against them: the channels of the first layer's
    kernel and, in the original network, the input size its FC layer's inputs imply (one value of
    ceil(input_size / 16) squared times 64). Any other mismatch is assign's to report."""
    first = weights.get("conv1/kernel", weights.get("stem/kernel"))
    channels = description.get("channels", 1)
    if first is not None and first.ndim == 4 and first.shape[2] != channels:
        refuse(f"channels {channels}, but the weights' first layer takes faces of {first.shape[2]}")
    fc = weights.get("fc/kernel")
    if description["architecture"] == OriginalCNN.architecture and fc is not None and fc.ndim == 2:
        input_size = description.get("input_size", FACE_SIZE)
        pooled_side = -(-input_size // 16)
        if fc.shape[0] != pooled_side ** 2 * 64:
            trained_side = round(np.sqrt(fc.shape[0] / 64))
            refuse(f"input_size {input_size}, but the weights' FC layer takes {trained_side}x{trained_side} "
                   f"feature maps (an input_size from {16 * trained_side - 15} to {16 * trained_side})")
    damaged = [name for name, values in weights.items() if not np.all(np.isfinite(values))]
    if damaged:
        raise ModelError(f"{os.path.join(os.path.dirname(json_path), WEIGHTS)}: {damaged[0]} holds values that "
                         "are not numbers (NaN or infinite): a run that diverged, or a damaged file; copy the model "
                         "again from the run that trained it")


def check_store_channels(model_channels, data, model_name):
    """ModelError unless the store `data` holds faces of the channels a model (from the folder
    `model_name`) takes: a gray model cannot read colour faces, nor a colour model gray ones."""
    channels = store.face_channels(store.read_manifest(data))
    if channels != model_channels:
        raise ModelError(f"{data}: the store holds {COLOURS[channels]} faces but the model {model_name} takes "
                         f"{COLOURS[model_channels]} ones; use a store washed "
                         f"{'with' if model_channels == 3 else 'without'} --color, or a model trained on this one")
