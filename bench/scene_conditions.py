"""What each thing the scene benchmark does to a face costs the model alone, with no detector and no scene:
a split's original chips (valid unless told), each changed in one way as bench/scene_benchmark.py's
scenes change them, then scored as chips.

    python bench/scene_conditions.py                       # the bundled model, valid chips
    python bench/scene_conditions.py --model runs/x/model --split test

The conditions, drawn per face from the scenes' own ranges (bench/scenes_of_faces.py): the chip's
square edge feathered into one of the scenes' backgrounds; its size in the scene (60-400 px,
log-uniform; a face under 200 px loses resolution); its exposure (gain 0.6-1.3, offset +-25); all three.
Seeded: the same faces get the same changes in every run.
"""
import argparse
import os

import cv2
import numpy as np

from agegender import BUNDLED_MODEL, cli
from agegender.faces import crop_square, to_channels
from agegender.model import check_store_channels
from agegender.predict import Predictor
from face_video import SHARED_UTKFACE
from scene_benchmark import split_faces
from scenes_of_faces import BACKGROUNDS, CHIP_SIDE, FACE_SIDES, paste_face
from stores import default_store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CENTRE = (CHIP_SIDE / 2, CHIP_SIDE / 2)


def feathered(chip, rng):
    """Pasted at its own size onto a background, as a scene pastes it: only the edge changes."""
    canvas = BACKGROUNDS[int(rng.integers(0, len(BACKGROUNDS)))](rng, CHIP_SIDE, CHIP_SIDE).astype(np.float32)
    paste_face(canvas, chip, CENTRE, CHIP_SIDE, 0.0, 1.0, 0.0)
    return canvas


def resized(chip, rng):
    """Its size in a scene, then enlarged back to the chip's, as a crop of a small face is."""
    side = round(float(np.exp(rng.uniform(*np.log(FACE_SIDES)))))
    interpolation = cv2.INTER_AREA if side < CHIP_SIDE else cv2.INTER_LINEAR
    return cv2.resize(cv2.resize(chip, (side, side), interpolation=interpolation), (CHIP_SIDE, CHIP_SIDE))


def exposed(chip, rng):
    return chip * rng.uniform(0.6, 1.3) + rng.uniform(-25, 25)


CONDITIONS = {"none (the chips)": lambda chip, rng: chip, "edge feathered into a background": feathered,
              "size in the scene": resized, "exposure": exposed,
              "all three": lambda chip, rng: exposed(resized(feathered(chip, rng), rng), rng)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="store of the model's channels (default: as bench/scene_benchmark.py)")
    parser.add_argument("--faces", default=SHARED_UTKFACE, help="UTKFace folder (default: ../shared/data/utkface)")
    parser.add_argument("--model", default=BUNDLED_MODEL, help="model folder (default: the bundled model)")
    parser.add_argument("--split", choices=("test", "valid", "train"), default="valid")
    parser.add_argument("--seed", type=int, default=14)
    arguments = parser.parse_args()
    arguments.data = arguments.data or default_store(arguments.model)
    paths, _, truth = split_faces(arguments.data, arguments.faces, arguments.split)
    predictor = Predictor(arguments.model, use_model=True)
    check_store_channels(predictor.channels, arguments.data, arguments.model)
    chips = [cv2.imread(path, cv2.IMREAD_COLOR).astype(np.float32) for path in paths]
    print(f"{len(chips)} {arguments.split} chips of {arguments.data}, model {arguments.model}\n")
    print("| condition | gender | age group |\n| --- | --- | --- |")
    for name, change in CONDITIONS.items():
        rng = np.random.default_rng(arguments.seed)
        faces = np.stack([crop_square(to_channels(np.clip(change(chip, rng), 0, 255).astype(np.uint8),
                                                  predictor.channels), (0, 0, CHIP_SIDE, CHIP_SIDE))
                          for chip in chips])
        answers = predictor.classify(faces)
        print(f"| {name} | {np.mean(answers['gender'].argmax(1) == truth['gender']):.1%} "
              f"| {np.mean(answers['age_group'].argmax(1) == truth['age_group']):.1%} |", flush=True)


if __name__ == "__main__":
    cli.run(main)
