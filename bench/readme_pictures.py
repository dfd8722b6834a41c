"""The README's pictures (docs/images/), each made from what the repository and the shared faces hold:

    python bench/readme_pictures.py          # needs data/utk, the store the README's wash command writes

- scene_faces.jpg: four test faces of the store (never trained on; a child, and one of each age group
  beside), pasted into a scene as bench/scene_benchmark.py pastes them, then labelled by `detect.py`
  with its defaults: the bundled model and the default detector.
- curves.png, confusion_gender.png, confusion_age_group.png: the bundled model's training curves and its
  test split's confusion matrices, drawn by the report's own code (agegender/plots.py) from the
  metrics.json its run wrote, which the model folder keeps: nothing is trained or scored again.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np

from agegender import BUNDLED_MODEL
from agegender.plots import plot_confusion, plot_curves
from agegender.store import read_manifest
from scenes_of_faces import CHIP_SIDE, gradient, paste_face  # the scene benchmark's pasting

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The faces of the scene, by the test split's labels: (gender code, lowest age, highest age), left to right.
WANTED = ((1, 4, 10), (0, 30, 45), (1, 46, 59), (0, 60, 100))
SCENE_WIDTH, SCENE_HEIGHT, FACE_SIDE = 1080, 340, 200  # room for the last caption
JPEG_QUALITY = 80  # the annotated copy stays well under 200 KB
CURVES_WIDTH = 1200  # pixels: the report's curves, four tasks wide, shrunk to stay well under 200 KB


def test_faces(store):
    """The first test face of the store fitting each of WANTED: paths of the original 200x200 chips."""
    sources = {source["dataset"]: source["src"] for source in read_manifest(store)["sources"]}
    with open(os.path.join(store, "test", "index.csv"), encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    paths = []
    for gender, youngest, oldest in WANTED:
        row = next(row for row in rows if row["key"].startswith("utkface/") and int(row["gender"]) == gender
                   and youngest <= int(row["age"]) <= oldest)
        paths.append(os.path.join(sources["utkface"], row["key"].split("/", 1)[1]))
        print(f"face {len(paths)} from the left: {row['key']}, truly {('male', 'female')[gender]}, age {row['age']}")
    return paths


def scene(paths):
    rng = np.random.default_rng(0)
    image = gradient(rng, SCENE_WIDTH, SCENE_HEIGHT).astype(np.float32)
    step = SCENE_WIDTH / len(paths)
    for number, path in enumerate(paths):
        centre = (step * (number + 0.5), SCENE_HEIGHT / 2)
        paste_face(image, cv2.imread(path, cv2.IMREAD_COLOR), centre, FACE_SIDE, rng.uniform(-8, 8), 1.0, 0.0)
    return np.clip(image, 0, 255).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(ROOT, "data", "utk"), help="store (default: data/utk)")
    parser.add_argument("--model", default=BUNDLED_MODEL, help="model folder (default: the bundled model)")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "images"), help="folder (default: docs/images)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    with tempfile.TemporaryDirectory() as folder:
        photo = os.path.join(folder, "scene.jpg")
        cv2.imwrite(photo, scene(test_faces(args.data)), [cv2.IMWRITE_JPEG_QUALITY, 95])
        subprocess.run([sys.executable, os.path.join(ROOT, "detect.py"), photo, "--model", args.model,
                        "--out", folder], check=True)
        labelled = cv2.imread(os.path.join(folder, "scene_faces.jpg"), cv2.IMREAD_COLOR)
        cv2.imwrite(os.path.join(args.out, "scene_faces.jpg"), labelled, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])

    with open(os.path.join(args.model, "metrics.json"), encoding="utf-8") as file:
        metrics = json.load(file)
    curves = os.path.join(args.out, "curves.png")
    plot_curves(metrics["history"], metrics["tasks"], curves)
    image = cv2.imread(curves, cv2.IMREAD_COLOR)
    cv2.imwrite(curves, cv2.resize(image, None, fx=CURVES_WIDTH / image.shape[1], fy=CURVES_WIDTH / image.shape[1],
                                   interpolation=cv2.INTER_AREA), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    for task in ("gender", "age_group"):
        test = metrics["test"][task]
        plot_confusion(test["confusion_matrix"], test["classes"], f"{task}, test split ({test['faces']:,} faces)",
                       os.path.join(args.out, f"confusion_{task}.png"))
    for name in sorted(os.listdir(args.out)):
        print(os.path.join(args.out, name), f"{os.path.getsize(os.path.join(args.out, name)) / 1e3:.0f} KB")


if __name__ == "__main__":
    main()
