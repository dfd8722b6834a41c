"""Training under tf.distribute without a GPU: two logical CPU devices, two local workers, and a
store ten times larger streamed in the same memory."""
import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import QUICK_TRAINING, ROOT
from scaled_store import repeat_store, stream_epoch_peak

pytestmark = pytest.mark.slow

# In a fresh process, since logical devices must be set before TensorFlow starts: the same three SGD
# steps on one device (batch 64) and mirrored over two logical CPUs (2 x 32), from the same weights.
MIRRORED_STEPS = """
import json, sys, tempfile
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from agegender.distribute import make_strategy
from agegender.train import Trainer
from agegender.train_options import TrainConfig

def three_steps(batch_size, strategy=None):
    config = TrainConfig(batch_size=batch_size, augment=False, dropout=0.0, optimizer="sgd", seed=3)
    trainer = Trainer({store!r}, tempfile.mkdtemp(), config, strategy)
    start = trainer.model.weights()
    for _, (images, labels) in zip(range(3), trainer.train_dataset(epoch=1)):
        trainer.train_step(images, labels)
    return trainer, start, trainer.model.weights()

one, one_start, one_end = three_steps(64)
two, two_start, two_end = three_steps(32, make_strategy("mirrored"))
largest = lambda a, b: max(float(np.abs(a[name] - b[name]).max()) for name in a)
print(json.dumps({{"replicas": two.strategy.num_replicas_in_sync, "global_batch": two.global_batch,
                  "start_difference": largest(one_start, two_start), "change": largest(one_end, one_start),
                  "end_difference": largest(one_end, two_end),
                  "balance": [one.balance.values(), two.balance.values()]}}))
"""


def test_mirrored_training_on_two_logical_cpus_matches_one_device(utk_store):
    snippet = MIRRORED_STEPS.format(store=str(utk_store))
    result = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["replicas"] == 2 and figures["global_batch"] == 64
    assert figures["start_difference"] == 0
    assert figures["change"] > 0.01  # the steps really moved the weights ...
    assert figures["end_difference"] < 1e-5  # ... and both ways the same: same faces, same mean gradient
    one_balance, two_balance = figures["balance"]
    for task, value in one_balance.items():
        assert value != 0 and abs(value - two_balance[task]) < 1e-6


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for each in sockets:
        each.bind(("127.0.0.1", 0))
    ports = [each.getsockname()[1] for each in sockets]
    for each in sockets:
        each.close()
    return ports


def test_two_local_workers_train_together_with_multi_worker_mirrored_strategy(small_stores, tmp_path):
    data = small_stores / "gray"  # 339 training faces: two steps of 2 x 64
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    command = [sys.executable, os.path.join(ROOT, "joint", "jointly.py"), "--data", str(data),
               "--run", str(tmp_path / "run"), "--epochs", "1", "--strategy", "multiworker",
               *QUICK_TRAINING]
    workers = []
    for index in range(2):
        environment = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                              "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, cwd=ROOT, stdin=subprocess.DEVNULL))
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    chief_output = outputs[0][0]
    assert "MultiWorkerMirroredStrategy: 2 replicas x 64 faces = 128 a step" in chief_output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["history"]) == 1 and metrics["best_epoch"] == 1
    assert metrics["test"]["gender"]["faces"] == json.loads((data / "manifest.json").read_text())[
        "splits"]["test"]["faces"]
    assert (tmp_path / "run" / "model" / "weights.npz").is_file()
    assert outputs[1][0] == ""  # the other worker prints nothing and keeps nothing of the run


def test_the_training_stream_needs_no_more_memory_for_a_store_ten_times_larger(utk_store, tmp_path):
    large = repeat_store(utk_store, tmp_path / "large", 10)
    # A small shuffle buffer, so that the 2,000-face store fills it as the larger one does.
    small_faces, small_peak = stream_epoch_peak(utk_store, shuffle_buffer=1000)
    large_faces, large_peak = stream_epoch_peak(large, shuffle_buffer=1000)
    assert large_faces >= 10 * small_faces - 10 * 128
    split_megabytes = small_faces * 128 * 128 / 2 ** 20
    assert large_peak - small_peak < 2 * split_megabytes  # holding the larger split would take 10x that
