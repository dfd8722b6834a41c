"""Detector + model -> per-face results, and drawing them on the image.

Every face is cropped exactly as the training faces were: a square around the detector's box, framed
like a UTKFace chip (each detector's own chip_box), 128x128, grayscale or RGB as the model takes them
(its store's); all faces of an image go through the model in one batch.
"""
import os
from dataclasses import dataclass, field

import cv2
import numpy as np

from agegender import BUNDLED_MODEL, ENGINES, atomic
from agegender.faces import (DEFAULT_DETECTOR, DETECTION_MAX_SIDE, ImageError, crop_square, face_shape,
                             make_detector, read_image, to_channels)
from agegender.evaluate import AGE_INTERVAL_COVERAGE, age_interval
from agegender.export import in_memory_tflite_runner, model_runner
from agegender.model import age_interval_temperature, expected_age, load_model

RUNNERS = {"tensorflow": model_runner, "tflite": in_memory_tflite_runner}  # by engine: model -> faces -> probabilities
# Real time looks at each face once, whatever views of it (mirror image, zooms) a model averages for
# photos: a webcam needs every frame fast, and each view is one more pass of the network.
ONE_VIEW = {"flip_average": False, "zooms": [1.0]}
# Six views of each face, their logits averaged (detect.py --six-views): with agegender/models/improved, on the
# valid scenes, 1.25 points more faces right per face than one view (bench/RESULTS.md), at six passes
# of the network a face, little beside a photo's face detection.
SIX_VIEWS = {"flip_average": True, "zooms": [1.0, 1.1, 0.9]}


@dataclass
class FaceResult:
    box: tuple                                            # (x, y, w, h) in the image's pixels
    labels: dict = field(default_factory=dict)            # task -> predicted class name
    probabilities: dict = field(default_factory=dict)     # task -> probability of that class
    distributions: dict = field(default_factory=dict)     # task -> {class name: probability}
    years: float = None                                   # exact age, from a model with that head
    age_interval: tuple = None                            # (low, high) years, both included: the head's central 80%
    angle: float = 0.0                                    # the eye line's tilt in degrees, where found

    def caption(self):
        parts = [f"{self.labels[task]} {self.probabilities[task]:.0%}" for task in self.labels]
        if self.years is not None:
            parts.append(f"age {self.years:.0f} ({self.age_interval[0]}-{self.age_interval[1]})")
        return ", ".join(parts)

    def to_json(self):
        exact_age = {"years": round(self.years, 1), "age_interval": list(self.age_interval),
                     "age_interval_coverage": AGE_INTERVAL_COVERAGE} if self.years is not None else {}
        return {"box": [int(v) for v in self.box], "labels": self.labels,
                "probabilities": {task: round(p, 4) for task, p in self.probabilities.items()},
                "distributions": self.distributions, "angle": round(float(self.angle), 1), **exact_age}


