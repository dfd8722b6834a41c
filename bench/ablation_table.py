"""Print bench/RESULTS.md's ablation table for training runs from their metrics.json: the valid figures
at the best epoch (what early stopping chose and what bundling is decided on), their mean over the last
five epochs (what one lucky epoch cannot move), the minutes of training and the median images/s.

    python bench/ablation_table.py agegender/models/improved runs/long48

Valid figures only: a variant is chosen on them, and the test split is looked at once, for the model
that is bundled (bench/results_table.py).
"""
import argparse
import json
import os
import statistics

from agegender import cli
from agegender.errors import AgeGenderError

LAST_EPOCHS = 5
FORMATS = ("{:.4f}", "{:.4f}", "{:.2f}", "{:.4f}")  # gender, age groups, MAE in years, CS(5)


def valid_figures(epoch):
    """(gender, age groups, MAE, CS(5)) of one epoch's valid split; None for a task the run did not learn."""
    valid = epoch["valid"]
    return (valid.get("gender", {}).get("accuracy"), valid.get("age_group", {}).get("accuracy"),
            valid.get("exact_age", {}).get("mae"), valid.get("exact_age", {}).get("cs5"))


def cells(figures, score):
    """The two cells of a set of figures: 'gender, age groups, MAE, CS(5)' and the valid score."""
    text = ", ".join("-" if value is None else form.format(value) for form, value in zip(FORMATS, figures))
    return text, f"{score:.4f}"


def row_of(source):
    path = os.path.join(source, "metrics.json")
    with open(path, encoding="utf-8") as file:
        try:
            metrics = json.load(file)
            history = metrics["history"]
            best = next(epoch for epoch in history if epoch["epoch"] == metrics["best_epoch"])  # report.py's choice
        except (ValueError, KeyError, TypeError, StopIteration):
            raise AgeGenderError(f"{path}: not the metrics.json of a training run (no epochs in it)") from None
    last = history[-LAST_EPOCHS:]
    last_figures = [statistics.mean(values) if None not in values else None
                    for values in zip(*(valid_figures(epoch) for epoch in last))]
    best_cells = cells(valid_figures(best), best["valid_score"])
    last_cells = cells(last_figures, statistics.mean(epoch["valid_score"] for epoch in last))
    minutes = sum(epoch["seconds"] for epoch in history) / 60
    speed = statistics.median(epoch["images_per_second"] for epoch in history)
    return (f"| `{source}` | {best['epoch']} / {len(history)} | {best_cells[0]} | {best_cells[1]} "
            f"| {last_cells[0]}; {last_cells[1]} | {minutes:.1f} | {speed:.0f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="training run folders or bundled model folders (their "
                        "metrics.json); a row each")
    rows = [row_of(source) for source in parser.parse_args().runs]  # all read before the table starts
    print("| variant | best epoch / run | valid at best epoch: gender, age groups, MAE, CS(5) | valid score "
          f"| mean of the last {LAST_EPOCHS} epochs: gender, age groups, MAE, CS(5); valid score "
          "| training minutes | median images/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    cli.run(main)  # a run that is missing or not readable: one line, no traceback
