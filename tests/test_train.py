"""Training as a user runs it: short real runs on real faces, checked the way a user would check."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from agegender import evaluate, store
from agegender.model import load_model
from agegender.predict import Predictor
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


def test_saved_model_reloads_with_the_same_predictions(utk_store, tmp_path):
    config = TrainConfig(tasks=("age_group",), max_epochs=1, batch_size=64)
    trainer = Trainer(str(utk_store), str(tmp_path), config)
    trainer.fit(quiet=True)
    images, _ = store.load_split(utk_store, "test", limit=50)
    reloaded, description = load_model(str(tmp_path / "model"))
    expected = trainer.model.probabilities(images)["age_group"].numpy()
    assert np.allclose(reloaded.probabilities(images)["age_group"].numpy(), expected, atol=1e-6)
    assert description["classes"] == {"age_group": ["0-29", "30-45", "46-59", "60+"]}
    assert description["age_edges"] == [30, 46, 60] and description["tasks"] == ["age_group"]


def test_per_task_scripts_train_only_their_head(utk_store, tmp_path):
    for script, task, other in (("gender/gender.py", "gender", "age_group"), ("age/age.py", "age_group", "gender")):
        run = tmp_path / task
        run_script(script, "--data", utk_store, "--run", run, "--epochs", "1", *QUICK_TRAINING)
        _, description = load_model(str(run / "model"))
        assert description["tasks"] == [task]
        with np.load(run / "model" / "weights.npz") as weights:
            names = set(weights.files)
        assert any(name.startswith(f"{task}/") for name in names)
        assert not any(name.startswith(f"{other}/") for name in names)
        metrics = json.loads((run / "metrics.json").read_text())
        assert list(metrics["test"]) == [task] and not metrics["history"][0]["balance_log_variances"]


def test_interrupted_run_resumes_from_its_last_finished_epoch_to_the_same_weights(utk_store, joint_run, tmp_path):
    run = tmp_path / "joint"
    command = [sys.executable, os.path.join(ROOT, "joint/jointly.py"), "--data", str(utk_store),
               "--run", str(run), "--epochs", "5", *QUICK_TRAINING]  # as joint_run, which is not interrupted
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
    assert [entry["epoch"] for entry in history] == [1, 2, 3, 4, 5]
    assert history[0] == finished[0]
    # Dropout, shuffling and augmentation on: the resumed run ends where the uninterrupted one did.
    resumed_state = tf.train.load_checkpoint(str(run / "checkpoints" / "ckpt-5"))
    uninterrupted = tf.train.load_checkpoint(str(joint_run[0] / "checkpoints" / "ckpt-5"))
    names = [name for name in uninterrupted.get_variable_to_shape_map() if name != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert any("conv1" in name for name in names)
    for name in names:
        np.testing.assert_array_equal(resumed_state.get_tensor(name), uninterrupted.get_tensor(name), err_msg=name)


def test_bad_store_is_a_one_line_error(tmp_path):
    result = run_script("gender/gender.py", "--data", tmp_path / "nothing", "--run", tmp_path / "run",
                        check=False)
    assert result.returncode != 0 and "not a dataset store" in result.stderr
    assert "Traceback" not in result.stderr


def test_improved_architecture_learns_exact_ages_and_exports(utk_store, tmp_path):
    run = tmp_path / "improved"
    result = run_script("joint/jointly.py", "--data", utk_store, "--run", run, "--epochs", "3", "--arch", "improved",
                        "--exact-age", "--input-size", "96", *QUICK_TRAINING)  # at 96 px, as bundled
    metrics = json.loads((run / "metrics.json").read_text())
    _, train_labels = store.load_split(utk_store, "train")
    _, test_labels = store.load_split(utk_store, "test")
    # Against always answering the training faces' median age, the best constant for MAE.
    constant_mae = np.mean(np.abs(test_labels["age"] - np.median(train_labels["age"])))
    exact = metrics["test"]["exact_age"]
    assert exact["mae"] < 0.8 * constant_mae and exact["faces"] == len(test_labels["age"])
    assert 0 < exact["cs5"] < 1 and np.array(exact["age_groups"]["confusion_matrix"]).sum() == exact["faces"]
    assert metrics["test"]["gender"]["accuracy"] > majority_share(test_labels["gender"]) + 0.05
    assert "exact_age: MAE" in result.stdout and (run / "confusion_exact_age.png").is_file()

    model, description = load_model(run / "model")
    assert description["architecture"] == "improved" and description["tasks"] == ["gender", "age_group", "exact_age"]
    batch_norm_means = [v for v in model.variables if v.name.endswith("/mean:0")]
    assert batch_norm_means and all(float(tf.reduce_max(tf.abs(v))) > 0 for v in batch_norm_means)  # saved too

    evaluation = run_script("joint/test_model.py", "--model", run / "model", "--data", utk_store,
                            "--out", tmp_path / "evaluation")
    evaluated_mae = float(re.search(r"exact_age: MAE ([0-9.]+) years", evaluation.stdout).group(1))
    assert abs(evaluated_mae - exact["mae"]) < 0.011  # the saved model gives the run's figures
    # The run's calibration fitted the age interval's temperature on the valid split: the smallest whose
    # intervals hold 80% of its ages; test_model.py gives the coverage on the test split the run reported.
    temperature = description["temperatures"]["age_interval"]
    valid_faces, valid_labels = store.load_split(utk_store, "valid")
    answers = Predictor(str(run / "model")).classify(valid_faces)["exact_age"]
    assert evaluate.interval_coverage(valid_labels["age"], *evaluate.age_interval(answers, temperature)) >= 0.8
    assert "age interval" not in result.stderr  # no warning: the fit found it
    coverage = float(re.search(r", 80% age interval holds ([0-9.]+)% of true ages", evaluation.stdout).group(1))
    assert abs(coverage / 100 - exact["age_interval"]["coverage"]) < 0.0006 and 0 < coverage < 100

    export = run_script("joint/export.py", "--model", run / "model", "--data", utk_store, "--out", tmp_path / "export",
                        "--no-int8")
    assert "saved_model" in export.stdout and (tmp_path / "export" / "model_float32.tflite").is_file()


def test_race_head_is_learned_but_never_saved(utk_store, tmp_path):
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
    images, labels = store.load_split(utk_store, "test")
    predicted = np.argmax(model.probabilities(images)["gender"], axis=1)
    assert abs(np.mean(predicted == labels["gender"]) - metrics["test"]["gender"]["accuracy"]) < 1e-9
