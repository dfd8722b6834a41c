"""The original project's CNN, its heads, and saving / loading it without the training code.

Trunk: conv 7x7/32 stride 2 -> ReLU -> LRN -> max-pool 3x3/2; conv 5x5/64 -> ReLU -> LRN -> max-pool;
conv 3x3/64 -> ReLU -> max-pool; flatten (8x8x64) -> FC 512 ReLU (dropout). Each task then has its own
FC 100 ReLU (dropout) -> logits. Written with tf.nn ops on plain variables, as the original was.
"""
import json
import os
import shutil

import numpy as np
import tensorflow as tf

from agegender import labels
from agegender.faces import FACE_SIZE

ARCHITECTURE = "original"
MODEL_JSON = "model.json"
WEIGHTS = "weights.npz"


def task_classes(task, age_edges):
    """Class names of a task's output, in output order."""
    if task == "gender":
        return list(labels.GENDER_NAMES)
    if task == "age":
        return list(labels.age_group_names(age_edges))
    raise ValueError(f"unknown task {task!r}")


def local_response_normalization(x, depth_radius=2, bias=1.0, alpha=1e-4, beta=0.75):
    """tf.nn.local_response_normalization (AlexNet's LRN, as the original used), computed faster.

    The sum of squares over the 2 * depth_radius + 1 neighbouring channels is a product with a band
    matrix, and d ** -0.75 is rsqrt(d) * rsqrt(sqrt(d)). Same values (to 1e-6), but TensorFlow's own
    LRN gradient is a slow loop on the CPU: this made a whole training step 2x faster (bench/README.md).
    """
    channels = x.shape[-1]
    offsets = np.subtract.outer(np.arange(channels), np.arange(channels))
    band = tf.constant(np.abs(offsets) <= depth_radius, tf.float32)
    squares = tf.tensordot(tf.square(x), band, axes=1)
    scale = bias + alpha * squares
    if beta == 0.75:
        return x * tf.math.rsqrt(scale) * tf.math.rsqrt(tf.sqrt(scale))
    return x * tf.pow(scale, -beta)


class FaceNet(tf.Module):
    """The three-conv CNN with one softmax head per task ({"gender": 2, "age": 4}, or one of them)."""

    def __init__(self, class_counts, dropout=0.5, seed=0):
        super().__init__(name="facenet")
        self.class_counts = dict(class_counts)
        self.dropout = dropout
        generator = tf.random.Generator.from_seed(seed)

        def layer(name, shape, gain=2.0):
            """He-initialised kernel and zero bias: ReLU layers then start with a stable signal."""
            fan_in = int(np.prod(shape[:-1]))
            kernel = tf.Variable(generator.truncated_normal(shape) * np.sqrt(gain / fan_in) / 0.88,
                                 name=f"{name}/kernel")
            return kernel, tf.Variable(tf.zeros(shape[-1:]), name=f"{name}/bias")

        self.conv1 = layer("conv1", [7, 7, 1, 32])
        self.conv2 = layer("conv2", [5, 5, 32, 64])
        self.conv3 = layer("conv3", [3, 3, 64, 64])
        self.fc = layer("fc", [8 * 8 * 64, 512])
        # Small output weights: every class starts near equally likely, so the first steps are not
        # spent undoing confident random guesses.
        self.heads = {task: (layer(f"{task}/fc", [512, 100]), layer(f"{task}/logits", [100, count], gain=0.1))
                      for task, count in self.class_counts.items()}

    @property
    def kernels(self):
        """The weights L2 regularisation applies to (not the biases)."""
        return [v for v in self.trainable_variables if v.name.split(":")[0].endswith("kernel")]

    @staticmethod
    def preprocess(images):
        """uint8 faces [b,128,128] or [b,128,128,1] -> zero-mean, unit-variance floats, per image.

        Standardising each face removes the brightness and contrast of its photo, which differ far
        more between a webcam and the training set than faces do.
        """
        images = tf.cast(tf.reshape(images, [-1, FACE_SIZE, FACE_SIZE, 1]), tf.float32)
        return tf.image.per_image_standardization(images)

    def __call__(self, images, training=False):
        """Logits per task for a batch of uint8 faces."""
        x = self.preprocess(images)
        for (kernel, bias), stride, normalise in ((self.conv1, 2, True), (self.conv2, 1, True),
                                                  (self.conv3, 1, False)):
            x = tf.nn.relu(tf.nn.conv2d(x, kernel, stride, "SAME") + bias)
            if normalise:
                x = local_response_normalization(x)
            x = tf.nn.max_pool2d(x, 3, 2, "SAME")
        x = self._dense(tf.reshape(x, [-1, 8 * 8 * 64]), self.fc, training)
        logits = {}
        for task, (hidden, output) in self.heads.items():
            h = self._dense(x, hidden, training)
            logits[task] = tf.matmul(h, output[0]) + output[1]
        return logits

    def _dense(self, x, layer, training):
        x = tf.nn.relu(tf.matmul(x, layer[0]) + layer[1])
        return tf.nn.dropout(x, rate=self.dropout) if training and self.dropout else x

    @tf.function(input_signature=[tf.TensorSpec([None, FACE_SIZE, FACE_SIZE], tf.uint8)], reduce_retracing=True)
    def probabilities(self, faces):
        """Softmax probabilities per task for uint8 faces [b,128,128]: what inference uses."""
        return {task: tf.nn.softmax(logits) for task, logits in self(faces).items()}

    def weights(self):
        return {v.name.split(":")[0]: v.numpy() for v in self.trainable_variables}

    def assign(self, weights):
        for v in self.trainable_variables:
            v.assign(weights[v.name.split(":")[0]])


