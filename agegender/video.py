"""The real-time loop: frames from a camera or a video file -> faces, gender, age group, FPS."""
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


class AtomicVideoWriter:
    """cv2.VideoWriter to a temporary name, renamed into place once the file reads back with every frame.

    OpenCV's writer reports no error: on a full disk it goes on "writing", and the file it leaves is cut
    short and cannot be opened.
    """

    def __init__(self, path, fps, size):
        self.file = atomic.AtomicFile(path)
        self.frames = 0
        self.writer = cv2.VideoWriter(self.file.temporary, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            self.discard()
            raise VideoError(f"{path}: cannot write a video there (an extension OpenCV does not know; try .mp4)")

    def write(self, frame):
        self.writer.write(frame)
        self.frames += 1

    def close(self):
        """Finish the file and put it in place, or VideoError (and nothing in place) if it is incomplete."""
        self.writer.release()
        frames = frames_in(self.file.temporary, self.frames)
        if frames != self.frames:
            self.file.discard()
            raise VideoError(f"{self.file.path}: the video could not be written whole ({frames} of {self.frames} "
                             "frames read back; is the disk full?); nothing was put in place")
        self.file.commit()

    def discard(self):
        self.writer.release()
        self.file.discard()


def run(predictor, source, out=None, display=False, max_frames=None, on_frame=None):
    """Classify every frame until the video ends, max_frames, or q / Esc in the window.

    Returns a summary: frames, faces, mean FPS and the mean milliseconds per frame spent reading,
    detecting and classifying.
    """
    capture, what = open_source(source)
    find_faces = VideoFaceFinder(predictor.detector)
    writer = None
    frames = faces = 0
    read_seconds = detect_seconds = classify_seconds = 0.0
    smoothed_fps = None
    started = time.perf_counter()
    # A Ctrl-C ends a recording and keeps it, also where TensorFlow turned it into another error (cli.CtrlC).
    with cli.CtrlC() as ctrl_c:
        try:
            while max_frames is None or frames < max_frames:
                ctrl_c.check()
                frame_started = time.perf_counter()
                ok, frame = capture.read()
                if not ok:
                    if frames == 0:
                        raise VideoError(f"{what}: no frame could be read")
                    break
                read = time.perf_counter()
                boxes, angles = find_faces(frame)  # follows faces on the gray frame
                detected = time.perf_counter()
                results = predictor(frame, boxes, angles)  # crops them as the model takes them, gray or RGB
                classified = time.perf_counter()
                read_seconds += read - frame_started
                detect_seconds += detected - read
                classify_seconds += classified - detected
                frames += 1
                faces += len(results)
                instant_fps = 1.0 / max(classified - frame_started, 1e-6)
                smoothed_fps = instant_fps if smoothed_fps is None else 0.9 * smoothed_fps + 0.1 * instant_fps
                annotated = draw(frame, results, f"{smoothed_fps:.0f} FPS")
                if out:
                    if writer is None:
                        fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
                        writer = AtomicVideoWriter(out, fps if fps > 0 else 30.0, annotated.shape[1::-1])
                    writer.write(annotated)
                if on_frame:
                    on_frame(frames, results)
                if display:
                    cv2.imshow("age & gender (q to quit)", annotated)
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
        except BaseException as error:
            if writer and not (ctrl_c.pressed or isinstance(error, KeyboardInterrupt)):  # Ctrl-C keeps the recording
                writer.discard()
                writer = None
            raise
        finally:
            capture.release()
            if writer:
                writer.close()
            if display:
                cv2.destroyAllWindows()
    seconds = time.perf_counter() - started
    return {"source": what, "frames": frames, "faces": faces, "seconds": round(seconds, 3),
            "mean_fps": round(frames / seconds, 2) if seconds else 0.0,
            "read_ms_per_frame": round(1000 * read_seconds / max(frames, 1), 2),
            "detect_ms_per_frame": round(1000 * detect_seconds / max(frames, 1), 2),
            "classify_ms_per_frame": round(1000 * classify_seconds / max(frames, 1), 2),
            "output": out}
