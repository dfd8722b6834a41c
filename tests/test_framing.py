"""Chip framing on small synthetic images: the box a detector gives becomes the crop the model expects."""
import cv2
import numpy as np
import pytest

from agegender import faces


def test_chip_box_scales_and_shifts_a_detector_box_to_the_chips_framing():
    x, y, side, _ = faces.chip_box((100, 50, 207, 207))
    assert side == pytest.approx(200)  # a 207 px detector box frames a 200 px chip
    assert x + side / 2 == pytest.approx(100 + 207 / 2)  # centred across
    assert y + side / 2 == pytest.approx(50 + 207 / 2 + 17)  # 17 px lower
    assert faces.chip_box((0, 0, 100, 60))[2:] == faces.chip_box((0, 0, 60, 100))[2:]  # square, from the longer side


def test_crop_inside_the_image_is_the_resized_region():
    gray = np.random.default_rng(0).integers(0, 256, (300, 400), dtype=np.uint8)
    crop = faces.crop_square(gray, (50.4, 20.6, 256, 256))
    assert crop.shape == (faces.FACE_SIZE, faces.FACE_SIZE) and crop.dtype == np.uint8
    assert np.array_equal(crop, cv2.resize(gray[21:277, 50:306], (128, 128), interpolation=cv2.INTER_AREA))
    assert np.array_equal(faces.crop_square(gray, (0, 0, 64, 64)),  # smaller regions are enlarged
                          cv2.resize(gray[:64, :64], (128, 128), interpolation=cv2.INTER_LINEAR))


def test_crop_past_the_border_repeats_the_border_instead_of_black():
    gray = np.tile(np.arange(50, 178, dtype=np.uint8), (128, 1))  # brightness grows to the right
    crop = faces.crop_square(gray, (-64, 0, 128, 128))  # left half outside the image
    assert crop.min() == 50  # no black band
    assert np.all(crop[:, :64] == 50) and np.array_equal(crop[:, 64:], gray[:, :64])


def test_gray_of_colour_and_of_gray_images():
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[..., 2] = 255  # pure red in BGR
    assert faces.to_gray(colour).shape == (4, 4) and faces.to_gray(colour)[0, 0] == 76  # 0.299 * 255
    gray = np.ones((4, 4), np.uint8)
    assert faces.to_gray(gray) is gray


def test_an_aligned_region_turns_and_scales_landmarks_back_onto_the_chips():
    """Five marks placed where a chip's landmarks would lie on a face 150 px wide, turned by 12 degrees:
    cropping the aligned region puts each mark where the chip has it, within a pixel, whichever way the
    face is turned; a mark thrown far off (a stray landmark) moves none of the others."""
    chip_points = np.array([[0.35, 0.42], [0.65, 0.42], [0.5, 0.55], [0.38, 0.7], [0.62, 0.7]])
    for angle in (-12, 12):
        to_image = cv2.getRotationMatrix2D((0, 0), -angle, 150.0)  # OpenCV turns counter-clockwise
        to_image[:, 2] = (210, 170)
        points = cv2.transform(chip_points[None], to_image)[0]
        image = np.zeros((400, 400), np.uint8)
        for x, y in points:
            cv2.circle(image, (round(x), round(y)), 3, 255, -1)
        *region, turn = faces.aligned_region(points, chip_points)
        assert turn == pytest.approx(angle, abs=0.01) and region[2] == pytest.approx(150, abs=0.01)
        crop = faces.crop_square(image, region, angle=turn)
        count, _, _, centres = cv2.connectedComponentsWithStats((crop > 100).astype(np.uint8))
        assert count == 6  # the background and the five marks
        wanted = chip_points * faces.FACE_SIZE
        distances = np.linalg.norm(centres[1:, None] - wanted[None], axis=2)  # mark x landmark
        assert distances.min(axis=0).max() < 1.0, (centres[1:], wanted)
        stray = points.copy()
        stray[3] += (40, 25)
        assert np.allclose(faces.aligned_region(stray, chip_points), (*region, turn), atol=0.5)


def test_landmarks_that_frame_no_chip_give_no_aligned_region():
    """Coinciding landmarks would make a region of side 0, landmarks on one line a chip turned upside down:
    neither is a region (the detector then frames the face from its box, see test_faces)."""
    chip_points = np.array([[0.35, 0.42], [0.65, 0.42], [0.5, 0.55], [0.38, 0.7], [0.62, 0.7]])
    face_points = chip_points * 150 + (140, 90)
    assert faces.aligned_region(face_points, chip_points)[2] == pytest.approx(150)
    assert faces.aligned_region(np.full((5, 2), 120.0), chip_points) is None  # coinciding
    assert faces.aligned_region(np.array([[100.0, 80.0]] * 4 + [[130.0, 140.0]]), chip_points) is None  # four coincide
    assert faces.aligned_region(np.array([[100.0 + 10 * i, 80.0] for i in range(5)]), chip_points) is None  # a line
    two_strays = face_points.copy()
    two_strays[3:] += (60, -45)  # both mouth corners far off: one stray is fine, two are not a face
    assert faces.aligned_region(two_strays, chip_points) is None
