"""What averaging a model's answers over several views of each face gives: the face as it is, with its
mirror image, and zoomed in and out by 10% (each mirrored too), the views' logits averaged head by head
as the model itself does once its model.json names them (`joint/test_model.py --calibrate --flip-average
--zooms 1 1.1 0.9`), or `detect.py --six-views` asks for the last row's. Each view costs one more pass of the network, so this tells whether the views are
worth their cost. The temperatures are the model's as saved: the accuracies and the MAE do not depend on
them, the ECE does (it is calibrated for the views only once --calibrate fits them).

    python bench/test_time_views.py agegender/models/improved       # valid split of data/utk
"""
import argparse

from agegender import cli, evaluate
from agegender.predict import ONE_VIEW, SIX_VIEWS, Predictor
from agegender.scoring import answer_figures, labelled_batches, model_answers
from stores import default_store

def print_row(name, figures):
    print(f"{name}:")
    for task, task_figures in figures.items():
        print(f"  {task}: {evaluate.headline(task, task_figures)}")


VIEWS = {"as it is": ONE_VIEW, "and its mirror image": {"flip_average": True, "zooms": [1.0]},
         "zoomed 1, 1.1 and 0.9, each mirrored": SIX_VIEWS}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model folder")
    parser.add_argument("--data", help="store (default: as bench/scene_benchmark.py, by the model's channels)")
    parser.add_argument("--split", choices=("valid", "test"), default="valid")
    arguments = parser.parse_args()
    data = arguments.data or default_store(arguments.model)
    batches = None  # the split, read once
    for name, views in VIEWS.items():
        predictor = Predictor(arguments.model, **views)
        batches = batches or list(labelled_batches(data, arguments.split, predictor))
        probabilities, face_labels = model_answers(predictor, batches)
        print_row(f"{name} (network passes a face: {predictor.model.views})",
                  answer_figures(predictor.description, probabilities, face_labels))


if __name__ == "__main__":
    cli.run(main)
