"""What averaging a model's answers over several views of each face would give: the face as it is, its
mirror image, and the face zoomed in and out by 10% (each mirrored too), their calibrated probabilities
averaged head by head, as bench/ensemble.py averages models. Each view costs one more pass of the network,
so this tells whether test-time augmentation beyond the mirror image is worth its cost. (A model that
averages each face with its mirror image, as models/joint, does so in every pass: then 3 passes.)

    python bench/test_time_views.py models/improved       # valid split of data/utk
"""
import argparse

import numpy as np
import tensorflow as tf

from agegender import cli
from agegender.faces import FACE_SIZE
from agegender.predict import Predictor
from agegender.scoring import answer_figures, labelled_batches, model_answers
from ensemble import print_row
from stores import default_store

ZOOMS = (1.0, 1.1, 0.9)  # 1.1: the centre 91% of the face enlarged; 0.9: the face shrunk, its edge reflected


def zoomed(faces, zoom):
    """uint8 faces (n,128,128[,3]) seen closer (zoom > 1) or from further away (zoom < 1), same size."""
    if zoom == 1.0:
        return faces
    images = tf.cast(faces if faces.ndim == 4 else faces[..., None], tf.float32)
    side = int(round(FACE_SIZE / zoom))
    if side < FACE_SIZE:
        start = (FACE_SIZE - side) // 2
        images = images[:, start:start + side, start:start + side]
    else:
        pad = (side - FACE_SIZE) // 2
        images = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], "REFLECT")
    images = tf.cast(tf.round(tf.image.resize(images, [FACE_SIZE, FACE_SIZE])), tf.uint8).numpy()
    return images if faces.ndim == 4 else images[..., 0]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model folder")
    parser.add_argument("--data", help="store (default: as bench/scene_benchmark.py, by the model's channels)")
    parser.add_argument("--split", choices=("valid", "test"), default="valid")
    arguments = parser.parse_args()
    data = arguments.data or default_store(arguments.model)
    predictor = Predictor(arguments.model)
    # A model that averages each face with its mirror image already does so in every pass.
    mirrors = (False,) if predictor.description.get("flip_average") else (False, True)
    batches = list(labelled_batches(data, arguments.split, predictor))  # read once, then zoomed and mirrored
    answers = {}
    for zoom in ZOOMS:
        zoomed_batches = [(zoomed(faces, zoom), face_labels) for faces, face_labels in batches]
        for mirror in mirrors:
            mirrored = ((np.ascontiguousarray(faces[:, :, ::-1]) if mirror else faces, face_labels)
                        for faces, face_labels in zoomed_batches)
            answers[zoom, mirror], face_labels = model_answers(predictor, mirrored)
    rows = [("as it is", [(1.0, False)])]
    if len(mirrors) == 2:
        rows.append(("and its mirror image", [(1.0, False), (1.0, True)]))
    rows.append((f"all {len(answers)} views", list(answers)))
    for name, views in rows:
        mean = {task: np.mean([answers[view][task] for view in views], axis=0) for task in answers[1.0, False]}
        print_row(f"{name} (network passes a face: {len(views)})", answer_figures(predictor.description, mean, face_labels))


if __name__ == "__main__":
    cli.run(main)
