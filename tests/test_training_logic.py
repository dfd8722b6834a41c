"""Training's pure parts on small tensors: soft age targets, read-outs, augmentation, task balance, LRN,
a teacher's share of the targets, one gradient step; the views inference averages."""
import json
import os
import sys
from dataclasses import fields

import cv2
import numpy as np
import pytest
import tensorflow as tf

from agegender import BUNDLED_MODEL, BUNDLED_MODELS, losses, store, train_cli, train_options
from agegender.losses import EXACT_AGE_SIGMA, TaskBalance, predicted_values, soft_age_labels
from agegender.model import ARCHITECTURES, local_response_normalization
from agegender.predict import ONE_VIEW, Predictor
from agegender.pipeline import EDGE_FEATHER, augment_batch, edge_backgrounds_batch, split_dataset
from agegender.train import Trainer
from agegender.train_options import TrainConfig
from conftest import ROOT


def test_the_training_options_offer_every_network_the_model_module_builds():
    assert train_options.ARCHITECTURES == tuple(ARCHITECTURES)  # --arch is declared without TensorFlow


@pytest.mark.parametrize("recipe, given", [("improved", ["--seed", "1"]), ("joint", [])])
def test_a_recipe_file_gives_its_bundled_model_the_options_it_was_trained_with(recipe, given, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["joint/jointly.py", f"@{ROOT}/joint/recipes/{recipe}.txt", "--data", "d",
                                      "--run", "r", *given])
    _, config = train_cli.parse_arguments(train_cli.JOINT)
    with open(os.path.join(BUNDLED_MODELS, recipe, "model.json"), encoding="utf-8") as file:
        trained = json.load(file)["train_config"]
    shared = [field.name for field in fields(TrainConfig) if field.name in trained]
    assert len(shared) > 15 and config.schedule == "cosine"
    for name in shared:
        assert getattr(config, name) == (tuple(trained[name]) if name == "tasks" else trained[name]), name


def test_the_rules_between_options_hold_for_the_library_as_for_the_command_line():
    assert TrainConfig().learning_rate == 0.001 and TrainConfig(optimizer="sgd").learning_rate == 0.01
    assert TrainConfig(optimizer="sgd", learning_rate=0.1).learning_rate == 0.1
    assert TrainConfig().teacher_share is None and TrainConfig(teacher="model").teacher_share == 0.5
    for options, problem in (({"teacher_share": 0.3}, "no teacher"), ({"expected_age_loss": 0.25}, "no exact-age head"),
                             ({"optimizer": "rmsprop"}, "unknown optimizer"), ({"schedule": "step"}, "unknown schedule")):
        with pytest.raises(train_options.TrainError, match=problem):
            TrainConfig(**options)


