"""The real-time loop: frames from a camera or a video file -> faces, gender, age group, FPS."""
import contextlib
import itertools
import os
import sys
import time

import cv2

from agegender import atomic, cli
from agegender.errors import AgeGenderError
from agegender.faces import VideoFaceFinder
from agegender.predict import draw


class VideoError(AgeGenderError):
    """A camera or video that cannot be opened or written."""


def open_source(source):
    """cv2.VideoCapture of a camera index ("0") or a video file, checked to deliver frames."""
    if str(source).isdigit():
        capture = cv2.VideoCapture(int(source))
        what = f"camera {source}"
        if not capture.isOpened():
            raise VideoError(f"{what}: cannot open it (no camera with that index, or it is in use)")
    else:
        what = str(source)
        if not os.path.isfile(what):
            raise VideoError(f"{what}: no such video file")
        capture = cv2.VideoCapture(what)
        if not capture.isOpened():
            raise VideoError(f"{what}: not a video OpenCV can read")
    return capture, what


def display_available():
    """Whether cv2.imshow can open a window: opencv-python aborts the whole process when it cannot."""
    if "GUI:                           NONE" in cv2.getBuildInformation():
        return False  # a headless OpenCV build has no windows at all
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def frames_in(path, expected):
    """How many frames a video file holds (0 when it cannot be opened): the count its container states
    when that is `expected`, else those that can be read, as some containers state only an estimate."""
    video = cv2.VideoCapture(path)
    frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT)) if video.isOpened() else 0
    if video.isOpened() and frames != expected:
        frames = 0
        while video.grab():
            frames += 1
    video.release()
    return frames


class Recording:
    """`with Recording(path, fps, ctrl_c) as recording:` the frames written to `path` (nowhere when it is
    None), put in place when the block ends, and only once the file reads back with every frame: OpenCV's
    writer reports no error, and on a full disk it goes on "writing" a file cut short that cannot be
    opened. A Ctrl-C that ends the block keeps the recording, which is how a user stops one; any other
    error throws it away."""

    def __init__(self, path, fps, ctrl_c):
        self.path, self.fps, self.ctrl_c = path, fps, ctrl_c
        self.file = self.writer = None
        self.frames = 0

    def __enter__(self):
        return self

    def write(self, frame):
        if self.path is None:
            return
        if self.writer is None:  # opened at the first frame, whose size the video takes
            self.file = atomic.AtomicFile(self.path)
            self.writer = cv2.VideoWriter(self.file.temporary, cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                          frame.shape[1::-1])
            if not self.writer.isOpened():
                self.file.discard()
                self.writer = None
                raise VideoError(f"{self.path}: cannot write a video there (an extension OpenCV does not know; "
                                 "try .mp4)")
        self.writer.write(frame)
        self.frames += 1

    def __exit__(self, kind, error, trace):
        if self.writer is None:
            return
        self.writer.release()
        if error is not None and not (self.ctrl_c.pressed or isinstance(error, KeyboardInterrupt)):
            self.file.discard()
            return
        frames = frames_in(self.file.temporary, self.frames)
        if frames != self.frames:
            self.file.discard()
            raise VideoError(f"{self.path}: the video could not be written whole ({frames} of {self.frames} "
                             "frames read back; is the disk full?); nothing was put in place")
        self.file.commit()


def frames_of(capture, what):
    """The frames of an opened capture until it ends; VideoError if it has none."""
    ok, frame = capture.read()
    if not ok:
        raise VideoError(f"{what}: no frame could be read")
    while ok:
        yield frame
        ok, frame = capture.read()


def frame_rate(capture):
    fps = capture.get(cv2.CAP_PROP_FPS)
    return fps if fps > 0 else 30.0  # a camera may not say


@contextlib.contextmanager
def released(capture, display):
    """The capture released, and the window closed, when the block ends however it ends."""
    try:
        yield
    finally:
        capture.release()
        if display:
            cv2.destroyAllWindows()


def quit_pressed(annotated):
    """Show the frame in the window; whether q or Esc was pressed there."""
    cv2.imshow("age & gender (q to quit)", annotated)
    return cv2.waitKey(1) & 0xFF in (ord("q"), 27)


def run(predictor, source, out=None, display=False, max_frames=None, on_frame=None):
    """Classify every frame until the video ends, max_frames, or q / Esc in the window.

    Returns a summary: frames, faces, mean FPS and the mean milliseconds per frame spent reading,
    detecting and classifying.
    """
    capture, what = open_source(source)
    find_faces = VideoFaceFinder(predictor.detector)
    spent = {"read": 0.0, "detect": 0.0, "classify": 0.0}  # seconds, summed over the frames
    frames = faces = 0
    smoothed_fps = None
    started = frame_started = time.perf_counter()
    # A Ctrl-C ends a recording and keeps it, also where TensorFlow turned it into another error (cli.CtrlC).
    with cli.CtrlC() as ctrl_c, Recording(out, frame_rate(capture), ctrl_c) as recording, released(capture, display):
        for frame in itertools.islice(frames_of(capture, what), max_frames):
            ctrl_c.check()
            read = time.perf_counter()
            boxes, angles = find_faces(frame)  # follows faces on the gray frame
            detected = time.perf_counter()
            results = predictor(frame, boxes, angles)  # crops them as the model takes them, gray or RGB
            classified = time.perf_counter()
            for stage, seconds in zip(spent, (read - frame_started, detected - read, classified - detected)):
                spent[stage] += seconds
            frames += 1
            faces += len(results)
            instant_fps = 1.0 / max(classified - frame_started, 1e-6)
            smoothed_fps = instant_fps if smoothed_fps is None else 0.9 * smoothed_fps + 0.1 * instant_fps
            annotated = draw(frame, results, f"{smoothed_fps:.0f} FPS")
            recording.write(annotated)
            if on_frame:
                on_frame(frames, results)
            if display and quit_pressed(annotated):
                break
            frame_started = time.perf_counter()  # the next frame's reading starts here
    seconds = time.perf_counter() - started
    return {"source": what, "frames": frames, "faces": faces, "seconds": round(seconds, 3),
            "mean_fps": round(frames / seconds, 2) if seconds else 0.0,
            **{f"{stage}_ms_per_frame": round(1000 * total / max(frames, 1), 2) for stage, total in spent.items()},
            "output": out}
