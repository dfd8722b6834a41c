"""A trained model's answers to labelled faces, and its figures on them: a store's split streamed, or a
raw UTKFace folder read whole; temperatures fitted on the valid split. What joint/test_model.py
(evaluate_cli), the trainer's final report and bench/test_time_views.py measure with."""
import os
import sys

import numpy as np

from agegender import atomic, evaluate, labels, pipeline, plots, sources, store, wash
from agegender.model import (AGE_INTERVAL, MODEL_JSON, TASK_LABEL, age_interval_temperature, check_store_channels,
                             expected_age, load_model)
from agegender.predict import Predictor
from agegender.progress import Progress

BATCH_SIZE = 256
LABELS = ("age", "gender", "race")


def labelled_batches(data, split, predictor):
    """Batches (faces uint8 as the predictor's model takes them, {"age", "gender", "race"} arrays) of a
    store's split, streamed (an IMDB-WIKI test split is about 750 MB of faces), or of a raw UTKFace
    folder; ModelError for a store of other channels than the model's."""
    if not os.path.isfile(os.path.join(data, store.MANIFEST)):
        faces, face_labels = raw_faces(data, color=predictor.channels == 3)
        for start in range(0, len(faces), BATCH_SIZE):
            yield faces[start:start + BATCH_SIZE], {name: face_labels[name][start:start + BATCH_SIZE] for name in LABELS}
        return
    check_store_channels(predictor.channels, data, predictor.model_folder)
    if store.read_manifest(data)["splits"][split]["faces"] == 0:
        raise store.StoreError(f"{data}: its {split} split holds no faces (see its manifest); choose another "
                               "--split, or wash the store again with a --split that gives it a share")
    for images, batch_labels in pipeline.split_dataset(data, split, BATCH_SIZE):
        yield images.numpy(), {name: batch_labels[name].numpy() for name in LABELS}


def raw_faces(data, color):
    """(faces uint8 (n,128,128), or with color (n,128,128,3), {"age", "gender", "race"} arrays) from a
    raw UTKFace folder."""
    records = [r for r in sources.read_utkface(data) if wash.label_problem(r, wash.WashOptions()) is None]
    faces, kept = [], []
    progress = Progress(len(records), "reading faces")
    for record in records:
        problem, face, _, _ = wash.load_face(record, detect=False, color=color)  # the crop the store would hold
        if not problem:
            faces.append(face)
            kept.append(record)
        progress.update()
    progress.close()
    if not faces:
        raise sources.SourceError(f"{data}: no readable, labelled face")
    return np.stack(faces), {"age": np.array([r.age for r in kept]), "gender": np.array([r.gender for r in kept]),
                             "race": np.array([r.race for r in kept])}


def model_answers(predictor, batches):
    """(probabilities per task, the faces' labels) over labelled batches."""
    classes = predictor.description["classes"]
    probabilities, label_parts = {task: [] for task in classes}, {name: [] for name in LABELS}
    for faces, batch_labels in batches:
        for task, values in predictor.classify(faces).items():
            probabilities[task].append(values)
        for name in LABELS:
            label_parts[name].append(batch_labels[name])
    if not label_parts["age"]:
        raise store.StoreError("no faces to evaluate: the split is empty")
    probabilities = {task: np.concatenate(parts) for task, parts in probabilities.items()}
    face_labels = {name: np.concatenate(parts) for name, parts in label_parts.items()}
    # Age groups from the raw age with the model's own edges: a store may have been washed with others.
    face_labels["age_group"] = labels.age_group(face_labels["age"], predictor.description["age_edges"])
    return probabilities, face_labels


# Faces of each class of a head the valid split must hold to fit its temperature. A small split is
# often all right, and then the likelihood rises without end as T falls: on 19 faces the gender
# temperature fell to the search's lower end and every answer read 100%. 10 a class is what the
# tests' 2,400-face store gives the rarest age group (11); UTKFace's whole valid split gives about 90.
MIN_CALIBRATION_FACES = 10