def test_views_average_the_logits_of_the_faces_zoomed_and_mirrored_as_opencv_makes_them(small_stores):
    """Inference with views (zooms 1, 1.1, 0.9, each mirrored) gives the softmax of the mean of the logits
    of the six views made with OpenCV: the face's centre 1/zoom, or the face inside a reflected border,
    resized to the network's input, mirrored, standardised; with ONE_VIEW (real time), the first view's."""
    faces, _ = store.load_split(small_stores / "gray", "train", limit=16)
    predictor = Predictor(BUNDLED_MODEL, flip_average=True, zooms=[1.0, 1.1, 0.9])
    model, side = predictor.model, predictor.model.input_size

    def network_input(face, zoom, mirror):
        crop = round(128 / zoom)
        if crop < 128:
            start = (128 - crop) // 2
            face = face[start:start + crop, start:start + crop]
        else:
            pad = (crop - 128) // 2
            face = cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
        view = cv2.resize(face.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
        view = view[:, ::-1] if mirror else view
        return (view - view.mean()) / max(view.std(), 1 / side)

    views = [np.stack([network_input(face, zoom, mirror) for face in faces])[..., None]
             for zoom in (1.0, 1.1, 0.9) for mirror in (False, True)]
    logits = [model.logits(tf.constant(view)) for view in views]
    answers = predictor.classify(faces)
    assert model.zooms == (1.0, 1.1, 0.9) and len(views) == 6
    for task, values in answers.items():
        mean = np.mean([view_logits[task].numpy() for view_logits in logits], axis=0)
        expected = tf.nn.softmax(mean / model.temperatures[task]).numpy()
        np.testing.assert_allclose(values, expected, atol=2e-4)
        # Not the answer of one view alone: the views differ.
        assert np.abs(values - tf.nn.softmax(logits[0][task] / model.temperatures[task]).numpy()).max() > 1e-3
    # Real time's one view of the same model: the face as it is, once.
    for task, values in Predictor(BUNDLED_MODEL, **ONE_VIEW).classify(faces).items():
        np.testing.assert_allclose(values, tf.nn.softmax(logits[0][task] / model.temperatures[task]).numpy(), atol=2e-4)


def test_soft_age_labels_are_a_narrow_gaussian_around_each_true_age():
    targets = soft_age_labels(tf.constant([0, 37, 100])).numpy()
    assert targets.shape == (3, 101)
    np.testing.assert_allclose(targets.sum(1), 1, atol=1e-6)
    assert targets.argmax(1).tolist() == [0, 37, 100]
    middle = targets[1]
    np.testing.assert_allclose(middle[37 - 5:37], middle[37 + 5:37:-1], rtol=1e-5)  # symmetric
    np.testing.assert_allclose(middle[37 + int(EXACT_AGE_SIGMA)] / middle[37], np.exp(-0.5), rtol=1e-5)
    assert middle[37 + 10] < 1e-5  # narrow: ten years off is nothing
    assert targets[0, 0] > middle[37]  # at the edge, the mass that would fall below 0 stays on the ages left


def test_predictions_are_the_argmax_or_for_exact_age_the_expected_years():
    logits = np.full((2, 101), -20.0, np.float32)
    logits[0, 37] = 20.0
    logits[1, [30, 40]] = 20.0  # two equally likely ages: their mean
    np.testing.assert_allclose(predicted_values("exact_age", tf.constant(logits)).numpy(), [37, 35], atol=1e-3)
    assert predicted_values("age_group", tf.constant([[0.1, 2.0, 0.3], [5.0, 0.0, 1.0]])).numpy().tolist() == [1, 0]


def test_augmentation_flips_and_shifts_each_face_by_at_most_8_pixels_reproducibly():
    faces = tf.constant(np.random.default_rng(0).integers(0, 256, (16, 128, 128, 1), dtype=np.uint8))
    augmented = augment_batch(faces, tf.constant([3, 4])).numpy()
    assert augmented.shape == faces.shape and augmented.dtype == np.uint8
    assert np.array_equal(augmented, augment_batch(faces, tf.constant([3, 4])).numpy())
    assert not np.array_equal(augmented, augment_batch(faces, tf.constant([5, 6])).numpy())
    padded = np.pad(faces.numpy(), [(0, 0), (8, 8), (8, 8), (0, 0)], mode="symmetric")
    flips = []
    for face, result in zip(padded, augmented):
        candidates = [(flip, dy, dx) for flip in (False, True) for dy in range(-8, 9) for dx in range(-8, 9)
                      if np.array_equal(result, (face[:, ::-1] if flip else face)[8 + dy:136 + dy, 8 + dx:136 + dx])]
        assert len(candidates) == 1  # each face is one flip-and-shift of itself, nothing else
        flips.append(candidates[0][0])
    assert 0 < sum(flips) < len(flips)  # some flipped, some not


def test_balance_settles_where_each_task_is_weighted_by_its_inverse_loss():
    balance = TaskBalance(["gender", "age_group"])
    optimizer = tf.keras.optimizers.SGD(0.1)
    losses = {"gender": tf.constant(0.5), "age_group": tf.constant(2.0)}

    @tf.function  # 300 eager steps took 5-10 s
    def step():
        with tf.GradientTape() as tape:
            total = balance(losses)
        optimizer.apply_gradients(zip(tape.gradient(total, balance.trainable_variables),
                                      balance.trainable_variables))

    for _ in range(300):
        step()
    values = balance.values()
    assert abs(values["gender"] - np.log(0.5)) < 1e-3 and abs(values["age_group"] - np.log(2.0)) < 1e-3


def test_fast_local_response_normalization_matches_tensorflows_values_and_gradients():
    x = tf.random.stateless_normal([4, 16, 16, 32], seed=[1, 2]) * 30  # large enough for the sums to matter
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = local_response_normalization(x)
        theirs = tf.nn.local_response_normalization(x, depth_radius=2, bias=1.0, alpha=1e-4, beta=0.75)
        ours_sum, theirs_sum = tf.reduce_sum(ours * x), tf.reduce_sum(theirs * x)
    assert float(tf.reduce_max(tf.abs(x - theirs))) > 1.0  # the normalisation really changes x
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tape.gradient(ours_sum, x).numpy(), tape.gradient(theirs_sum, x).numpy(),
                               rtol=1e-4, atol=1e-4)