def save_model(model, folder, metadata):
    """Write model.json (architecture, tasks, label names, age edges, ...) and weights.npz.

    Written to a temporary folder that replaces `folder` in one rename: a reader never sees half.
    """
    temporary = folder.rstrip("/") + ".partial"
    shutil.rmtree(temporary, ignore_errors=True)
    os.makedirs(temporary)
    description = {"architecture": ARCHITECTURE, "face_size": FACE_SIZE, "dropout": model.dropout,
                   "class_counts": model.class_counts, **metadata}
    with open(os.path.join(temporary, MODEL_JSON), "w", encoding="utf-8") as file:
        json.dump(description, file, indent=2)
        file.write("\n")
    np.savez_compressed(os.path.join(temporary, WEIGHTS), **model.weights())
    old = folder.rstrip("/") + ".old"
    if os.path.exists(folder):
        os.replace(folder, old)
    os.replace(temporary, folder)
    shutil.rmtree(old, ignore_errors=True)


class ModelError(Exception):
    """A model folder that is missing or unreadable."""


def load_model(folder):
    """(FaceNet with the saved weights, its model.json as a dict) from a folder save_model wrote."""
    json_path = os.path.join(folder, MODEL_JSON)
    try:
        with open(json_path, encoding="utf-8") as file:
            description = json.load(file)
        with np.load(os.path.join(folder, WEIGHTS), allow_pickle=False) as archive:
            weights = dict(archive)
    except FileNotFoundError as error:
        raise ModelError(f"{folder}: not a saved model ({os.path.basename(error.filename)} missing)") from None
    except (OSError, ValueError) as error:
        raise ModelError(f"{folder}: unreadable model ({error})") from None
    if description.get("architecture") != ARCHITECTURE:
        raise ModelError(f"{json_path}: unknown architecture {description.get('architecture')!r}")
    model = FaceNet(description["class_counts"], dropout=description.get("dropout", 0.0))
    try:
        model.assign(weights)
    except (KeyError, ValueError) as error:
        raise ModelError(f"{folder}: weights do not fit the architecture ({error})") from None
    return model, description
