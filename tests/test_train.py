"""Training as a user runs it: short real runs on real faces, checked the way a user would check."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from agegender import store
from agegender.model import load_model
from agegender.train import Trainer
from agegender.train_options import TrainConfig
from conftest import QUICK_TRAINING, ROOT, default_ctrl_c, run_script

pytestmark = pytest.mark.slow


def majority_share(values):
    return np.bincount(values).max() / len(values)


def test_joint_training_beats_the_majority_and_writes_its_reports(joint_run, utk_store):
    run, result = joint_run
    metrics = json.loads((run / "metrics.json").read_text())
    _, valid_labels = store.load_split(utk_store, "valid")
    _, test_labels = store.load_split(utk_store, "test")
    best = next(entry for entry in metrics["history"] if entry["epoch"] == metrics["best_epoch"])
    assert best["valid"]["gender"]["accuracy"] > majority_share(valid_labels["gender"]) + 0.1
    assert metrics["test"]["gender"]["accuracy"] > majority_share(test_labels["gender"]) + 0.1
    history = metrics["history"]
    assert [entry["epoch"] for entry in history] == list(range(1, len(history) + 1))
    assert history[-1]["train"]["age_group"]["loss"] < history[0]["train"]["age_group"]["loss"]
    test_age = metrics["test"]["age_group"]
    assert np.array(test_age["confusion_matrix"]).sum() == len(test_labels["age_group"])
    assert 0 <= test_age["balanced_accuracy"] <= 1 and test_age["one_off_accuracy"] >= test_age["accuracy"]
    for name in ("curves.png", "confusion_gender.png", "confusion_age_group.png", "model/model.json",
                 "model/weights.npz", "checkpoints/checkpoint", "config.json"):
        assert (run / name).is_file(), name
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(run / "logs"))
    assert "gender: accuracy" in result.stdout and "balance s_gender=" in result.stdout


def test_balance_parameters_move_and_stay_finite(joint_run):
    metrics = json.loads((joint_run[0] / "metrics.json").read_text())
    values = np.array([[entry["balance_log_variances"][task] for task in ("gender", "age_group")]
                       for entry in metrics["history"]])
    assert np.all(np.isfinite(values))
    assert np.all(np.abs(values[-1]) > 1e-3)  # both started at 0
    assert np.all(np.abs(values) < 10)


def test_saved_model_reloads_with_the_same_predictions(small_stores, tmp_path):
    config = TrainConfig(tasks=("age_group",), max_epochs=1, batch_size=64)
    trainer = Trainer(str(small_stores / "gray"), str(tmp_path), config)
    trainer.fit(quiet=True)
    images, _ = store.load_split(small_stores / "gray", "test")
    reloaded, description = load_model(str(tmp_path / "model"))
    expected = trainer.model.probabilities(images)["age_group"].numpy()
    assert np.allclose(reloaded.probabilities(images)["age_group"].numpy(), expected, atol=1e-6)
    assert description["classes"] == {"age_group": ["0-29", "30-45", "46-59", "60+"]}
    assert description["age_edges"] == [30, 46, 60] and description["tasks"] == ["age_group"]


def weight_names(model_folder):
    with np.load(model_folder / "weights.npz") as weights:
        return set(weights.files)


def test_the_age_script_trains_only_its_head(utk_store, tmp_path):
    """(gender.py: the race head's test below.)"""
    run = tmp_path / "age"
    run_script("age/age.py", "--data", utk_store, "--run", run, "--epochs", "1", *QUICK_TRAINING)
    _, description = load_model(str(run / "model"))
    assert description["tasks"] == ["age_group"]
    names = weight_names(run / "model")
    assert any(name.startswith("age_group/") for name in names) and not any(name.startswith("gender/") for name in names)
    metrics = json.loads((run / "metrics.json").read_text())
    assert list(metrics["test"]) == ["age_group"] and not metrics["history"][0]["balance_log_variances"]


def test_interrupted_run_resumes_from_its_last_finished_epoch_to_the_same_weights(utk_store, joint_run, tmp_path):
    run = tmp_path / "joint"
    command = [sys.executable, os.path.join(ROOT, "joint/jointly.py"), "--data", str(utk_store),
               "--run", str(run), "--epochs", "3", *QUICK_TRAINING]  # as joint_run, which is not interrupted
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               preexec_fn=default_ctrl_c)
    deadline = time.time() + 600
    # The state file names a checkpoint only once it is completely written.
    state = run / "checkpoints" / "checkpoint"
    while not (state.exists() and "ckpt-1" in state.read_text()):
        assert process.poll() is None and time.time() < deadline, "training ended before its first checkpoint"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)  # Ctrl-C, during epoch 2
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "--resume" in stderr and "Traceback" not in stderr, stderr
    finished = json.loads((run / "metrics.json").read_text())["history"]
    assert [entry["epoch"] for entry in finished] == [1]

    refused = run_script("joint/jointly.py", "--data", utk_store, "--run", run, check=False)
    assert refused.returncode != 0 and "--resume" in refused.stderr and "Traceback" not in refused.stderr

    resumed = run_script("joint/jointly.py", "--data", utk_store, "--run", run, "--resume", "--quiet")
    assert "resuming" in resumed.stdout and "after epoch 1" in resumed.stdout
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert [entry["epoch"] for entry in history] == [1, 2, 3]
    assert history[0] == finished[0]
    # Dropout, shuffling and augmentation on: the resumed run ends where the uninterrupted one did.
    resumed_state = tf.train.load_checkpoint(str(run / "checkpoints" / "ckpt-3"))
    uninterrupted = tf.train.load_checkpoint(str(joint_run[0] / "checkpoints" / "ckpt-3"))
    names = [name for name in uninterrupted.get_variable_to_shape_map() if name != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert any("conv1" in name for name in names)
    for name in names:
        np.testing.assert_array_equal(resumed_state.get_tensor(name), uninterrupted.get_tensor(name), err_msg=name)


def test_bad_store_is_a_one_line_error(tmp_path):
    result = run_script("gender/gender.py", "--data", tmp_path / "nothing", "--run", tmp_path / "run",
                        check=False)
    assert result.returncode != 0 and "not a dataset store" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_gender_script_learns_the_race_head_but_never_saves_it(utk_store, tmp_path):
    run = tmp_path / "race"
    run_script("gender/gender.py", "--data", utk_store, "--run", run, "--epochs", "3", "--race-head", *QUICK_TRAINING)
    metrics = json.loads((run / "metrics.json").read_text())
    _, train_labels = store.load_split(utk_store, "train")
    _, valid_labels = store.load_split(utk_store, "valid")
    # The auxiliary head learned from the race labels: its valid loss beats the best constant answer (the
    # training faces' race frequencies) by a clear margin...
    frequencies = np.bincount(train_labels["race"], minlength=5) / len(train_labels["race"])
    constant_loss = -np.mean(np.log(frequencies[valid_labels["race"]]))
    assert metrics["history"][-1]["valid"]["race"]["loss"] < constant_loss - 0.1
    # ...and early stopping, the saved model and the test report know only the task the script trains.
    assert all(entry["valid_score"] == entry["valid"]["gender"]["accuracy"] for entry in metrics["history"])
    assert list(metrics["test"]) == ["gender"]
    model, description = load_model(run / "model")
    assert description["tasks"] == ["gender"] and list(model.class_counts) == ["gender"]
    assert not [v for v in model.variables if v.name.startswith("race/")]
    names = weight_names(run / "model")  # the gender script's own head, and no other
    assert any(name.startswith("gender/") for name in names)
    assert not any(name.startswith(("age_group/", "race/")) for name in names)
    images, labels = store.load_split(utk_store, "test")
    predicted = np.argmax(model.probabilities(images)["gender"], axis=1)
    assert abs(np.mean(predicted == labels["gender"]) - metrics["test"]["gender"]["accuracy"]) < 1e-9
