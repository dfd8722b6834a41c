"""Print the README's results table from test-split figures: training runs' metrics.json, or the JSON
that joint/test_model.py --json writes for a model as it is bundled (calibration, flip averaging).

    python bench/results_table.py runs/jointly runs/gender runs/age runs/improved
    python joint/test_model.py --data data/utk --model agegender/models/joint --json out/joint.json
    python bench/results_table.py out/joint.json out/improved.json
"""
import argparse
import json
import os

from agegender import cli


def figures_of(source):
    """(test figures per task, architecture, 'best epoch / epochs run') of a run folder or a JSON file."""
    if source.endswith(".json"):
        with open(source, encoding="utf-8") as file:
            figures = json.load(file)
        model_json, epochs = os.path.join(figures["model"], "model.json"), "-"
    else:
        with open(os.path.join(source, "metrics.json"), encoding="utf-8") as file:
            metrics = json.load(file)
        figures, epochs = metrics["test"], f"{metrics['best_epoch']} / {len(metrics['history'])}"
        # A run folder has config.json; a bundled model (agegender/models/...) its model.json.
        model_json = next((path for path in (os.path.join(source, name) for name in ("config.json", "model.json"))
                           if os.path.isfile(path)), os.path.join(source, "config.json"))  # neither: refused
    with open(model_json, encoding="utf-8") as file:
        architecture = json.load(file).get("architecture", "original")
    return figures, architecture, epochs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="+", help="training run folders or bundled model folders (their "
                        "metrics.json), or JSON files of joint/test_model.py --json; a row each")
    sources = parser.parse_args().sources
    rows = [(source, *figures_of(source)) for source in sources]  # all read before the table starts
    print("| model | architecture, tasks | best epoch / epochs run | gender accuracy (worst race group) | "
          "age-group accuracy (balanced) | age one-off | exact age: MAE, CS(5), groups from it | ECE gender / age |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for source, test, architecture, epochs in rows:
        tasks = [task for task in ("gender", "age_group", "exact_age") if task in test]
        cell = lambda task, key: f"{test[task][key]:.4f}" if task in test and key in test[task] else "-"  # noqa: E731
        gender = cell("gender", "accuracy")
        if "gender" in test:
            races = test["gender"]["by"]["race"]
            worst = min(races, key=lambda race: races[race]["accuracy"])
            gender += f" ({worst} {races[worst]['accuracy']:.3f})"
        age = f"{cell('age_group', 'accuracy')} ({cell('age_group', 'balanced_accuracy')})" if "age_group" in test else "-"
        exact = test.get("exact_age")
        years = (f"{exact['mae']:.2f} years, {exact['cs5']:.4f}, {exact['age_groups']['accuracy']:.4f}"
                 if exact else "-")
        ece = " / ".join(f"{test[task]['expected_calibration_error']:.3f}" if "expected_calibration_error" in
                         test.get(task, {}) else "-" for task in ("gender", "age_group"))
        print(f"| `{source}` | {architecture}: {', '.join(tasks)} | {epochs} | {gender} | {age} "
              f"| {cell('age_group', 'one_off_accuracy')} | {years} | {ece} |")


if __name__ == "__main__":
    cli.run(main)  # a source that is missing or not readable: one line, no traceback
