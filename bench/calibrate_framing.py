"""Measure how each detector's box sits on a UTKFace chip, to frame inference crops like the chips.

The chips are the store's train faces (never its test faces, which bench/scene_benchmark.py scores),
pasted into scenes exactly as the scene benchmark pastes them: at random sizes, places, rotations
within 15 degrees and brightness, among other things (a face in a photo has surroundings). For each
face a detector finds, its box is compared with the pasted chip: the median box side and the median
offset of the chip's centre from the box's centre (along the face's eye line and across it, where the
detector finds the eyes) give the two constants of that detector's framing. A detector that finds
landmarks (MTCNN) frames faces from them instead: each face's landmarks are taken back to its chip by
the inverse of the paste, and their median positions there are the detector's chip_landmarks (its box
framing, measured after them, then comes out about 1 and 0: a check).

    python bench/calibrate_framing.py                     # every detector installed
    python bench/calibrate_framing.py --detectors dlib --scenes 100
"""
import argparse
import os

import cv2
import numpy as np

from agegender.faces import DETECTORS, make_detector
from scene_benchmark import (ROOT, SHARED_UTKFACE, CHIP_SIDE, chip_to_scene, installed_detectors, match,
                             scenes, split_faces)


def chip_landmarks(detector, scene_list):
    """(median position of each landmark on the chip in chip sides (k, 2), faces measured): every face's
    landmarks, found in a scene, taken back to the chip it was pasted from."""
    measured = []
    for image, truth in scene_list:
        for points in detector.landmarks(image):
            for _, centre, side, angle in truth:
                to_chip = cv2.invertAffineTransform(chip_to_scene(centre, side, angle))
                on_chip = cv2.transform(points[None], to_chip)[0] / CHIP_SIDE
                if np.all((on_chip > 0) & (on_chip < 1)):  # this face's landmarks (pasted chips do not overlap)
                    measured.append(on_chip)
                    break
    return np.median(np.array(measured), axis=0), len(measured)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(ROOT, "data", "utk"), help="store (default: data/utk)")
    parser.add_argument("--faces", default=SHARED_UTKFACE, help="UTKFace folder (default: ../shared/data/utkface)")
    parser.add_argument("--detectors", nargs="+", choices=list(DETECTORS), help="default: every one installed")
    parser.add_argument("--scenes", type=int, default=300, help="scenes of train faces (default: 300)")
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    paths, _, _ = split_faces(arguments.data, arguments.faces, split="train")
    scene_list = list(scenes(arguments.scenes, arguments.seed, paths))
    faces = sum(len(f) for _, f in scene_list)
    print(f"{arguments.scenes} scenes holding {faces} train faces of {arguments.data}, seed {arguments.seed}")
    for name in arguments.detectors or installed_detectors():
        detector = make_detector(name)
        if hasattr(detector, "landmarks"):
            points, count = chip_landmarks(detector, scene_list)
            print(f"{name:10s} landmarks of {count / faces:6.1%} of the faces -> chip_landmarks = "
                  f"np.array({np.round(points, 4).tolist()})")
        measured = []  # per face found: box side, and the chip centre's offset from the box centre, in chip sides
        for image, truth in scene_list:
            boxes, angles = detector.detect(image)
            for b, f in match(boxes, truth):
                x, y, w, h = boxes[b]
                _, (centre_x, centre_y), chip_side, _ = truth[f]
                # The offset along the face's own axes: its eye line (where the detector finds eyes) and
                # the downward perpendicular to it, as chip_box applies it.
                tilt = np.radians(angles[b])
                offset_x, offset_y = centre_x - x - w / 2, centre_y - y - h / 2
                measured.append((max(w, h) / chip_side,
                                 (np.cos(tilt) * offset_x + np.sin(tilt) * offset_y) / chip_side,
                                 (-np.sin(tilt) * offset_x + np.cos(tilt) * offset_y) / chip_side))
        side, right, down = np.median(np.array(measured), axis=0)
        print(f"{name:10s} found {len(measured) / faces:6.1%}: box side {side:.3f} chip sides, chip centre "
              f"{down:+.3f} chip sides below and {right:+.3f} right of the box centre -> "
              f"chip_scale, chip_down_shift = {1 / side:.3f}, {down / side:.3f}")


if __name__ == "__main__":
    main()
