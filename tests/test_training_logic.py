"""Training's pure parts on small tensors: soft age targets, read-outs, augmentation, mixup, task balance,
LRN, the improved network's width, a teacher's share of the targets, AdamW's decay, children's gender
weight, sharpness-aware steps; the views inference averages."""
import json

import cv2
import numpy as np
import pytest
import tensorflow as tf

from agegender import BUNDLED_MODEL, store, train_options
from agegender.model import (ARCHITECTURES, ModelError, build_model, forward_flops, load_model,
                             local_response_normalization, save_model, task_classes)
from agegender.predict import ONE_VIEW, Predictor
from agegender.pipeline import (EDGE_FEATHER, ERASED_AREA, augment_batch, edge_backgrounds_batch, photo_conditions_batch,
                                random_erasing_batch, split_dataset)
from agegender.train import (EXACT_AGE_SIGMA, TaskBalance, Trainer, mix_faces, mixup_shares, predicted_values,
                             soft_age_labels)
from agegender.train_options import TrainConfig


def test_the_training_options_offer_every_network_the_model_module_builds():
    assert train_options.ARCHITECTURES == tuple(ARCHITECTURES)  # --arch is declared without TensorFlow


def test_a_wider_improved_network_has_more_channels_and_is_saved_with_its_width(tmp_path):
    class_counts = {"gender": 2, "age_group": 4}
    metadata = {"classes": {task: task_classes(task, (30, 46, 60)) for task in class_counts}, "age_edges": [30, 46, 60]}
    standard = build_model("improved", class_counts, input_size=96)
    wide = build_model("improved", class_counts, input_size=96, width=1.2)
    # 32, 64, 128, 256 channels times 1.2, each rounded to eights: 40, 80, 152, 304.
    assert [wide.stem[0].shape[-1], wide.conv[0].shape[-1], wide.blocks[0][0][0].shape[-1],
            wide.blocks[1][0][0].shape[-1]] == [40, 80, 152, 304]
    assert wide.heads["gender"][0][0].shape == (304, wide.head_size)  # the heads read the wider features
    assert 1.3 < forward_flops(wide) / forward_flops(standard) < 1.5  # about the width's square
    faces = np.random.default_rng(0).integers(0, 256, (3, 128, 128), dtype=np.uint8)
    expected = wide.probabilities(faces)
    save_model(wide, tmp_path / "wide", metadata)
    reloaded, description = load_model(tmp_path / "wide")
    assert description["width"] == 1.2 and reloaded.width == 1.2
    for task, values in reloaded.probabilities(faces).items():
        np.testing.assert_allclose(values.numpy(), expected[task].numpy(), atol=1e-6)
    # A model.json written before the width existed is of width 1.
    save_model(standard, tmp_path / "older", metadata)
    written = json.loads((tmp_path / "older" / "model.json").read_text())
    del written["width"]
    (tmp_path / "older" / "model.json").write_text(json.dumps(written))
    assert load_model(tmp_path / "older")[0].width == 1.0
    with pytest.raises(ModelError, match="the original architecture's channels are fixed"):
        build_model("original", class_counts, width=1.2)


def test_views_average_the_logits_of_the_faces_zoomed_and_mirrored_as_opencv_makes_them(utk_store):
    """Inference with views (zooms 1, 1.1, 0.9, each mirrored) gives the softmax of the mean of the logits
    of the six views made with OpenCV: the face's centre 1/zoom, or the face inside a reflected border,
    resized to the network's input, mirrored, standardised; with ONE_VIEW (real time), the first view's."""
    faces, _ = store.load_split(utk_store, "valid", limit=16)
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


def test_mixup_shares_follow_a_symmetric_beta_of_the_given_alpha_reproducibly():
    seed = tf.constant([3, 17], tf.int64)
    shares = mixup_shares(20000, 0.2, seed).numpy()
    assert np.array_equal(shares, mixup_shares(20000, 0.2, seed).numpy())
    assert shares.min() >= 0 and shares.max() <= 1
    assert abs(shares.mean() - 0.5) < 0.01  # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1))
    assert abs(shares.var() - 1 / (4 * 1.4)) < 0.01
    assert ((shares < 0.1) | (shares > 0.9)).mean() > 0.5  # alpha 0.2: mostly one face, a little of the other
    assert np.abs(mixup_shares(20000, 50.0, seed).numpy() - 0.5).max() < 0.3  # a large alpha: near halves


def test_mix_faces_blends_each_face_with_its_partner_in_mirror_order():
    faces = tf.constant(np.random.default_rng(1).integers(0, 256, (6, 128, 128), dtype=np.uint8))
    assert np.array_equal(mix_faces(faces, tf.ones(6)).numpy(), faces.numpy())
    assert np.array_equal(mix_faces(faces, tf.zeros(6)).numpy(), faces.numpy()[::-1])
    shares = tf.constant([0.25, 0.5, 1.0, 0.0, 0.9, 0.6])
    mixed = mix_faces(faces, shares).numpy()
    own, partner = faces.numpy().astype(np.float64), faces.numpy()[::-1].astype(np.float64)
    expected = shares.numpy()[:, None, None] * own + (1 - shares.numpy()[:, None, None]) * partner
    assert mixed.dtype == np.uint8 and np.abs(mixed - expected).max() <= 0.5 + 1e-4


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


