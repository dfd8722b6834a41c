"""Make a 640x480 video of real UTKFace faces drifting over a background, for tests and benchmarks.

    python bench/face_video.py --out faces.mp4 --frames 300
"""
import argparse
import os

import cv2
import numpy as np

SHARED_UTKFACE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                              "shared", "data", "utkface")


def make_face_video(path, face_paths, frames=90, frames_per_face=30, size=(640, 480), fps=30.0):
    """Write the video: one face at a time, each shown for frames_per_face frames while it drifts."""
    width, height = size
    rng = np.random.default_rng(0)
    # A textured background, so the detector has something other than a face to reject.
    background = cv2.GaussianBlur(rng.integers(40, 200, (height // 8, width // 8, 3), dtype=np.uint8), (3, 3), 0)
    background = cv2.resize(background, size, interpolation=cv2.INTER_CUBIC)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"{path}: cannot write a video there")
    chips = [cv2.imread(p) for p in face_paths]
    for index in range(frames):
        chip = chips[(index // frames_per_face) % len(chips)]
        step = index % frames_per_face
        x = int(width / 2 - 100 + 2 * (step - frames_per_face / 2))
        y = int(height / 2 - 100 + step % 7)
        frame = background.copy()
        frame[y:y + 200, x:x + 200] = chip
        writer.write(frame)
    writer.release()
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--faces", default=SHARED_UTKFACE, help="UTKFace folder to take faces from")
    arguments = parser.parse_args()
    names = sorted(os.listdir(arguments.faces))[::997][:10]
    make_face_video(arguments.out, [os.path.join(arguments.faces, name) for name in names], arguments.frames)
    print(f"wrote {arguments.out}")


if __name__ == "__main__":
    main()