class Predictor:
    """Finds the faces in an image and, with a model, labels each one."""

    def __init__(self, model_folder=BUNDLED_MODEL, detector=DEFAULT_DETECTOR, detector_max_side=DETECTION_MAX_SIDE,
                 use_model=True, engine="tensorflow", flip_average=None, zooms=None):
        """engine: "tensorflow", or "tflite": the model converted to TFLite float32 when loaded (1-2 s),
        faster for the one or two faces a webcam frame holds, with the same answers to 1e-5.
        flip_average, zooms: None, as the model was saved; else the views of each face to average (its
        mirror image or not, the zooms), as calibrating for them needs."""
        self.detector = make_detector(detector, max_side=detector_max_side)
        if engine not in RUNNERS:
            raise ValueError(f"unknown engine {engine!r}; choose {' or '.join(ENGINES)}")
        self.model_folder = model_folder
        self.model, self.description = load_model(model_folder) if use_model else (None, None)
        if use_model and (flip_average, zooms) != (None, None):  # other views, before the inference is traced
            self.model.flip_average = self.model.flip_average if flip_average is None else bool(flip_average)
            self.model.zooms = self.model.zooms if zooms is None else tuple(zooms)
            self.description = {**self.description, "flip_average": self.model.flip_average,
                                "zooms": list(self.model.zooms)}
        self.probabilities = RUNNERS[engine](self.model) if use_model else None
        self.channels = self.model.channels if use_model else 1  # of the faces the model takes: 1 gray, 3 RGB

    def classify(self, faces):
        """Per task, class probabilities (n, classes) for uint8 128x128 faces of the model's channels:
        (n, 128, 128) gray, (n, 128, 128, 3) RGB."""
        faces = np.ascontiguousarray(faces, dtype=np.uint8).reshape(-1, *face_shape(self.channels))
        if not len(faces):
            return {task: np.zeros((0, len(names))) for task, names in self.description["classes"].items()}
        return self.probabilities(faces)

    def results(self, boxes, angles, probabilities):
        results = []
        if "exact_age" in probabilities:
            lows, highs = age_interval(probabilities["exact_age"], age_interval_temperature(self.description))
        for i, box in enumerate(boxes):
            result = FaceResult(tuple(int(v) for v in box), angle=float(angles[i]))
            for task, values in probabilities.items():
                if task == "exact_age":
                    result.years = float(expected_age(values[i]))
                    result.age_interval = (int(lows[i]), int(highs[i]))
                    continue
                names = self.description["classes"][task]
                best = int(np.argmax(values[i]))
                result.labels[task] = names[best]
                result.probabilities[task] = float(values[i, best])
                result.distributions[task] = {name: round(float(p), 4) for name, p in zip(names, values[i])}
            results.append(result)
        return results

    def __call__(self, image, boxes=None, angles=None):
        """FaceResults for every face found in a BGR or gray image (or for the given boxes, with the eye
        lines' angles in degrees where known)."""
        if boxes is None:
            boxes, angles = self.detector.detect(image)
        angles = np.zeros(len(boxes)) if angles is None else angles
        if self.model is None or not len(boxes):
            return [FaceResult(tuple(int(v) for v in box), angle=float(a)) for box, a in zip(boxes, angles)]
        pixels = to_channels(image, self.channels)
        faces = np.stack([crop_square(pixels, self.detector.chip_box(box, angle), angle=angle)
                          for box, angle in zip(boxes, angles)])
        return self.results(boxes, angles, self.classify(faces))


GENDER_COLOURS = {"male": (255, 160, 0), "female": (80, 80, 255)}  # BGR


def draw(image, results, extra_text=None):
    """An annotated copy: a box and a caption per face, and an optional line at the top left."""
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    scale = max(0.45, min(canvas.shape[:2]) / 900)
    thickness = max(1, round(scale * 2))
    for result in results:
        x, y, w, h = result.box
        colour = GENDER_COLOURS.get(result.labels.get("gender"), (0, 200, 0))
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness)
        caption = result.caption()
        if caption:
            (text_w, text_h), baseline = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
            top = y - text_h - baseline - 4 if y - text_h - baseline - 4 > 0 else y + h
            cv2.rectangle(canvas, (x, top), (x + text_w + 4, top + text_h + baseline + 4), colour, cv2.FILLED)
            cv2.putText(canvas, caption, (x + 2, top + text_h + 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (255, 255, 255), thickness, cv2.LINE_AA)
    if extra_text:
        cv2.putText(canvas, extra_text, (8, int(30 * scale + 8)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 255, 255), thickness, cv2.LINE_AA)
    return canvas


def write_image_atomically(path, image):
    """cv2.imwrite to a temporary name, then rename; ImageError if OpenCV cannot write it."""
    with atomic.AtomicFile(path) as temporary:
        if not cv2.imwrite(temporary, image):
            raise ImageError(f"{path}: cannot write an image there (disk full, or an extension OpenCV "
                             "does not know)")


def annotated_names(paths):
    """The file name of each image's annotated copy: `<name>_faces.jpg`; where images share a name
    (a/photo.jpg, b/photo.jpg) the later ones' `<name>-2_faces.jpg`, `<name>-3_faces.jpg` ..., so that
    no copy is written over another (names compared regardless of case, as some file systems do)."""
    names, taken = [], set()
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        name, number = f"{stem}_faces.jpg", 1
        while name.casefold() in taken:
            number += 1
            name = f"{stem}-{number}_faces.jpg"
        taken.add(name.casefold())
        names.append(name)
    return names


def label_image_file(predictor, path, out_folder, name=None):
    """Find and label the faces of an image file and write its annotated copy into out_folder, as
    `name` (default: annotated_names's for this image alone).

    Returns (results, report) with report = {"image", "annotated", "faces"}; ImageError when the
    image cannot be read or the copy cannot be written.
    """
    image = read_image(path)
    results = predictor(image)
    os.makedirs(out_folder, exist_ok=True)
    annotated = os.path.join(out_folder, name or annotated_names([path])[0])
    write_image_atomically(annotated, draw(image, results))
    return results, {"image": path, "annotated": annotated, "faces": [r.to_json() for r in results]}
