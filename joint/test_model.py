"""Evaluate a trained model on labelled faces, or classify the faces in one image.

    python joint/test_model.py --data data/utk                 # a store's test split
    python joint/test_model.py --data ~/data/UTKFace --json figures.json   # a raw UTKFace folder
    python joint/test_model.py --image photo.jpg               # the faces in one image

Reports accuracy, balanced accuracy, one-off accuracy for age groups (MAE and CS(5) for a model with an
exact-age head), confusion matrices (PNG), and accuracy per gender, age group and race, so differences
between groups of people are visible.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere

import numpy as np  # noqa: E402

from agegender import evaluate, labels, plots, sources, store, wash  # noqa: E402
from agegender.model import TASK_LABEL, ModelError, expected_age  # noqa: E402
from agegender.predict import BUNDLED_MODEL, ImageError, Predictor, label_image_file  # noqa: E402
from agegender.progress import Progress  # noqa: E402


def labelled_faces(data, split):
    """(faces uint8 (n,128,128), {"age", "gender", "race"} arrays) from a store or a raw UTKFace folder."""
    if os.path.isfile(os.path.join(data, store.MANIFEST)):
        faces, face_labels = store.load_split(data, split)
        return faces, face_labels
    records = [r for r in sources.read_utkface(data) if wash.label_problem(r, wash.WashOptions()) is None]
    faces, kept = [], []
    progress = Progress(len(records), "reading faces")
    for record in records:
        problem, face, _, _ = wash.load_face(record, detect=False)  # the crop the store would hold
        if not problem:
            faces.append(face)
            kept.append(record)
        progress.update()
    progress.close()
    if not faces:
        raise sources.SourceError(f"{data}: no readable, labelled face")
    return np.stack(faces), {"age": np.array([r.age for r in kept]), "gender": np.array([r.gender for r in kept]),
                             "race": np.array([r.race for r in kept])}


def evaluate_model(predictor, faces, face_labels, out):
    classes = predictor.description["classes"]
    # Age groups from the raw age with the model's own edges: a store may have been washed with others.
    face_labels = {**face_labels, "age_group": labels.age_group(face_labels["age"], predictor.description["age_edges"])}
    probabilities = {task: [] for task in classes}
    for start in range(0, len(faces), 256):
        for task, values in predictor.classify(faces[start:start + 256]).items():
            probabilities[task].append(values)
    probabilities = {task: np.concatenate(parts) for task, parts in probabilities.items()}
    predicted = {task: expected_age(values) if task == "exact_age" else np.argmax(values, axis=1)
                 for task, values in probabilities.items()}
    truth = {task: face_labels[TASK_LABEL[task]] for task in classes}
    figures = evaluate.report(classes, truth, predicted, face_labels, predictor.description["age_edges"])
    os.makedirs(out, exist_ok=True)
    for task in classes:
        figures[task]["confusion_png"] = os.path.join(out, f"confusion_{task}.png")
        plots.plot_confusion(*evaluate.confusion_of(figures[task]),
                             f"{task} ({len(faces)} faces)\n{evaluate.headline(task, figures[task])}",
                             figures[task]["confusion_png"])
    return figures


def print_figures(figures):
    for task, task_figures in figures.items():
        print(f"{task}: {evaluate.headline(task, task_figures)} ({task_figures['faces']} faces; "
              f"confusion matrix {task_figures['confusion_png']})")
        for group, table in task_figures.get("by", {}).items():
            cells = ", ".join(f"{name} {row['accuracy']:.3f} ({row['faces']})" for name, row in table.items())
            print(f"  by {group}: {cells}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=BUNDLED_MODEL, help="model folder (default: the bundled model)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--data", help="a store written by others/wash_data.py, or a raw UTKFace folder")
    what.add_argument("--image", help="an image whose faces to classify")
    parser.add_argument("--split", choices=store.SPLITS, default="test", help="split of a store (default test)")
    parser.add_argument("--out", default="out/evaluation", help="folder for confusion matrices / annotated image")
    parser.add_argument("--json", help="write every figure to this JSON file")
    arguments = parser.parse_args()
    try:
        predictor = Predictor(arguments.model)
        if arguments.image:
            results, figures = label_image_file(predictor, arguments.image, arguments.out)
            print(f"{arguments.image}: {len(results)} face(s) -> {figures['annotated']}")
            for number, result in enumerate(results, 1):
                print(f"  face {number} at {result.box}: {result.caption()}")
        else:
            faces, face_labels = labelled_faces(arguments.data, arguments.split)
            figures = {"model": os.path.abspath(arguments.model), "data": os.path.abspath(arguments.data),
                       **evaluate_model(predictor, faces, face_labels, arguments.out)}
            print_figures({task: figures[task] for task in predictor.description["classes"]})
        if arguments.json:
            store.write_json_atomically(arguments.json, figures)
    except (ModelError, ImageError, store.StoreError, sources.SourceError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
