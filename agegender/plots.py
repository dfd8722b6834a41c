"""PNG pictures a person can look at: training curves and confusion matrices."""
import matplotlib

matplotlib.use("Agg")  # files only: no display is needed, and none may exist
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from agegender import atomic  # noqa: E402


def _save(figure, path):
    try:
        with atomic.AtomicFile(path) as temporary:
            figure.savefig(temporary, dpi=100, bbox_inches="tight")
    finally:
        plt.close(figure)


def plot_curves(history, tasks, path):
    """Loss and accuracy (MAE for exact age) per epoch, train against valid, one column per task."""
    epochs = [entry["epoch"] for entry in history]
    figure, axes = plt.subplots(2, len(tasks), figsize=(5 * len(tasks), 7), squeeze=False, constrained_layout=True)
    for column, task in enumerate(tasks):
        for row, metric in enumerate(("loss", "mae" if task == "exact_age" else "accuracy")):
            axis = axes[row, column]
            for split, style in (("train", "-o"), ("valid", "-s")):
                axis.plot(epochs, [entry[split][task][metric] for entry in history], style, label=split)
            axis.set_title(f"{task} {metric}")
            axis.set_xlabel("epoch")
            axis.grid(alpha=0.3)
            axis.legend()
    _save(figure, path)


def plot_confusion(matrix, class_names, title, path):
    """A confusion matrix with counts, rows normalised to colour: true class down, predicted across."""
    matrix = np.asarray(matrix)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = 1.2 + 0.9 * len(class_names)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        axis.text(j, i, f"{count}\n{shares[i, j]:.0%}", ha="center", va="center",
                  color="white" if shares[i, j] > 0.6 else "black", fontsize=9)
    axis.set_xticks(range(len(class_names)), class_names, rotation=30)
    axis.set_yticks(range(len(class_names)), class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    figure.colorbar(image, ax=axis, fraction=0.046)
    _save(figure, path)