def test_edge_backgrounds_feather_half_the_faces_into_another_face_upside_down(small_stores):
    faces, _ = next(iter(split_dataset(small_stores / "gray", "train", 64)))
    edged = edge_backgrounds_batch(faces, tf.constant([3, 4])).numpy()
    assert edged.shape == faces.shape and edged.dtype == np.uint8
    assert np.array_equal(edged, edge_backgrounds_batch(faces, tf.constant([3, 4])).numpy())
    faces = faces.numpy()
    changed = np.any(edged != faces, axis=(1, 2, 3))
    assert 0.3 < changed.mean() < 0.7  # about half the faces
    side = faces.shape[1]
    inner = slice(int(EDGE_FEATHER[1] * side) + 1, side - int(EDGE_FEATHER[1] * side) - 1)
    assert np.array_equal(edged[:, inner, inner], faces[:, inner, inner])  # the face itself is kept
    backgrounds = faces[::-1, ::-1]
    for i in np.flatnonzero(changed):  # the outermost ring is all background, the next rings a blend
        ring = np.concatenate([edged[i, 0], edged[i, -1], edged[i, :, 0], edged[i, :, -1]])
        behind = np.concatenate([backgrounds[i, 0], backgrounds[i, -1], backgrounds[i, :, 0], backgrounds[i, :, -1]])
        assert np.array_equal(ring, behind)
        blend = edged[i, 2, side // 2].astype(float)
        low, high = sorted((float(faces[i, 2, side // 2, 0]), float(backgrounds[i, 2, side // 2, 0])))
        assert low - 1 <= blend[0] <= high + 1


def cross_entropy(targets, logits):
    return -(targets * tf.nn.log_softmax(logits).numpy()).sum(axis=1)


def test_a_teacher_takes_its_share_of_the_targets_of_the_tasks_it_answers(small_stores, tmp_path):
    config = TrainConfig(architecture="improved", exact_age=True, input_size=96, race_head=True, label_smoothing=0.1,
                         teacher=BUNDLED_MODEL, teacher_share=0.3)
    trainer = Trainer(small_stores / "gray", tmp_path / "run", config)
    images, labels = next(iter(split_dataset(small_stores / "gray", "valid", 16)))
    teacher = trainer.teacher.calibrated_probabilities(images)
    assert set(teacher) == {"gender", "age_group", "exact_age"}  # the bundled model has no race head
    logits = {task: tf.constant(np.random.default_rng(2).normal(size=(16, count)), tf.float32)
              for task, count in trainer.model.class_counts.items()}
    losses_with = losses.face_losses(logits, labels, config.label_smoothing, 0.0, teacher, config.teacher_share)
    for task in ("gender", "age_group"):
        classes = logits[task].shape[1]
        label_targets = np.eye(classes)[labels[task].numpy()] * 0.9 + 0.1 / classes
        targets = 0.7 * label_targets + 0.3 * teacher[task].numpy()
        np.testing.assert_allclose(losses_with[task].numpy(), cross_entropy(targets, logits[task]), rtol=1e-5)
    targets = 0.7 * soft_age_labels(labels["age"]).numpy() + 0.3 * teacher["exact_age"].numpy()
    np.testing.assert_allclose(losses_with["exact_age"].numpy(), cross_entropy(targets, logits["exact_age"]), rtol=1e-5)
    # Race, which the teacher does not answer, is learned from its labels alone.
    without = losses.face_losses(logits, labels, config.label_smoothing)
    np.testing.assert_allclose(losses_with["race"].numpy(), without["race"].numpy())
    assert not np.allclose(losses_with["gender"].numpy(), without["gender"].numpy())


def test_one_step_moves_the_weights_down_the_gradient_of_the_balanced_losses_plus_l2(small_stores, tmp_path):
    """SGD's first step (no momentum yet) is the weights minus the rate times the gradient of the batch's
    mean balanced loss plus the L2 term, worked out here from the losses module; dropout off, so the
    forward pass is the same. Left without the L2 or the balance, the step would miss by far more."""
    rate = 0.01
    config = TrainConfig(optimizer="sgd", learning_rate=rate, dropout=0.0, weight_decay=0.05, batch_size=32)
    trainer = Trainer(small_stores / "gray", tmp_path / "run", config)
    trainer.balance.log_variances["gender"].assign(0.7)  # a balance that weighs the tasks unequally
    images, labels = next(iter(split_dataset(small_stores / "gray", "train", 32)))
    variables = trainer.variables
    start = [variable.numpy() for variable in variables]

    def gradients(balanced=True, l2=0.05):
        with tf.GradientTape() as tape:
            face_losses = losses.face_losses(trainer.model(images, training=False), labels)
            per_face = trainer.balance(face_losses) if balanced else tf.add_n(list(face_losses.values()))
            total = tf.reduce_mean(per_face) + l2 * tf.add_n([tf.nn.l2_loss(kernel) for kernel in trainer.model.kernels])
        return [np.zeros(v.shape) if g is None else g.numpy() for v, g in zip(variables, tape.gradient(total, variables))]
    expected, unbalanced, without_l2 = gradients(), gradients(balanced=False), gradients(l2=0.0)
    trainer.train_step(images, labels)
    for variable, old, gradient in zip(variables, start, expected):
        np.testing.assert_allclose(variable.numpy(), old - rate * gradient, atol=1e-6, err_msg=variable.name)
    for other in (unbalanced, without_l2):
        assert max(np.abs(a - b).max() for a, b in zip(expected, other)) * rate > 1e-4
