"""Print the README's results table from training runs' metrics.json (test split figures).

    python bench/results_table.py runs/joint runs/gender runs/age
"""
import json
import os
import sys


def main():
    print("| run | tasks | best epoch / epochs run | gender accuracy | age-group accuracy | age balanced accuracy | age one-off |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for run in sys.argv[1:]:
        with open(os.path.join(run, "metrics.json"), encoding="utf-8") as file:
            metrics = json.load(file)
        test = metrics["test"]
        cell = lambda task, key: f"{test[task][key]:.4f}" if task in test else "-"  # noqa: E731
        gender = cell("gender", "accuracy")
        if "gender" in test:
            gender += f" (balanced {test['gender']['balanced_accuracy']:.4f})"
        print(f"| `{run}` | {', '.join(metrics['tasks'])} | {metrics['best_epoch']} / {len(metrics['history'])} "
              f"| {gender} | {cell('age', 'accuracy')} | {cell('age', 'balanced_accuracy')} "
              f"| {cell('age', 'one_off_accuracy')} |")


if __name__ == "__main__":
    main()
