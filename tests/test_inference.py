"""Inference as a user meets it: the scripts run as subprocesses on real images and real-face video."""
import json
import os
import re
import shutil

import cv2
import matplotlib.cbook
import numpy as np
import pytest

from agegender import BUNDLED_MODEL, BUNDLED_MODELS, ENGINES, REALTIME_ENGINE, store
from agegender.faces import HaarDetector, chip_box, crop_square, read_image
from agegender.predict import RUNNERS, SIX_VIEWS, Predictor
from conftest import UTKFACE, copy_utkface, run_script, utkface_names
from video_of_faces import make_face_video

pytestmark = pytest.mark.slow


def detectable_faces(count):
    """Real UTKFace chips on which the Haar cascade finds a face once the chip is inside a frame."""
    detector, found = HaarDetector(), []
    for name in utkface_names(400):
        chip = cv2.imread(os.path.join(UTKFACE, name))
        canvas = cv2.copyMakeBorder(chip, 100, 100, 100, 100, cv2.BORDER_CONSTANT, value=(120, 120, 120))
        if len(detector(canvas)) == 1:
            found.append(name)
        if len(found) == count:
            return found
    raise AssertionError("too few detectable faces")


@pytest.fixture(scope="module")
def model(joint_run):
    return str(joint_run[0] / "model")


def test_detect_with_no_argument_labels_the_sample_portrait_with_the_bundled_model(tmp_path):
    result = run_script("detect.py", "--json", "--out", tmp_path)
    report = json.loads(result.stdout)
    assert len(report) == 1 and report[0]["image"].endswith("grace_hopper.jpg")
    (face,) = report[0]["faces"]
    x, y, w, h = face["box"]
    assert 100 < w < 300 and abs(w - h) < 5
    # Grace Hopper, photographed in 1984 at 77: the bundled model must say so, with an age interval.
    assert face["labels"] == {"gender": "female", "age_group": "60+"}
    low, high = face["age_interval"]
    assert 60 <= low <= face["years"] <= high <= 100 and face["age_interval_coverage"] == 0.8
    for task, distribution in face["distributions"].items():
        assert abs(sum(distribution.values()) - 1) < 1e-3
        assert face["probabilities"][task] == max(distribution.values())
    annotated = cv2.imread(report[0]["annotated"])
    original = cv2.imread(report[0]["image"])
    assert annotated.shape == original.shape and np.abs(annotated.astype(int) - original).max() > 100


