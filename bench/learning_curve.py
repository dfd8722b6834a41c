"""How the bundled recipe's figures grow with the number of training faces, and what that says more
faces of the same kind would buy: whether issue 13's goals are within reach of this data.

    python bench/learning_curve.py stores 0.25 0.5     # data/utk-train25, data/utk-train50: part of data/utk's train split
    RUN=runs/train50 bash bench/train_bundled.sh improved --seed 1 --data data/utk-train50
    python bench/learning_curve.py fit agegender/models/improved runs/train50 runs/train25 --split both

A smaller store keeps data/utk's valid and test splits (linked, not copied) and the first part of one
fixed random order of its train faces, so each smaller train split lies inside every larger one.

`fit` reads each run's train faces (its config.json's store; for a bundled model, trained on data/utk,
17,071) and its valid figures at its best epoch; with --split test, the test figures the run printed
as it ended; with --split both, the two together (nothing is chosen here, so every held-out face may
count). For each error (1 - accuracy, MAE, 1 - CS(5)) it averages the runs of a size and gives the
exponent b of a power law, error = a * faces^-b (Hestness et al. 2017), from each size to the next.
A learning curve flattens as it grows, so the last b carried on is the most hopeful extrapolation: it
prints what that gives at twice and four times the faces, and the faces at which it would reach issue
13's goal.
"""
import argparse
import csv
import json
import os

import numpy as np

from agegender import atomic, cli, store
from agegender.errors import AgeGenderError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_STORE = os.path.join(ROOT, "data", "utk")  # the README's wash command's, which the bundled models learned from
INDEX = "index.csv"  # a split's faces: shard, row, the image they came from, labels
ORDER_SEED = 0  # one order of the train faces for every fraction: smaller subsets nest in larger ones
# Issue 13's goals for the best bundled model, as errors: 1 - gender, 1 - age groups, MAE, 1 - CS(5).
GOALS = {"gender": 1 - 0.94, "age groups": 1 - 0.76, "MAE": 4.7, "CS(5)": 1 - 0.66}


def write_subset_store(source, target, fraction):
    """A store at `target` with `source`'s valid and test splits (symbolic links) and the first
    `fraction` of its train faces in the fixed random order, as one shard, with its index.csv."""
    manifest = store.read_manifest(source)
    images, labels = (np.concatenate([np.load(path, allow_pickle=False) for path in paths])
                      for paths in zip(*store.shard_paths(source, manifest, "train")))
    with open(os.path.join(source, "train", INDEX), encoding="utf-8", newline="") as file:
        header, *index = list(csv.reader(file))  # one row a face, in the shards' order
    order = np.random.default_rng(ORDER_SEED).permutation(len(images))
    kept = np.sort(order[:round(fraction * len(images))])  # in the store's own order
    columns = {name: labels[kept, i] for i, name in enumerate(store.LABEL_COLUMNS)}
    train = {"faces": int(len(kept)), "shards": [{"images": "images-00000.npy", "labels": "labels-00000.npy",
                                                  "faces": int(len(kept))}],
             "gender": np.bincount(columns["gender"], minlength=2).tolist(),
             "age_group": np.bincount(columns["age_group"], minlength=len(manifest["age_group_names"])).tolist()}
    with atomic.replacing_folder(target, store.store_problem) as folder:
        for split in store.SPLITS:
            os.makedirs(os.path.join(folder, split))
        store.link_held_out_splits(source, folder)
        atomic.save_npy(os.path.join(folder, "train", "images-00000.npy"), images[kept])
        atomic.save_npy(os.path.join(folder, "train", "labels-00000.npy"), labels[kept])
        atomic.write_csv(os.path.join(folder, "train", INDEX), header,
                         [["0", str(row), *index[face][2:]] for row, face in enumerate(kept)])
        subset = {**manifest, "format": store.FORMAT, "splits": {**manifest["splits"], "train": train},
                  "options": {**manifest["options"], "train_subset": {"of": os.path.abspath(source),
                                                                      "fraction": fraction,
                                                                      "order_seed": ORDER_SEED}}}
        subset["identity"] = store.content_identity(folder, subset)
        atomic.write_json(os.path.join(folder, store.MANIFEST), subset)
    return len(kept)


def stores(arguments):
    for fraction in arguments.fractions:
        target = f"{arguments.data.rstrip('/')}-train{round(100 * fraction)}"
        print(f"{target}: {write_subset_store(arguments.data, target, fraction)} train faces")


def run_manifest(source, bundled_store):
    """The manifest of the store a run learned from: its config.json's, or bundled_store's for a bundled model."""
    config = os.path.join(source, "config.json")
    data = bundled_store
    if os.path.isfile(config):
        with open(config, encoding="utf-8") as file:
            data = json.load(file)["data"]
    return store.read_manifest(data)


