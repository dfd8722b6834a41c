"""Colour faces beside gray ones: a --color store, its batches, colour models, and the whole way through."""
import csv
import json
import os
import re
import shutil

import cv2
import matplotlib.cbook
import numpy as np
import pytest
import tensorflow as tf

from agegender import BUNDLED_MODEL, evaluate, export, faces, pipeline, store
from agegender.model import ModelError, build_model, check_store_channels, forward_flops, load_model, save_model
from agegender.predict import Predictor
from conftest import QUICK_TRAINING, ROOT, UTKFACE, run_script

CLASS_COUNTS = {"gender": 2, "age_group": 4, "exact_age": 101}
AGE_EDGES = (30, 46, 60)


def rgb_chip(name, folder=UTKFACE):
    """A UTKFace chip as RGB, resized as the store keeps it."""
    image = cv2.cvtColor(cv2.imread(os.path.join(folder, name), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (128, 128), interpolation=cv2.INTER_AREA)


def index_rows(folder, split):
    with open(os.path.join(folder, split, "index.csv"), newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_crops_of_a_colour_image_are_the_crops_of_each_of_its_channels():
    image = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    for region, angle in (((50.4, 20.6, 256, 256), 0.0), ((-64, -20, 200, 200), 0.0),  # inside, past the border
                          ((300, 150, 180, 180), 0.0), ((40, 30, 200, 200), 12.0)):   # past the corner, turned
        crop = faces.crop_square(image, region, angle=angle)
        assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
        for channel in range(3):
            assert np.array_equal(crop[..., channel],
                                  faces.crop_square(np.ascontiguousarray(image[..., channel]), region, angle=angle))


def test_channels_helpers_convert_and_shape_faces_for_either_kind_of_model():
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 2] = 255  # pure red in BGR
    assert faces.to_channels(bgr, 1).shape == (4, 4)
    assert faces.to_channels(bgr, 3)[0, 0].tolist() == [255, 0, 0]  # R, G, B
    assert faces.face_shape(1) == (128, 128) and faces.face_shape(3) == (128, 128, 3)
    assert store.row_bytes("images", 1) == 128 * 128 and store.row_bytes("images", 3) == 3 * 128 * 128
    assert store.row_bytes("labels", 3) == 2 * len(store.LABEL_COLUMNS)


def test_augmentation_moves_every_channel_of_a_colour_face_alike():
    rgb = tf.constant(np.random.default_rng(1).integers(0, 256, (8, 128, 128, 3), dtype=np.uint8))
    for rotate_and_zoom in (False, True):
        augmented = pipeline.augment_batch(rgb, tf.constant([3, 4]), rotate_and_zoom).numpy()
        assert augmented.shape == (8, 128, 128, 3) and augmented.dtype == np.uint8
        assert not np.array_equal(augmented, rgb.numpy())
        for channel in range(3):  # the same flip, shift, turn and zoom as the channel alone as a gray face
            alone = pipeline.augment_batch(rgb[..., channel:channel + 1], tf.constant([3, 4]), rotate_and_zoom)
            assert np.array_equal(augmented[..., channel:channel + 1], alone.numpy())


def test_colour_store_holds_the_gray_stores_faces_in_rgb(small_stores):
    gray_manifest, manifest = store.read_manifest(small_stores / "gray"), store.read_manifest(small_stores / "rgb")
    assert store.face_channels(gray_manifest) == 1 and store.face_channels(manifest) == 3
    assert gray_manifest["splits"] == manifest["splits"]
    for split in store.SPLITS:
        rows = index_rows(small_stores / "rgb", split)
        assert rows == index_rows(small_stores / "gray", split)  # the same faces, splits and order
        images, _ = store.load_split(small_stores / "rgb", split)
        assert images.shape == (len(rows), 128, 128, 3) and images.dtype == np.uint8
        for row, image in zip(rows, images):
            assert np.array_equal(image, rgb_chip(row["key"].split("/", 1)[1]))
    train, _ = store.load_split(small_stores / "rgb", "train")
    assert np.abs(train[..., 0].astype(int) - train[..., 2]).mean() > 5  # red and blue differ: colour kept
    shard = small_stores / "rgb" / "train" / manifest["splits"]["train"]["shards"][0]["images"]
    with pytest.raises(store.StoreError, match="bytes of images"):  # a colour shard read as a gray one
        store.check_shard(shard, manifest["splits"]["train"]["faces"], "images", 1)


def test_pipeline_streams_colour_batches_in_the_stores_order_and_augments_them(small_stores):
    images, labels = store.load_split(small_stores / "rgb", "train")
    batches = list(pipeline.split_dataset(small_stores / "rgb", "train", 8))
    assert all(batch.shape[1:] == (128, 128, 3) and batch.dtype == tf.uint8 for batch, _ in batches)
    assert np.array_equal(np.concatenate([batch.numpy() for batch, _ in batches]), images)
    assert np.array_equal(np.concatenate([batch_labels["age"].numpy() for _, batch_labels in batches]),
                          labels["age"])
    for rotate_and_zoom in (False, True):
        batch, _ = next(iter(pipeline.split_dataset(small_stores / "rgb", "train", 8, training=True, augment=True,
                                                    rotate_and_zoom=rotate_and_zoom)))
        assert batch.shape == (8, 128, 128, 3) and batch.dtype == tf.uint8


@pytest.mark.slow  # builds, traces and saves four networks: seconds
def test_colour_model_takes_rgb_faces_and_survives_saving(tmp_path):
    # Faces redder than they are blue.
    rgb = (np.random.default_rng(2).integers(0, 100, (4, 128, 128, 3)) + [150, 50, 0]).astype(np.uint8)
    metadata = {"classes": {"gender": ["male", "female"], "age_group": ["0-29", "30-45", "46-59", "60+"],
                            "exact_age": [str(years) for years in range(101)]}, "age_edges": list(AGE_EDGES)}
    for architecture in ("original", "improved"):
        model = build_model(architecture, CLASS_COUNTS, channels=3, input_size=96)
        gray = build_model(architecture, CLASS_COUNTS, input_size=96)
        assert model.input_spec().shape.as_list() == [None, 128, 128, 3]
        assert gray.probabilities.get_concrete_function().inputs[0].shape.as_list() == [None, 128, 128]
        with pytest.raises(TypeError):  # a gray batch is not a colour model's input
            model.probabilities(rgb[..., 0])
        # Standardised over all channels together: zero mean and unit variance over the face, red
        # staying above blue.
        standardised = model.preprocess(rgb).numpy()
        assert np.allclose(standardised.mean(axis=(1, 2, 3)), 0, atol=1e-4)
        assert np.allclose(standardised.std(axis=(1, 2, 3)), 1, atol=1e-3)
        assert np.all(standardised[..., 0].mean(axis=(1, 2)) > 0.5) and np.all(standardised[..., 2].mean(axis=(1, 2)) < -0.5)
        assert forward_flops(model) > forward_flops(gray)  # the first conv sees three channels
        expected = model.probabilities(rgb)
        save_model(model, tmp_path / architecture, metadata)
        reloaded, description = load_model(tmp_path / architecture)
        assert description["channels"] == 3 and reloaded.channels == 3
        for task, values in reloaded.probabilities(rgb).items():
            np.testing.assert_allclose(values.numpy(), expected[task].numpy(), atol=1e-6)


def test_bundled_models_are_gray_and_refuse_a_colour_store_in_one_line(small_stores, tmp_path):
    model, description = load_model(BUNDLED_MODEL)
    assert description["channels"] == 1 and model.channels == 1
    older = shutil.copytree(BUNDLED_MODEL, tmp_path / "older")  # a model.json written before colour: gray
    written = json.loads((older / "model.json").read_text())
    del written["channels"]
    (older / "model.json").write_text(json.dumps(written))
    assert load_model(older)[0].channels == 1
    check_store_channels(model.channels, small_stores / "gray", BUNDLED_MODEL)
    with pytest.raises(ModelError, match="the store holds RGB faces but the model .* takes grayscale ones") as error:
        check_store_channels(model.channels, small_stores / "rgb", BUNDLED_MODEL)
    assert "\n" not in str(error.value)


def majority_share(values):
    return np.bincount(values).max() / len(values)


@pytest.mark.slow
def test_the_improved_network_on_colour_faces_all_the_way_wash_train_evaluate_detect_export(utk_store, tmp_path):
    """The shared wash's 2,400 real faces washed again in colour, then the bundled recipe's network
    (improved, exact ages, 96 px) trained on them for 3 epochs: it learns, its saved model gives the
    run's figures (also from the raw photos), labels a photo in colour and exports to TFLite."""
    raw = utk_store.parent / "raw"
    data = tmp_path / "rgb"
    washed = run_script("others/wash_data.py", "--dataset", "utkface", "--src", raw, "--out", data, "--color",
                        "--quiet")
    assert "kept" in washed.stdout and store.face_channels(store.read_manifest(data)) == 3
    test_rows = index_rows(data, "test")
    test_faces, test_labels = store.load_split(data, "test")
    for row, face in zip(test_rows, test_faces):
        assert np.array_equal(face, rgb_chip(row["key"].split("/", 1)[1], raw))

    run = tmp_path / "run"
    trained = run_script("joint/jointly.py", "--data", data, "--run", run, "--epochs", "3", "--arch", "improved",
                         "--exact-age", "--input-size", "96", *QUICK_TRAINING)  # at 96 px, as bundled
    metrics = json.loads((run / "metrics.json").read_text())
    _, train_labels = store.load_split(data, "train")
    # Against always answering the training faces' median age, the best constant for MAE.
    constant_mae = np.mean(np.abs(test_labels["age"] - np.median(train_labels["age"])))
    exact = metrics["test"]["exact_age"]
    assert exact["mae"] < 0.8 * constant_mae and exact["faces"] == len(test_labels["age"])
    assert 0 < exact["cs5"] < 1 and np.array(exact["age_groups"]["confusion_matrix"]).sum() == exact["faces"]
    assert metrics["test"]["gender"]["accuracy"] > majority_share(test_labels["gender"]) + 0.05
    assert "exact_age: MAE" in trained.stdout and (run / "confusion_exact_age.png").is_file()

    model, description = load_model(run / "model")
    assert description["architecture"] == "improved" and description["tasks"] == ["gender", "age_group", "exact_age"]
    assert model.channels == description["channels"] == 3 and description["preprocessing"].startswith("RGB")
    batch_norm_means = [v for v in model.variables if v.name.endswith("/mean:0")]
    assert batch_norm_means and all(float(tf.reduce_max(tf.abs(v))) > 0 for v in batch_norm_means)  # saved too
    # The run's calibration fitted the age interval's temperature on the valid split: the smallest whose
    # intervals hold 80% of its ages.
    temperature = description["temperatures"]["age_interval"]
    valid_faces, valid_labels = store.load_split(data, "valid")
    answers = Predictor(str(run / "model")).classify(valid_faces)["exact_age"]
    assert evaluate.interval_coverage(valid_labels["age"], *evaluate.age_interval(answers, temperature)) >= 0.8
    assert "age interval" not in trained.stderr  # no warning: the fit found it

    # The saved model gives the run's figures on the store; test_model.py gives the coverage on the test
    # split the run reported.
    evaluation = run_script("joint/test_model.py", "--model", run / "model", "--data", data,
                            "--out", tmp_path / "evaluation")
    evaluated_mae = float(re.search(r"exact_age: MAE ([0-9.]+) years", evaluation.stdout).group(1))
    assert abs(evaluated_mae - exact["mae"]) < 0.011
    coverage = float(re.search(r", 80% age interval holds ([0-9.]+)% of true ages", evaluation.stdout).group(1))
    assert abs(coverage / 100 - exact["age_interval"]["coverage"]) < 0.0006 and 0 < coverage < 100
    # A raw UTKFace folder of the test faces is read in colour for this model: the store's figures.
    raw_test = tmp_path / "raw_test"
    raw_test.mkdir()
    for row in test_rows:
        name = row["key"].split("/", 1)[1]
        os.symlink(raw / name, raw_test / name)
    run_script("joint/test_model.py", "--model", run / "model", "--data", raw_test, "--out", tmp_path / "raw-figures",
               "--json", tmp_path / "evaluation.json")
    figures = json.loads((tmp_path / "evaluation.json").read_text())
    assert figures["gender"]["faces"] == len(test_rows)
    # (One face of slack: a near-tie may fall either way between batchings.)
    assert abs(figures["gender"]["accuracy"] - metrics["test"]["gender"]["accuracy"]) <= 1 / len(test_rows) + 1e-9
    assert abs(figures["exact_age"]["mae"] - exact["mae"]) < 0.011

    # A real photo: the predictor crops the face in colour, as the model takes it.
    photo = cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    predictor = Predictor(str(run / "model"), detector="haar")
    boxes, angles = predictor.detector.detect(photo)
    (result,) = predictor(photo, boxes, angles)
    crop = faces.crop_square(faces.to_rgb(photo), predictor.detector.chip_box(boxes[0]))
    assert result.distributions["gender"]["female"] == pytest.approx(
        float(predictor.classify(crop[None])["gender"][0, 1]), abs=1e-4)
    assert set(result.labels) == {"gender", "age_group"} and 0 <= result.years <= 100

    out = tmp_path / "export"
    exported = run_script("joint/export.py", "--model", run / "model", "--data", data, "--out", out, "--no-int8")
    assert "saved_model" in exported.stdout and (out / export.TFLITE_FLOAT).is_file()
    assert json.loads((out / "export.json").read_text())["input"]["shape"] == [None, 128, 128, 3]
    lite = export.tflite_runner(str(out / export.TFLITE_FLOAT))(test_faces)
    for task, values in model.probabilities(test_faces).items():
        np.testing.assert_allclose(lite[task], values.numpy(), atol=1e-4)

    # The gray bundled model and a colour store: refused in one line, nothing written.
    refused = run_script("joint/export.py", "--data", data, "--out", tmp_path / "refused", "--no-int8", check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert re.fullmatch(r"error: .*the store holds RGB faces but the model .* takes grayscale ones.*\n",
                        refused.stderr)
    assert not (tmp_path / "refused").exists()


@pytest.mark.slow
def test_comparing_a_gray_and_a_colour_model_scores_each_on_the_store_of_its_channels(small_stores, tmp_path,
                                                                                         monkeypatch):
    """bench/compare_age_and_gender.py (benchmark.py's accuracy stage) gives each model the --data store of
    its channels, the same faces in both; a model that no store suits, or stores of other faces, are
    refused in one line before the age-and-gender package runs."""
    monkeypatch.syspath_prepend(os.path.join(ROOT, "bench"))
    from compare_age_and_gender import store_of_each_model
    metadata = {"classes": {"gender": ["male", "female"], "age_group": ["0-29", "30-45", "46-59", "60+"]},
                "age_edges": list(AGE_EDGES)}
    colour_model = str(tmp_path / "colour-model")
    save_model(build_model("original", {"gender": 2, "age_group": 4}, channels=3), colour_model, metadata)
    gray, rgb = str(small_stores / "gray"), str(small_stores / "rgb")
    for stores in ([gray, rgb], [rgb, gray]):
        assert store_of_each_model([BUNDLED_MODEL, colour_model], stores) == {BUNDLED_MODEL: gray, colour_model: rgb}

    def compare(*stores):
        result = run_script("bench/compare_age_and_gender.py", "--model", BUNDLED_MODEL, colour_model,
                            "--data", *stores, check=False)
        assert result.returncode == 1 and "installing" not in result.stderr, result.stderr
        (line,) = result.stderr.splitlines()
        return line

    assert compare(gray) == (f"error: {gray}: the store holds grayscale faces but the model {colour_model} takes "
                             "RGB ones; use a store washed with --color, or a model trained on this one")
    other = tmp_path / "other-rgb"
    shutil.copytree(rgb, other)
    index = (other / "test" / "index.csv").read_text(encoding="utf-8").splitlines()
    index[1] = index[1].replace("utkface/", "utkface/another-", 1)  # its first test face is another one
    (other / "test" / "index.csv").write_text("\n".join(index) + "\n", encoding="utf-8")
    assert compare(gray, other) == (f"error: {other}: its test split holds other faces than {gray}'s; wash both "
                                    "from the same source with the same options, --color aside")