def test_an_exact_age_comes_with_its_interval_from_either_engine_and_a_model_without_the_head_gives_none(tmp_path):
    portrait = read_image(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    (face,) = Predictor(BUNDLED_MODEL, detector="haar")(portrait)
    low, high = face.age_interval
    assert low < face.years < high and face.caption().endswith(f", age {face.years:.0f} ({low}-{high})")
    assert face.to_json()["age_interval"] == [low, high] and face.to_json()["age_interval_coverage"] == 0.8
    (lite,) = Predictor(BUNDLED_MODEL, detector="haar", engine=REALTIME_ENGINE)(portrait)  # real time's engine
    assert lite.age_interval == face.age_interval and f", age {lite.years:.0f} ({low}-{high})" in lite.caption()
    # A sharper interval's temperature narrows the interval and leaves every answer as it was.
    sharper = shutil.copytree(BUNDLED_MODEL, tmp_path / "sharper")
    description = json.loads((sharper / "model.json").read_text())
    description["temperatures"]["age_interval"] /= 2
    (sharper / "model.json").write_text(json.dumps(description))
    (narrowed,) = Predictor(str(sharper), detector="haar")(portrait)
    assert (narrowed.years, narrowed.distributions) == (face.years, face.distributions)
    assert low < narrowed.age_interval[0] <= narrowed.age_interval[1] < high
    # The course's network has no exact-age head: no age in years, and no interval.
    (course,) = Predictor(os.path.join(BUNDLED_MODELS, "joint"), detector="haar")(portrait)
    assert course.labels and course.years is None and course.age_interval is None
    assert "age " not in course.caption() and not {"years", "age_interval"} & set(course.to_json())


def test_detect_without_model_on_a_folder_with_a_faceless_and_a_corrupt_image(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in detectable_faces(2):
        chip = cv2.imread(os.path.join(UTKFACE, name))
        cv2.imwrite(str(images / name.replace(".chip.jpg", ".png")),
                    cv2.copyMakeBorder(chip, 100, 100, 100, 100, cv2.BORDER_REPLICATE))
    cv2.imwrite(str(images / "plain.png"), np.full((300, 300, 3), 128, np.uint8))
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    result = run_script("detect.py", images, "--no-model", "--out", tmp_path / "out", check=False)
    assert result.returncode == 1
    assert "broken.jpg: not an image" in result.stderr and "Traceback" not in result.stderr
    assert "plain.png: 0 face(s)" in result.stdout
    assert result.stdout.count(": 1 face(s)") == 2 and "male" not in result.stdout
    assert len(os.listdir(tmp_path / "out")) == 3
    missing = run_script("detect.py", tmp_path / "nope.jpg", "--no-model", check=False)
    assert missing.returncode == 1 and "nope.jpg: no such file" in missing.stderr


def test_faces_are_cropped_the_way_the_training_chips_were(model):
    """A chip inside a photo, found by the detector, is cropped close to the chip itself."""
    correlations = []
    for name in detectable_faces(8):
        chip = cv2.imread(os.path.join(UTKFACE, name), cv2.IMREAD_GRAYSCALE)
        photo = cv2.copyMakeBorder(chip, 100, 100, 100, 100, cv2.BORDER_REPLICATE)
        (box,) = HaarDetector()(photo)
        crop = crop_square(photo, chip_box(box)).astype(float)
        washed = crop_square(chip, (0, 0, 200, 200)).astype(float)
        correlations.append(np.corrcoef(crop.ravel(), washed.ravel())[0, 1])
    assert np.median(correlations) > 0.8, correlations


def test_detect_with_six_views_gives_the_answers_averaged_over_six_views_of_each_face(tmp_path):
    names = detectable_faces(2)
    image = tmp_path / "two.png"
    chips = [cv2.imread(os.path.join(UTKFACE, name)) for name in names]
    cv2.imwrite(str(image), cv2.copyMakeBorder(np.hstack(chips), 100, 100, 100, 100, cv2.BORDER_REPLICATE))
    result = run_script("detect.py", image, "--six-views", "--json", "--out", tmp_path / "out")
    faces = json.loads(result.stdout)[0]["faces"]
    expected = [face.to_json() for face in Predictor(BUNDLED_MODEL, **SIX_VIEWS)(read_image(str(image)))]
    one_view = [face.to_json() for face in Predictor(BUNDLED_MODEL)(read_image(str(image)))]
    assert len(faces) == 2 and faces == expected
    assert [face["box"] for face in faces] == [face["box"] for face in one_view]
    assert [face["distributions"] for face in faces] != [face["distributions"] for face in one_view]


def test_all_faces_of_an_image_are_classified_in_one_batch_with_the_same_answers(model):
    predictor = Predictor(model)
    names = detectable_faces(3)
    chips = [cv2.imread(os.path.join(UTKFACE, name)) for name in names]
    photo = np.full((400, 900, 3), 120, np.uint8)
    for i, chip in enumerate(chips):
        photo[100:300, 50 + 300 * i:250 + 300 * i] = chip
    results = predictor(photo)
    assert len(results) == 3
    for result in results:
        (alone,) = predictor(photo, boxes=[result.box], angles=[result.angle])
        assert alone.labels == result.labels
        assert all(abs(alone.probabilities[t] - result.probabilities[t]) < 1e-5 for t in result.labels)


def test_evaluate_a_store_a_raw_folder_and_an_image(model, utk_store, tmp_path):
    result = run_script("joint/test_model.py", "--model", model, "--data", utk_store,
                        "--json", tmp_path / "store.json", "--out", tmp_path / "png")
    figures = json.loads((tmp_path / "store.json").read_text())
    _, test_labels = store.load_split(utk_store, "test")
    for task in ("gender", "age_group"):
        assert figures[task]["faces"] == len(test_labels["age"])
        assert np.sum(figures[task]["confusion_matrix"]) == len(test_labels["age"])
        assert set(figures[task]["by"]) == {"gender", "age_group", "race", "age, 18", "race, 18 and over"}
        assert sum(row["faces"] for row in figures[task]["by"]["race"].values()) == len(test_labels["age"])
        assert (sum(row["faces"] for row in figures[task]["by"]["race, 18 and over"].values())
                == np.sum((test_labels["age"] >= 18) & (test_labels["race"] >= 0)))
        assert (tmp_path / "png" / f"confusion_{task}.png").is_file()
    assert figures["age_group"]["one_off_accuracy"] >= figures["age_group"]["accuracy"]
    assert "by race: White" in result.stdout
    assert "exact_age" not in figures and "interval" not in result.stdout  # no exact-age head, no interval
    # The figures match the training run's own test figures: same faces, same model.
    with open(os.path.join(os.path.dirname(model), "metrics.json")) as file:
        trained = json.load(file)["test"]
    assert abs(figures["gender"]["accuracy"] - trained["gender"]["accuracy"]) < 1e-9

    raw = tmp_path / "raw"
    copy_utkface(raw, 150)
    run_script("joint/test_model.py", "--model", model, "--data", raw, "--json", tmp_path / "raw.json",
               "--out", tmp_path / "png")
    raw_figures = json.loads((tmp_path / "raw.json").read_text())
    assert raw_figures["gender"]["faces"] == sum(int(n.split("_")[0]) <= 100 for n in os.listdir(raw))

    image = tmp_path / "group.png"
    chips = [cv2.imread(os.path.join(UTKFACE, name)) for name in detectable_faces(2)]
    cv2.imwrite(str(image), cv2.copyMakeBorder(np.hstack(chips), 100, 100, 100, 100, cv2.BORDER_REPLICATE))
    single = run_script("joint/test_model.py", "--model", model, "--image", image, "--out", tmp_path / "png")
    assert "2 face(s)" in single.stdout and (tmp_path / "png" / "group_faces.jpg").is_file()
    bad = run_script("joint/test_model.py", "--model", tmp_path / "no-model", "--data", utk_store, check=False)
    assert bad.returncode != 0 and "not a saved model" in bad.stderr and "Traceback" not in bad.stderr


def test_calibration_fits_the_temperatures_and_a_calibrated_model_stays_as_it_is(model, utk_store, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    trained = json.loads((copy / "model.json").read_text())
    calibrate = ("joint/test_model.py", "--model", copy, "--data", utk_store, "--calibrate", "--out", tmp_path / "png")
    result = run_script(*calibrate, "--flip-average", "--zooms", "1", "1.1")
    assert "temperatures fitted on the valid split: gender" in result.stdout
    flipped = json.loads((copy / "model.json").read_text())
    assert flipped["flip_average"] and not trained["flip_average"]
    assert flipped["zooms"] == [1.0, 1.1] and trained["zooms"] == [1.0]
    assert flipped["temperatures"]["gender"] != trained["temperatures"]["gender"]
    views = ("flip_average", "zooms", "temperatures")
    assert {key: value for key, value in flipped.items() if key not in views} == \
        {key: value for key, value in trained.items() if key not in views}
    run_script(*calibrate)
    plain = (copy / "model.json").read_bytes()
    assert not json.loads(plain)["flip_average"] and json.loads(plain)["zooms"] == [1.0]
    # Fitted again on the same faces, the temperatures are where they were: model.json is not rewritten.
    run_script(*calibrate)
    assert (copy / "model.json").read_bytes() == plain


def test_calibration_says_when_a_fit_stops_at_an_end_of_its_range(utk_store, tmp_path):
    """A gender temperature far too high (500): the factor the fit needs (about 0.0015) lies beyond its
    range, so the fit stops at its lower end (0.05) and says so; the age groups' fit does not."""
    copy = shutil.copytree(BUNDLED_MODEL, tmp_path / "model")
    description = json.loads((copy / "model.json").read_text())
    description["temperatures"]["gender"] = 500.0
    (copy / "model.json").write_text(json.dumps(description))
    result = run_script("joint/test_model.py", "--model", copy, "--data", utk_store, "--calibrate",
                        "--out", tmp_path / "png")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [f"warning: {copy}: the gender temperature's fit stopped at an end of its search range (a "
                        "factor of 0.05 to 20.1 on the temperature before), so it is not the best fit: calibrate "
                        "again if the old one was far off; on faces the head gets all right, only a larger store "
                        "helps"], result.stderr
    fitted = json.loads((copy / "model.json").read_text())["temperatures"]
    assert fitted["gender"] == pytest.approx(500.0 * np.exp(-3), rel=1e-3)


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("video") / "faces.mp4")
    names = detectable_faces(3)
    return make_face_video(path, [os.path.join(UTKFACE, name) for name in names], frames=90)


def test_real_time_default_engine_tflite_gives_the_tensorflow_answers_on_real_faces(model, utk_store):
    assert tuple(RUNNERS) == ENGINES  # the engines the commands offer before importing TensorFlow
    faces, _ = store.load_split(utk_store, "test", limit=40)
    expected = Predictor(model).classify(faces)
    lite = Predictor(model, engine=REALTIME_ENGINE)
    assert lite.probabilities.__qualname__.startswith("tflite_runner")  # really the TFLite interpreter
    for rows in (slice(0, 40), slice(0, 1), slice(3, 5)):  # TFLite resizes its input for each batch size
        outputs = lite.classify(faces[rows])
        assert set(outputs) == set(expected)
        for task, values in outputs.items():
            np.testing.assert_allclose(values, expected[task][rows], atol=1e-5)
    assert lite.classify(faces[:0])["gender"].shape == (0, 2)


@pytest.mark.whole_machine
def test_benchmark_holds_every_stage_to_the_measured_peak(utk_store):
    """bench/benchmark.py's inference stage, briefly: each engine's figures, int8's agreement with float32
    on the test split, and every fraction of the FP32 peak (TensorFlow's own matmul) at most 1: one above
    it means the peak or a FLOP count is wrong, and the benchmark then exits with an error."""
    result = run_script("bench/benchmark.py", "--only", "inference", "--repeats", "1", "--data", utk_store)
    header, table = result.stdout.split("| stage | measured | against |")
    with open("/proc/cpuinfo") as file:
        flags = next(line for line in file if line.startswith("flags")).split(":", 1)[1].split()
    extensions = re.search(r"\(([^()]*)\), \d+ cores", header).group(1).split(", ")
    for flag, name in (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_vnni", "AVX-512 VNNI")):
        assert (name in extensions) == (flag in flags), (name, header)
    assert "4096x4096 float32 matmul of TensorFlow" in header
    for engine in (*ENGINES, "tflite int8"):
        assert f"| inference, one face ({engine}) |" in table and f"| inference, batch 64 ({engine}) |" in table
    fractions = [float(value) for value in re.findall(r"([0-9.]+) of peak", table)]
    assert len(fractions) == len(ENGINES) and all(0 < fraction <= 1 for fraction in fractions), fractions
    agreement = re.search(r"gender ([0-9.]+)%, age group ([0-9.]+)% of [0-9,]+ test faces", table)
    assert agreement and all(95 <= float(value) <= 100 for value in agreement.groups())  # the export's own bar


def test_real_time_on_a_video_of_real_faces_headless(model, face_video, tmp_path):
    out = tmp_path / "annotated.mp4"
    environment = {"DISPLAY": "", "WAYLAND_DISPLAY": ""}  # as on a server: no window may be opened
    result = run_script("joint/real_time.py", "--source", face_video, "--model", model, "--out", out,
                        "--max-frames", "60", "--json", env=environment)
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert "no display available" in result.stderr
    assert summary["frames"] == 60 and 50 <= summary["faces"] <= 60
    assert summary["mean_fps"] > 0 and summary["classify_ms_per_frame"] > 0
    written = cv2.VideoCapture(str(out))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 60
    ok, frame = written.read()
    source = cv2.VideoCapture(face_video)
    _, original = source.read()
    assert ok and frame.shape == (480, 640, 3) and np.abs(frame.astype(int) - original).mean() > 1
    whole = run_script("joint/real_time.py", "--source", face_video, "--model", model, "--no-display",
                       "--engine", "tensorflow")
    assert whole.stdout.startswith("90 frames")


def test_real_time_errors_are_one_line(model, tmp_path):
    for source, message in ((tmp_path / "missing.mp4", "no such video file"), ("7", "camera 7: cannot open")):
        result = run_script("joint/real_time.py", "--source", source, "--model", model, "--no-display",
                            check=False)
        assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    result = run_script("joint/real_time.py", "--source", fake, "--model", model, "--no-display", check=False)
    assert result.returncode != 0 and "fake.mp4" in result.stderr and "Traceback" not in result.stderr


def test_bundled_model_is_small_and_complete():
    sizes = sum(os.path.getsize(os.path.join(BUNDLED_MODEL, name)) for name in os.listdir(BUNDLED_MODEL))
    assert sizes < 10 * 1024 * 1024
    metrics = json.loads(open(os.path.join(BUNDLED_MODEL, "metrics.json")).read())
    assert metrics["test"]["gender"]["accuracy"] > 0.85
    assert "joint/jointly.py" in open(os.path.join(BUNDLED_MODEL, "README.md")).read()


def test_mtcnn_detector_works_when_installed_and_says_how_to_get_it_otherwise(tmp_path):
    result = run_script("detect.py", "--detector", "mtcnn", "--no-model", "--json", "--out", tmp_path, check=False)
    try:
        import mtcnn  # noqa: F401
    except ImportError:
        assert result.returncode != 0 and "pip install mtcnn" in result.stderr
        assert "Traceback" not in result.stderr
    else:
        assert result.returncode == 0 and len(json.loads(result.stdout)[0]["faces"]) == 1


@pytest.mark.slow
def test_test_time_views_benchmark_gives_the_models_figures_with_each_set_of_views(utk_store):
    """bench/test_time_views.py: the bundled model's figures on each face, with its mirror image, and over
    six views (zoomed in and out by 10%, each mirrored), as the model gives them with those views."""
    result = run_script("bench/test_time_views.py", BUNDLED_MODEL, "--data", utk_store)
    images, labels = store.load_split(utk_store, "valid")
    rows = result.stdout.split("(network passes a face: ")[1:]
    assert [row[0] for row in rows] == ["1", "2", "6"]
    for row, (mirror, zooms) in zip(rows, ((False, [1.0]), (True, [1.0]), (True, [1.0, 1.1, 0.9]))):
        answers = Predictor(BUNDLED_MODEL, flip_average=mirror, zooms=zooms).classify(images)
        for task in ("gender", "age_group"):
            assert f"{task}: accuracy {np.mean(answers[task].argmax(1) == labels[task]):.4f}" in row
