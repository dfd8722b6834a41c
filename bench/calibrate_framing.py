"""Measure how the Haar cascade's box sits on a UTKFace chip, to frame inference crops like the chips.

Each chip is placed in a larger image (its border repeated, or a flat grey), as a face in a photo has
surroundings; the cascade's box is then compared with the chip. Inside the bare 200 px chip the
cascade cannot return a box larger than the chip, so a measurement there comes out too small.

    python bench/calibrate_framing.py            # prints the constants faces.py uses
"""
import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from agegender.faces import HaarDetector  # noqa: E402
from face_video import SHARED_UTKFACE  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", default=SHARED_UTKFACE)
    parser.add_argument("--count", type=int, default=2000, help="chips to measure, spread over the folder")
    arguments = parser.parse_args()
    names = sorted(os.listdir(arguments.faces))
    names = names[::max(1, len(names) // arguments.count)][:arguments.count]
    detector = HaarDetector()
    measured = {"bare chip": [], "border repeated": [], "flat grey": []}
    for name in names:
        chip = cv2.imread(os.path.join(arguments.faces, name), cv2.IMREAD_GRAYSCALE)
        if chip is None or chip.shape != (200, 200):
            continue
        for setting, (image, offset) in {
                "bare chip": (chip, 0),
                "border repeated": (cv2.copyMakeBorder(chip, 100, 100, 100, 100, cv2.BORDER_REPLICATE), 100),
                "flat grey": (cv2.copyMakeBorder(chip, 100, 100, 100, 100, cv2.BORDER_CONSTANT, value=120), 100),
        }.items():
            boxes = detector(image)
            if len(boxes) == 1:
                x, y, w, h = boxes[0]
                measured[setting].append((w, (y + h / 2 - offset) - 100))
    print(f"{len(names)} chips of {arguments.faces}")
    for setting, rows in measured.items():
        sides, centres = np.median(np.array(rows), axis=0)
        print(f"{setting:16s} found in {len(rows) / len(names):5.1%}: box {sides:.1f} px, centred "
              f"{-centres:.1f} px above the chip's centre -> CHIP_SCALE = 200 / {sides:.1f}, "
              f"CHIP_DOWN_SHIFT = {-centres:.1f} / {sides:.1f}")


if __name__ == "__main__":
    main()