def calibrate(model_folder, data, flip_average, zooms=(1.0,)):
    """Fit each classification head's temperature on the store's valid split and store it, with the
    views of each face to average (flip_average, zooms), in the model's model.json, written once at
    the end. The log-probabilities are the logits up to a constant per face, so the new temperature
    multiplies the one the model already has; a factor the fit cannot tell from 1 leaves it as it is, so
    a model calibrated on this split already keeps its model.json unchanged. An exact-age head's age
    interval gets its own temperature (AGE_INTERVAL: evaluate.fit_interval_temperature), fitted afresh
    on the distribution these views give; the head's own temperature, and so the expected age, stays.
    Nothing else in model.json changes: other temperatures there stay, and the views are written only
    where they are not the model's already.

    Returns the temperatures it fitted, with a warning on stderr for each fit that stopped at an end of
    its search range (evaluate.at_range_end) or, for the age interval, fell short of its coverage;
    StoreError, with nothing written, when the valid split holds fewer than MIN_CALIBRATION_FACES faces
    of some class."""
    model, description = load_model(model_folder)
    check_store_channels(model.channels, data, model_folder)
    predictor = Predictor(model_folder, flip_average=flip_average, zooms=list(zooms))
    probabilities, face_labels = model_answers(predictor, labelled_batches(data, "valid", predictor))
    heads = [task for task in probabilities if task != "exact_age"]
    for task in heads:
        counts = np.bincount(face_labels[TASK_LABEL[task]], minlength=probabilities[task].shape[1])
        if counts.min() < MIN_CALIBRATION_FACES:
            name = description["classes"][task][counts.argmin()]
            raise store.StoreError(f"{data}: the valid split holds {counts.min()} {task} face(s) of {name}, fewer "
                                   f"than the {MIN_CALIBRATION_FACES} of each class a temperature fit needs; "
                                   "calibrate on a larger store (nothing was written)")
    temperatures = {**description.get("temperatures", {}), **predictor.model.temperatures}
    low, high = np.exp(evaluate.LOG_TEMPERATURE_RANGE)
    for task in heads:
        factor = evaluate.fit_temperature(evaluate.log_probabilities(probabilities[task]),
                                          face_labels[TASK_LABEL[task]])
        if evaluate.at_range_end(factor):
            print(f"warning: {model_folder}: the {task} temperature's fit stopped at an end of its search range "
                  f"(a factor of {low:.2f} to {high:.1f} on the temperature before), so it is not the best fit: "
                  "calibrate again if the old one was far off; on faces the head gets all right, only a larger "
                  "store helps", file=sys.stderr)
        if abs(np.log(factor)) > evaluate.TEMPERATURE_PRECISION:
            temperatures[task] *= factor
    fitted = list(heads)
    if "exact_age" in probabilities:
        temperatures[AGE_INTERVAL] = fit_age_interval(model_folder, probabilities["exact_age"], face_labels["age"])
        fitted.append(AGE_INTERVAL)
    views = {"flip_average": predictor.model.flip_average, "zooms": list(predictor.model.zooms)}
    as_saved = {"flip_average": model.flip_average, "zooms": list(model.zooms)}
    calibrated = {**description, **{key: value for key, value in views.items() if value != as_saved[key]},
                  "temperatures": temperatures}
    if calibrated != description:
        atomic.write_json(os.path.join(model_folder, MODEL_JSON), calibrated)
    return {key: temperatures[key] for key in fitted}


def fit_age_interval(model_folder, probabilities, truth_years):
    """The age interval's temperature for the exact-age head's answers to the valid split (their
    probabilities, the true years), with a warning on stderr when no temperature of the search range
    gives the nominal coverage, or the fit stopped at an end of that range."""
    temperature = evaluate.fit_interval_temperature(probabilities, truth_years)
    coverage = evaluate.interval_coverage(truth_years, *evaluate.age_interval(probabilities, temperature))
    if coverage < evaluate.AGE_INTERVAL_COVERAGE or evaluate.at_range_end(temperature):
        low, high = np.exp(evaluate.LOG_TEMPERATURE_RANGE)
        print(f"warning: {model_folder}: the age interval's temperature stopped at {temperature:.3f} (its search "
              f"range: {low:.2f} to {high:.1f}), where the intervals hold {coverage:.1%} of the valid split's "
              f"ages, not {evaluate.AGE_INTERVAL_COVERAGE:.0%}: the exact-age head is too far off for a "
              "temperature to mend (a longer run, or a larger store, helps)", file=sys.stderr)
    return temperature


def answer_figures(description, probabilities, face_labels):
    """evaluate.report's figures for a model's answers (model_answers) to labelled faces: the most
    probable class per head, the expected age from the exact-age head, and its age interval's coverage."""
    predicted = {task: expected_age(values) if task == "exact_age" else np.argmax(values, axis=1)
                 for task, values in probabilities.items()}
    truth = {task: face_labels[TASK_LABEL[task]] for task in description["classes"]}
    figures = evaluate.report(description["classes"], truth, predicted, face_labels, description["age_edges"],
                              probabilities)
    if "exact_age" in probabilities:
        intervals = evaluate.age_interval(probabilities["exact_age"], age_interval_temperature(description))
        figures["exact_age"]["age_interval"] = evaluate.interval_figures(face_labels["age"], *intervals)
    return figures


def evaluate_model(predictor, batches, out):
    """Figures and confusion matrices (PNG in `out`) for the model's answers on labelled batches."""
    classes = predictor.description["classes"]
    probabilities, face_labels = model_answers(predictor, batches)
    faces_count = len(face_labels["age"])
    figures = answer_figures(predictor.description, probabilities, face_labels)
    os.makedirs(out, exist_ok=True)
    for task in classes:
        figures[task]["confusion_png"] = os.path.join(out, f"confusion_{task}.png")
        plots.plot_confusion(*evaluate.confusion_of(figures[task]),
                             f"{task} ({faces_count} faces)\n{evaluate.headline(task, figures[task])}",
                             figures[task]["confusion_png"])
    return figures