def detail(faces):
    """Mean absolute difference of horizontally neighbouring pixels over the face's contrast, per face."""
    faces = faces.astype(np.float32)
    return np.abs(np.diff(faces, axis=2)).mean(axis=(1, 2, 3)) / faces.std(axis=(1, 2, 3))


def test_photo_conditions_shrink_half_the_faces_and_change_every_faces_exposure(utk_store):
    faces, _ = next(iter(split_dataset(utk_store, "train", 64)))
    conditioned = photo_conditions_batch(faces, tf.constant([7, 8])).numpy()
    assert conditioned.shape == faces.shape and conditioned.dtype == np.uint8
    assert np.array_equal(conditioned, photo_conditions_batch(faces, tf.constant([7, 8])).numpy())
    gains, exposure_only = [], []
    for face, result in zip(faces.numpy().astype(np.float32), conditioned.astype(np.float32)):
        unclipped = (result > 0) & (result < 255)
        design = np.stack([face[unclipped], np.ones(unclipped.sum())], axis=1)
        (gain, offset), *_ = np.linalg.lstsq(design, result[unclipped], rcond=None)
        residual = np.abs(design @ [gain, offset] - result[unclipped]).max()
        gains.append(gain)
        exposure_only.append(residual < 1)  # a gain and an offset, rounded: nothing else changed
    gains, exposure_only = np.array(gains), np.array(exposure_only)
    assert 0.3 < exposure_only.mean() < 0.7  # about half the faces keep their resolution
    assert 0.6 - 1e-3 < gains[exposure_only].min() < 0.8 and 1.2 < gains[exposure_only].max() < 1.4 + 1e-3
    lost = detail(conditioned) / detail(faces.numpy())  # a gain and an offset leave it, clipping aside
    assert np.all(lost[~exposure_only] < 0.97)  # the shrunk faces lost detail
    assert lost[~exposure_only].mean() < lost[exposure_only].mean() - 0.05


def test_random_erasing_replaces_one_rectangle_of_that_share_of_the_faces_with_noise(utk_store):
    faces, _ = next(iter(split_dataset(utk_store, "train", 64)))
    erased = random_erasing_batch(faces, tf.constant([3, 4]), 0.5).numpy()
    assert erased.shape == faces.shape and erased.dtype == np.uint8
    assert np.array_equal(erased, random_erasing_batch(faces, tf.constant([3, 4]), 0.5).numpy())
    assert np.array_equal(random_erasing_batch(faces, tf.constant([3, 4]), 0.0).numpy(), faces.numpy())
    faces = faces.numpy()
    changed = np.any(erased != faces, axis=3)
    chosen = changed.any(axis=(1, 2))
    assert 0.3 < chosen.mean() < 0.7  # about half the faces
    for face, box in zip(erased[chosen], changed[chosen]):
        rows, columns = np.flatnonzero(box.any(axis=1)), np.flatnonzero(box.any(axis=0))
        bounds = slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1)
        rectangle = face[bounds]
        # One rectangle, nearly every pixel of it changed (noise equals the face 1 time in 256) ...
        assert box[bounds].mean() > 0.95 and box.sum() == box[bounds].sum()
        assert ERASED_AREA[0] * 0.8 < rectangle.size / face.size < ERASED_AREA[1] * 1.05
        # ... of noise, uniform over 0..255 and unrelated to the face.
        assert 100 < rectangle.mean() < 155 and rectangle.std() > 60
    seed = tf.constant([3, 4], tf.int64)  # augmentation erases last, after the flip and shift
    assert np.array_equal(augment_batch(faces, seed, random_erasing=0.5).numpy(), random_erasing_batch(
        augment_batch(faces, seed), tf.random.experimental.stateless_fold_in(seed, 3), 0.5).numpy())


def test_edge_backgrounds_feather_half_the_faces_into_another_face_upside_down(utk_store):
    faces, _ = next(iter(split_dataset(utk_store, "train", 64)))
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


