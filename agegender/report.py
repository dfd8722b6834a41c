"""What a training run reports, rewritten after every epoch: metrics.json (the history, the best epoch
and, once the run ends, the test split's figures), curves.png, TensorBoard logs in logs/, and the line
printed for each epoch (the test split's confusion matrices are scoring.evaluate_model's). train.py
decides what happened; this module only writes it down."""
import json
import os

from agegender import atomic, plots
from agegender.quiet_tensorflow import tf


def score_name(task):
    """The figure a task is scored by in training: accuracy, or for exact age the MAE in years."""
    return "mae" if task == "exact_age" else "accuracy"


def read_history(folder, last_epoch):
    """The epochs up to `last_epoch` of the history a run folder's metrics.json holds."""
    with open(os.path.join(folder, "metrics.json"), encoding="utf-8") as file:
        return [entry for entry in json.load(file)["history"] if entry["epoch"] <= last_epoch]


class RunReport:
    """The reports of one run folder on `tasks`, trained for at most `max_epochs`."""

    def __init__(self, folder, tasks, max_epochs):
        self.folder, self.tasks, self.max_epochs = folder, tuple(tasks), max_epochs
        self.writer = None  # TensorBoard's, opened with the first epoch: nothing is written before

    def write_epoch(self, history):
        """TensorBoard's scalars of the last epoch of `history`, metrics.json and curves.png."""
        entry = history[-1]
        if self.writer is None:
            self.writer = tf.summary.create_file_writer(os.path.join(self.folder, "logs"))
        with self.writer.as_default(step=entry["epoch"]):
            for split in ("train", "valid"):
                for task, values in entry[split].items():
                    for metric, value in values.items():
                        tf.summary.scalar(f"{task}/{metric}/{split}", value)
            for task, value in entry["balance_log_variances"].items():
                tf.summary.scalar(f"balance/log_variance_{task}", value)
            tf.summary.scalar("learning_rate", entry["learning_rate"])
            tf.summary.scalar("images_per_second", entry["images_per_second"])
        self.writer.flush()
        self.write_metrics(history)
        plots.plot_curves(history, self.tasks, os.path.join(self.folder, "curves.png"))

    def epoch_line(self, entry, improved):
        """One line for the console: each task's loss and score, train/valid, the balance, the speed."""
        parts = [f"epoch {entry['epoch']:2d}/{self.max_epochs}"]
        for task in self.tasks:
            train, valid = entry["train"][task], entry["valid"][task]
            metric = score_name(task)
            parts.append(f"{task} loss {train['loss']:.3f}/{valid['loss']:.3f} "
                         f"{metric[:3]} {train[metric]:.3f}/{valid[metric]:.3f}")
        if entry["balance_log_variances"]:
            parts.append("balance " + " ".join(f"s_{task}={value:+.3f}"
                                               for task, value in entry["balance_log_variances"].items()))
        parts.append(f"{entry['images_per_second']:.0f} images/s, {entry['seconds']:.0f} s")
        return " | ".join(parts) + (" *best*" if improved else "")

    def write_metrics(self, history, test=None):
        """metrics.json: the history, its best epoch (by valid score) and the test figures; returned too."""
        best = max(history, key=lambda entry: entry["valid_score"]) if history else None
        metrics = {"tasks": list(self.tasks), "history": history,
                   "best_epoch": best["epoch"] if best else None, "test": test}
        atomic.write_json(os.path.join(self.folder, "metrics.json"), metrics)
        return metrics
