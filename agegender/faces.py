"""Finding faces and framing them the way the training chips are framed.

UTKFace chips are tight: where OpenCV's Haar cascade finds a face in a 200 px chip, its box is about
165 px wide and centred about 12 px above the chip's centre. A model trained on chips has only seen faces
framed that way, so every crop taken from a detector's box (at wash time or at inference) is enlarged
and shifted to match.
"""
import cv2
import numpy as np

FACE_SIZE = 128  # side of the square grayscale crop the model sees

CHIP_SCALE = 200 / 165      # chip side / detector box side
CHIP_DOWN_SHIFT = 12 / 165  # chip centre lies this many box sides below the box centre


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


class HaarDetector:
    """OpenCV's frontal-face Haar cascade, as the original project used.

    `max_side` shrinks large images before detecting (boxes come back in the original's pixels):
    detection time grows with the pixel count, and faces in webcam frames are large.
    """

    def __init__(self, scale_factor=1.1, min_neighbors=5, min_size=24, max_side=None):
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"cannot load the Haar cascade {path}: is opencv-python < 5 installed?")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.max_side = max_side

    def __call__(self, gray):
        """Face boxes (x, y, w, h) as an int array of shape (n, 4), largest first."""
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
