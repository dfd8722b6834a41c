"""Finding faces and framing them the way the training chips are framed.

A model trained on UTKFace chips has only seen faces framed as the chips frame them, so every crop
taken from a detector's box (at wash time or at inference) is scaled and shifted to match. Measured by
bench/calibrate_framing.py on 2,000 shared chips placed in larger images (a face in a photo has
surroundings): the Haar cascade's box is about 207 px for the 200 px chip, centred about 17 px above
the chip's centre. (Inside the bare chip the box comes out at 165 px, but only because the cascade
cannot return a box larger than the image; it then also misses half the faces.)
"""
import cv2
import numpy as np

from agegender.errors import AgeGenderError

FACE_SIZE = 128  # side of the square grayscale crop the model sees

CHIP_SCALE = 200 / 207      # chip side / detector box side
CHIP_DOWN_SHIFT = 17 / 207  # chip centre lies this many box sides below the box centre


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


class DetectorError(AgeGenderError):
    """A face detector that cannot be set up (its model file or package is missing)."""


def to_gray(image):
    """Grayscale view of a BGR or already-gray image."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


class HaarDetector:
    """OpenCV's frontal-face Haar cascade, as the original project used.

    `max_side` shrinks large images before detecting (boxes come back in the original's pixels):
    detection time grows with the pixel count, and faces in webcam frames are large.
    """

    def __init__(self, scale_factor=1.1, min_neighbors=5, min_size=24, max_side=None):
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise DetectorError(f"cannot load the Haar cascade {path}: is opencv-python < 5 installed?")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.max_side = max_side

    def __call__(self, image):
        """Face boxes (x, y, w, h) of a BGR or grayscale image, int array (n, 4), largest first."""
        gray = to_gray(image)
        shrink = 1.0
        if self.max_side and max(gray.shape[:2]) > self.max_side:
            shrink = self.max_side / max(gray.shape[:2])
            gray = cv2.resize(gray, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        min_side = max(8, int(self.min_size * shrink))
        boxes = self.cascade.detectMultiScale(gray, scaleFactor=self.scale_factor,
                                              minNeighbors=self.min_neighbors,
                                              minSize=(min_side, min_side))
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / shrink
        order = np.argsort(-boxes[:, 2] * boxes[:, 3], kind="stable")
        return np.round(boxes[order]).astype(int)


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
        gray = to_gray(image)
        if not len(self.boxes) or self.frames_since_full + 1 >= self.full_every:
            self.boxes, self.frames_since_full = self.detector(gray), 0
            return self.boxes
        self.frames_since_full += 1
        found = [box for box in (self.search_near(gray, box) for box in self.boxes) if box is not None]
        self.boxes = np.array(found, dtype=int).reshape(-1, 4)
        return self.boxes

    def search_near(self, gray, box):
        x, y, w, h = box
        left, top = max(0, int(x - self.margin * w)), max(0, int(y - self.margin * h))
        right = min(gray.shape[1], int(x + w + self.margin * w))
        bottom = min(gray.shape[0], int(y + h + self.margin * h))
        window = gray[top:bottom, left:right]
        boxes = self.detector.cascade.detectMultiScale(
            window, scaleFactor=1.1, minNeighbors=self.detector.min_neighbors,
            minSize=(int(0.7 * w), int(0.7 * h)), maxSize=(int(1.4 * w), int(1.4 * h)))
        if len(boxes) == 0:
            return None
        bx, by, bw, bh = max(boxes, key=lambda b: b[2] * b[3])
        return (left + bx, top + by, bw, bh)


class MtcnnDetector:
    """The MTCNN detector of the `mtcnn` package (its weights ship inside it), when it is installed."""

    def __init__(self, min_confidence=0.9):
        try:
            from mtcnn import MTCNN  # optional: only users who ask for it need the package
        except ImportError:
            raise DetectorError("the MTCNN detector needs the mtcnn package: pip install mtcnn") from None
        self.mtcnn = MTCNN()
        self.min_confidence = min_confidence

    def __call__(self, image):
        """Face boxes (x, y, w, h) of a BGR or grayscale image, largest first."""
        rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB)
        faces = [face for face in self.mtcnn.detect_faces(rgb) if face["confidence"] >= self.min_confidence]
        boxes = np.array([face["box"] for face in faces], dtype=int).reshape(-1, 4)
        return boxes[np.argsort(-boxes[:, 2] * boxes[:, 3], kind="stable")]


def make_detector(name, max_side=None):
    """'haar' (default, as the original) or 'mtcnn'."""
    if name == "haar":
        return HaarDetector(max_side=max_side)
    if name == "mtcnn":
        return MtcnnDetector()
    raise ValueError(f"unknown detector {name!r}; choose haar or mtcnn")
