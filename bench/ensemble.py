"""What averaging several models would give: each model's figures on a split, and those of the mean of
their calibrated probabilities, head by head (the expected age from the mean exact-age distribution).
Whether an ensemble, or one network distilled from it, is worth training.

    python bench/ensemble.py agegender/models/improved runs/seed2/model runs/seed3/model    # valid split of data/utk
"""
import argparse

import numpy as np

from agegender import cli, evaluate
from agegender.scoring import answer_figures, labelled_batches, model_answers
from agegender.predict import Predictor
from stores import default_store


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model folders of the same heads, age edges and channels")
    parser.add_argument("--data", help="store (default: as bench/scene_benchmark.py, by the first model's channels)")
    parser.add_argument("--split", choices=("valid", "test"), default="valid")
    arguments = parser.parse_args()
    data = arguments.data or default_store(arguments.models[0])
    answers = []
    for folder in arguments.models:
        predictor = Predictor(folder)
        if answers and set(predictor.description["classes"]) != set(answers[0]):  # before scoring it
            raise SystemExit(f"error: {folder}: its heads differ from those of {arguments.models[0]}")
        probabilities, face_labels = model_answers(predictor, labelled_batches(data, arguments.split, predictor))
        answers.append(probabilities)
        print_row(folder, answer_figures(predictor.description, probabilities, face_labels))
    mean = {task: np.mean([probabilities[task] for probabilities in answers], axis=0) for task in answers[0]}
    print_row(f"mean of the {len(answers)}", answer_figures(predictor.description, mean, face_labels))


def print_row(name, figures):
    print(f"{name}:")
    for task, task_figures in figures.items():
        print(f"  {task}: {evaluate.headline(task, task_figures)}")


if __name__ == "__main__":
    cli.run(main)