def held_out_errors(source, manifest, split):
    """{goal name: error at the run's best epoch} on the valid split (its history), the test split (the
    figures the run printed once, as it ended) or both (their errors weighted by their faces)."""
    path = os.path.join(source, "metrics.json")
    splits = ("valid", "test") if split == "both" else (split,)
    try:
        with open(path, encoding="utf-8") as file:
            metrics = json.load(file)
        best = next(epoch for epoch in metrics["history"] if epoch["epoch"] == metrics["best_epoch"])
        figures = [best["valid"] if one == "valid" else metrics["test"] for one in splits]  # test: once it ended
        errors = [{"gender": 1 - one["gender"]["accuracy"], "age groups": 1 - one["age_group"]["accuracy"],
                   "MAE": one["exact_age"]["mae"], "CS(5)": 1 - one["exact_age"]["cs5"]} for one in figures]
    except (ValueError, KeyError, TypeError, StopIteration):  # a missing file: cli.run's one line
        raise AgeGenderError(f"{path}: no {' and '.join(splits)} figures of a finished training run of the "
                             "improved network with the exact age") from None
    faces = [manifest["splits"][one]["faces"] for one in splits]
    return {name: float(np.average([error[name] for error in errors], weights=faces)) for name in GOALS}


def exponent(errors_before, errors_after, faces_before, faces_after):
    """b of error = a * faces^-b through two points: how fast the error falls as the faces grow."""
    slope = np.log(errors_after / errors_before) / np.log(faces_after / faces_before)
    return round(-slope, 6) + 0.0  # a flat error's slope is 1e-17 either side of 0: shown as 0.000


def fit(arguments):
    manifests = [run_manifest(source, arguments.data) for source in arguments.runs]
    faces = [manifest["splits"]["train"]["faces"] for manifest in manifests]
    errors = [held_out_errors(source, manifest, arguments.split) for source, manifest in zip(arguments.runs, manifests)]
    sizes = sorted(set(faces))
    if len(sizes) < 2:
        raise AgeGenderError("fit needs runs on at least two sizes of train split")
    held_out = {"valid": "valid", "test": "test", "both": "valid and test"}[arguments.split]
    print(f"| train faces | run | {held_out} error: gender, age groups, MAE, CS(5) |\n| --- | --- | --- |")
    for count, source, error in sorted(zip(faces, arguments.runs, errors)):
        print(f"| {count:,} | `{source}` | " + ", ".join(f"{value:.4f}" for value in error.values()) + " |")
    # Each size's runs (seeds) averaged, then the exponent b from each size to the next.
    mean = {size: {name: np.mean([error[name] for count, error in zip(faces, errors) if count == size])
                   for name in GOALS} for size in sizes}
    print(f"\nmean error at each size (runs), and in brackets b of error = a * faces^-b from the size before:")
    for before, size in zip([None, *sizes], sizes):
        print(f"  {size:,} faces ({faces.count(size)}): " + ", ".join(
            f"{name} {mean[size][name]:.4f}" + (f" (b {exponent(mean[before][name], mean[size][name], before, size):.3f})"
                                                if before else "") for name in GOALS))
    # A learning curve flattens as it grows (b falls from one size to the next): the last b, carried on,
    # is the most that more faces of the same kind would give.
    before, largest = sizes[-2:]
    print(f"\nmore faces, at the b from {before:,} to {largest:,} faces:")
    for name, goal in GOALS.items():
        last = exponent(mean[before][name], mean[largest][name], before, largest)
        at = {times: mean[largest][name] * times ** -last for times in (2, 4)}
        needed = largest * (mean[largest][name] / goal) ** (1 / last) if last > 0 else float("inf")
        print(f"  {name}: b {last:.3f}; at {largest * 2:,} faces {at[2]:.4f}, at {largest * 4:,} {at[4]:.4f}; "
              f"goal {goal:.4f} at {needed:,.0f} faces ({needed / largest:.1f}x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("stores", help="write DATA-trainNN stores with part of DATA's train split")
    make.add_argument("fractions", nargs="+", type=cli.decay_factor,  # above 0 and at most 1, as a share is
                      help="shares of the train faces (0.5: half)")
    make.set_defaults(command=stores)
    curve = commands.add_parser("fit", help="how the runs' errors fall with their train faces, and where that leads")
    curve.add_argument("runs", nargs="+", help="training run folders or bundled model folders")
    curve.add_argument("--split", choices=("valid", "test", "both"), default="valid",
                       help="whose errors: the valid split's at each run's best epoch (default), the test "
                            "split's its run printed as it ended (nothing is chosen on them here), or both "
                            "splits' together, weighted by their faces (the least noisy reading)")
    curve.set_defaults(command=fit)
    for command in (make, curve):
        command.add_argument("--data", default=DEFAULT_STORE, help="the whole store (default: data/utk); for "
                             "fit, the one a bundled model (no config.json) learned from")
    arguments = parser.parse_args()
    arguments.command(arguments)


if __name__ == "__main__":
    cli.run(main)  # a store or run that is missing or not readable: one line, no traceback