def test_a_teacher_takes_its_share_of_the_targets_of_the_tasks_it_answers(utk_store, tmp_path):
    config = TrainConfig(architecture="improved", exact_age=True, input_size=96, race_head=True, label_smoothing=0.1,
                         teacher=BUNDLED_MODEL, teacher_share=0.3)
    trainer = Trainer(utk_store, tmp_path / "run", config)
    images, labels = next(iter(split_dataset(utk_store, "valid", 16)))
    teacher = trainer.teacher.calibrated_probabilities(images)
    assert set(teacher) == {"gender", "age_group", "exact_age"}  # the bundled model has no race head
    logits = {task: tf.constant(np.random.default_rng(2).normal(size=(16, count)), tf.float32)
              for task, count in trainer.model.class_counts.items()}
    losses = trainer.face_losses(logits, labels, training=True, teacher=teacher)
    for task in ("gender", "age_group"):
        classes = logits[task].shape[1]
        label_targets = np.eye(classes)[labels[task].numpy()] * 0.9 + 0.1 / classes
        targets = 0.7 * label_targets + 0.3 * teacher[task].numpy()
        np.testing.assert_allclose(losses[task].numpy(), cross_entropy(targets, logits[task]), rtol=1e-5)
    targets = 0.7 * soft_age_labels(labels["age"]).numpy() + 0.3 * teacher["exact_age"].numpy()
    np.testing.assert_allclose(losses["exact_age"].numpy(), cross_entropy(targets, logits["exact_age"]), rtol=1e-5)
    # Race, which the teacher does not answer, is learned from its labels alone.
    without = trainer.face_losses(logits, labels, training=True)
    np.testing.assert_allclose(losses["race"].numpy(), without["race"].numpy())
    assert not np.allclose(losses["gender"].numpy(), without["gender"].numpy())


def test_adamw_decays_the_kernels_in_place_of_l2_and_leaves_the_rest(utk_store, tmp_path):
    # A first Adam step moves each weight by about the learning rate whatever its gradient, so a decay of
    # 100 a step at 1e-3 takes a tenth off every kernel and leaves the biases and batch normalisation's
    # scales and offsets within a few thousandths of where they were.
    config = TrainConfig(architecture="improved", optimizer="adamw", learning_rate=1e-3, weight_decay=100.0)
    trainer = Trainer(utk_store, tmp_path / "run", config)
    images, labels = next(iter(split_dataset(utk_store, "train", 16)))
    kernels = {id(kernel) for kernel in trainer.model.kernels}
    before = {id(variable): variable.numpy() for variable in trainer.variables}
    trainer.train_step(images, labels)
    for variable in trainer.variables:
        old, new = before[id(variable)], variable.numpy()
        if id(variable) in kernels:
            np.testing.assert_allclose(np.linalg.norm(new) / np.linalg.norm(old), 0.9, atol=0.005, err_msg=variable.name)
        else:
            assert np.abs(new - old).max() < 0.005, variable.name


def test_children_s_gender_loss_is_weighted_in_training_only(utk_store, tmp_path):
    trainer = Trainer(utk_store, tmp_path / "run", TrainConfig(child_gender_weight=3.0))
    images, labels = next(iter(split_dataset(utk_store, "train", 64)))
    children = labels["age"].numpy() < 18
    assert 0 < children.sum() < len(children)  # the batch holds both
    logits = {task: tf.constant(np.random.default_rng(3).normal(size=(64, count)), tf.float32)
              for task, count in trainer.model.class_counts.items()}
    weighted = trainer.face_losses(logits, labels, training=True)
    plain = Trainer(utk_store, tmp_path / "plain", TrainConfig()).face_losses(logits, labels, training=True)
    np.testing.assert_allclose(weighted["gender"].numpy(), plain["gender"].numpy() * np.where(children, 3.0, 1.0),
                               rtol=1e-6)
    np.testing.assert_allclose(weighted["age_group"].numpy(), plain["age_group"].numpy())
    # Validation losses stay plain, comparable between runs: without label smoothing, as the plain run's.
    np.testing.assert_allclose(trainer.face_losses(logits, labels, training=False)["gender"].numpy(),
                               plain["gender"].numpy())


def test_sam_steps_with_the_gradient_taken_rho_up_the_weights_own_gradient(utk_store, tmp_path):
    """A sharpness-aware step (--sam-rho) moves the weights from where they were by the gradient taken
    at the weights moved rho along their own normalised gradient; and they are not left moved."""
    rho, rate = 0.5, 0.01
    config = TrainConfig(optimizer="sgd", learning_rate=rate, dropout=0.0, sam_rho=rho)
    trainer = Trainer(utk_store, tmp_path / "run", config)
    images, labels = next(iter(split_dataset(utk_store, "train", 32)))
    weights, variables = trainer.model.trainable_variables, trainer.variables
    start = [variable.numpy() for variable in variables]

    def gradients():
        with tf.GradientTape() as tape:
            total, _, _ = trainer.replica_loss(images, labels, None, None)
        return [gradient.numpy() for gradient in tape.gradient(total, variables)]
    plain = gradients()
    length = np.sqrt(sum(np.sum(np.square(gradient)) for gradient in plain[:len(weights)]))
    for weight, gradient in zip(weights, plain):
        weight.assign_add(rho * gradient / length)
    sharp = gradients()
    for variable, value in zip(variables, start):
        variable.assign(value)

    trainer.train_step(images, labels)  # SGD's first step: the weights minus the rate times the gradient
    moved = [variable.numpy() for variable in variables]
    for new, old, gradient, variable in zip(moved, start, sharp, variables):
        np.testing.assert_allclose(new, old - rate * gradient, atol=1e-6, err_msg=variable.name)
    # The two gradients differ enough that a plain step would have failed the check above.
    assert max(np.abs(a - b).max() for a, b in zip(sharp, plain)) * rate > 1e-4
