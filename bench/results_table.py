"""Print the README's results table from training runs' metrics.json (test split figures).

    python bench/results_table.py runs/jointly runs/gender runs/age runs/improved
    python bench/results_table.py models/joint models/improved
"""
import json
import os
import sys


def main():
    print("| run | architecture, tasks | best epoch / epochs run | gender accuracy | age-group accuracy | "
          "age balanced accuracy | age one-off | exact age: MAE, CS(5), groups from it |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for run in sys.argv[1:]:
        with open(os.path.join(run, "metrics.json"), encoding="utf-8") as file:
            metrics = json.load(file)
        # A run folder has config.json; a bundled model (models/...) its model.json.
        described = [os.path.join(run, name) for name in ("config.json", "model.json")]
        with open(next(path for path in described if os.path.isfile(path)), encoding="utf-8") as file:
            architecture = json.load(file).get("architecture", "original")
        test = metrics["test"]
        cell = lambda task, key: f"{test[task][key]:.4f}" if task in test else "-"  # noqa: E731
        gender = cell("gender", "accuracy")
        if "gender" in test:
            gender += f" (balanced {test['gender']['balanced_accuracy']:.4f})"
        exact = test.get("exact_age")
        years = (f"{exact['mae']:.2f} years, {exact['cs5']:.4f}, {exact['age_groups']['accuracy']:.4f}"
                 if exact else "-")
        print(f"| `{run}` | {architecture}: {', '.join(metrics['tasks'])} | {metrics['best_epoch']} / "
              f"{len(metrics['history'])} | {gender} | {cell('age', 'accuracy')} | {cell('age', 'balanced_accuracy')} "
              f"| {cell('age', 'one_off_accuracy')} | {years} |")


if __name__ == "__main__":
    main()
