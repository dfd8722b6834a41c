"""Train variants of the joint model on one store and compare their best validation scores.

Each variant is a set of extra options for joint/jointly.py; the table shows the best epoch's
validation accuracies, so choices of defaults (optimizer, augmentation) rest on a measurement.

    python bench/train_variants.py --data data/utk --runs runs/variants --epochs 8 \
        "--optimizer sgd" "--optimizer adam --learning-rate 0.001" "--optimizer sgd --no-augment"
"""
import argparse
import json
import os
import platform
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def finished(metrics_path):
    if not os.path.isfile(metrics_path):
        return False
    with open(metrics_path, encoding="utf-8") as file:
        return json.load(file)["test"] is not None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--runs", required=True, help="folder for one run folder per variant")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--script", default="joint/jointly.py")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse variants whose run already finished (prints the table again)")
    parser.add_argument("variants", nargs="+", help="extra options of each variant, quoted")
    arguments = parser.parse_args()
    rows = []
    for number, variant in enumerate(arguments.variants):
        run = os.path.join(arguments.runs, f"variant-{number}")
        command = [sys.executable, os.path.join(ROOT, arguments.script), "--data", arguments.data,
                   "--run", run, "--force", "--quiet", "--epochs", str(arguments.epochs), *shlex.split(variant)]
        metrics_path = os.path.join(run, "metrics.json")
        if not (arguments.reuse and finished(metrics_path)):
            print("$", " ".join(command), flush=True)
            subprocess.run(command, check=True)
        with open(metrics_path, encoding="utf-8") as file:
            metrics = json.load(file)
        best = next(entry for entry in metrics["history"] if entry["epoch"] == metrics["best_epoch"])
        speed = sorted(entry["images_per_second"] for entry in metrics["history"])[len(metrics["history"]) // 2]
        rows.append((variant, metrics["best_epoch"], len(metrics["history"]),
                     {task: best["valid"][task]["accuracy"] for task in metrics["tasks"]},
                     speed, sum(entry["seconds"] for entry in metrics["history"])))
    print(f"\n{arguments.script} on {arguments.data}, at most {arguments.epochs} epochs; "
          f"{platform.node()}, {os.cpu_count()} cores")
    print("| variant | best epoch / run | valid accuracy at best epoch | median images/s | training minutes |")
    print("| --- | --- | --- | --- | --- |")
    for variant, best_epoch, epochs, accuracies, speed, seconds in rows:
        accuracy = ", ".join(f"{task} {value:.4f}" for task, value in accuracies.items())
        print(f"| `{variant}` | {best_epoch} / {epochs} | {accuracy} | {speed:.0f} | {seconds / 60:.1f} |")


if __name__ == "__main__":
    main()
