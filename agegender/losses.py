"""The loss arithmetic of training: each face's loss per task, the learned task balance that weighs them,
and what a step counts (faces right, years off). train.py's step puts them together."""
from agegender.model import EXACT_AGES, TASK_LABEL
from agegender.quiet_tensorflow import tf

EXACT_AGE_SIGMA = 2.0  # years: exact ages are learned as a narrow Gaussian around the labelled age


def soft_age_labels(years):
    """Target distributions over 0..100 years: a Gaussian of EXACT_AGE_SIGMA around each true age."""
    ages = tf.range(EXACT_AGES, dtype=tf.float32)
    weights = tf.exp(-0.5 * tf.square((ages[None, :] - tf.cast(years, tf.float32)[:, None]) / EXACT_AGE_SIGMA))
    return weights / tf.reduce_sum(weights, axis=1, keepdims=True)


def predicted_values(task, logits):
    """Class indices, or for exact age the expected years of the softmax (DEX)."""
    if task == "exact_age":
        return tf.linalg.matvec(tf.nn.softmax(logits), tf.range(EXACT_AGES, dtype=tf.float32))
    return tf.argmax(logits, axis=1, output_type=tf.int32)


def face_losses(logits, labels, label_smoothing=0.0, expected_age_loss=0.0, teacher=None, teacher_share=0.0):
    """Per task, each face's loss: cross-entropy against the label, smoothed by label_smoothing (exact age:
    against a Gaussian around the true age, plus expected_age_loss times the expected age's error in
    years). teacher: per task, a trained model's probabilities for the same faces, teacher_share of the
    targets of the tasks it answers (knowledge distillation)."""
    losses = {}
    for task, task_logits in logits.items():
        truth = labels[TASK_LABEL[task]]
        if task == "exact_age":
            targets = soft_age_labels(truth)
        else:
            classes = task_logits.shape[-1]
            targets = tf.one_hot(truth, classes) * (1 - label_smoothing) + label_smoothing / classes
        if teacher and task in teacher:
            targets = (1 - teacher_share) * targets + teacher_share * teacher[task]
        per_face = tf.nn.softmax_cross_entropy_with_logits(targets, task_logits)
        if task == "exact_age" and expected_age_loss:
            per_face += expected_age_loss * tf.abs(predicted_values(task, task_logits) - tf.cast(truth, tf.float32))
        if task == "race":  # -1: the source does not say (IMDB-WIKI)
            per_face *= tf.cast(truth >= 0, tf.float32)
        losses[task] = per_face
    return losses


def score_sums(logits, labels):
    """Per task, the faces classified right, or for exact age the sum of absolute errors in years."""
    sums = {}
    for task, task_logits in logits.items():
        predicted, truth = predicted_values(task, task_logits), labels[TASK_LABEL[task]]
        if task == "exact_age":
            sums[task] = tf.reduce_sum(tf.abs(predicted - tf.cast(truth, tf.float32)))
        else:
            sums[task] = tf.reduce_sum(tf.cast(tf.equal(predicted, truth), tf.float32))
    return sums


class TaskBalance(tf.Module):
    """Learned task weighting by homoscedastic uncertainty (Kendall, Gal & Cipolla, CVPR 2018).

    total = sum over tasks of exp(-s_t) * L_t + s_t, with one trainable s_t (a log-variance) per task.
    The original multiplied softmax outputs by two free scalars, which can grow without bound and has no
    meaning. Here each weight exp(-s_t) is positive by construction, and the + s_t term makes ignoring a
    task (s_t -> inf) cost as much as it saves: for a fixed loss the optimum is s_t = log L_t, so each
    task is weighted by the inverse of its own current loss, a bounded, interpretable balance.
    A single task needs no balance: its weight stays 1 (no variables).
    """

    def __init__(self, tasks):
        super().__init__(name="task_balance")
        self.log_variances = ({task: tf.Variable(0.0, name=f"log_variance_{task}") for task in tasks}
                              if len(tasks) > 1 else {})

    def __call__(self, task_losses):
        """The total for each face (or batch) from its loss per task."""
        if not self.log_variances:
            return tf.add_n(list(task_losses.values()))
        return tf.add_n([tf.exp(-self.log_variances[task]) * loss + self.log_variances[task]
                         for task, loss in task_losses.items()])

    def values(self):
        return {task: float(variable.numpy()) for task, variable in self.log_variances.items()}
