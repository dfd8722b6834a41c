"""A 640x480 video of real faces drifting over a textured background: for the real-time tests, and for
bench/face_video.py and bench/benchmark.py."""
import cv2
import numpy as np


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
