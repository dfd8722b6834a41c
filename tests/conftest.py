"""Shared fixtures: real faces from ../shared/data, copied in small numbers into each test's folder.

Tests marked `slow` run the project end to end (`pytest -m "not slow"` leaves them out). A test that
needs the shared data skips, saying so, when it is missing; the others still run.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import types

import pytest

try:
    import fcntl  # POSIX: the workers of one run share what a fixture builds
except ImportError:  # Windows: each worker builds its own
    fcntl = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")
UTKFACE = os.path.join(SHARED_DATA, "utkface")
WIKI_MAT = os.path.join(SHARED_DATA, "imdb-wiki", "wiki.mat")


def require(path):
    """`path` in the shared real data, or a skip of the test that needs it when it is missing."""
    if not os.path.exists(path):
        pytest.skip(f"the real test data is missing: {path} (see README, Data: shared/data beside the project)")
    return path


def utkface_names(count, step=None):
    """`count` real UTKFace file names spread evenly over the sorted folder (all ages and genders)."""
    names = sorted(os.listdir(require(UTKFACE)))
    step = step or max(1, len(names) // count)
    return names[::step][:count]


def copy_utkface(folder, count):
    os.makedirs(folder, exist_ok=True)
    names = utkface_names(count)
    for name in names:
        shutil.copyfile(os.path.join(UTKFACE, name), os.path.join(folder, name))
    return names


def default_ctrl_c():
    """A child's Ctrl-C as in a terminal (Popen's preexec_fn): a shell that starts a job in the background
    (as CI may) makes it ignore SIGINT, and Python then never turns Ctrl-C into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_script(script, *arguments, check=True, timeout=900, env=None):
    """Run one of the project's scripts as a user would; returns the CompletedProcess."""
    result = subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, arguments)],
                            capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                            env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise AssertionError(f"{script} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def built_once(tmp_path_factory, name, build):
    """The folder `name`, filled by build(folder) once per test run: under pytest-xdist the first worker
    to take the lock builds it and the others wait, then reuse it (a wash or a training run each worker
    repeated took minutes). Returns (folder, what build returned: JSON)."""
    shared = tmp_path_factory.getbasetemp()
    if fcntl and os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's own temporary folder, above each worker's
    folder, done = shared / name, shared / f"{name}.json"
    with open(shared / f"{name}.lock", "w") as lock:
        if fcntl:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a worker that failed midway left
            done.write_text(json.dumps(build(folder)))
    return folder, json.loads(done.read_text())


@pytest.fixture(scope="session")
def utk_store(tmp_path_factory):
    """A store washed from 2,400 real UTKFace faces, shared by the tests that only read it."""
    def wash(folder):
        copy_utkface(folder / "raw", 2400)
        run_script("others/wash_data.py", "--dataset", "utkface", "--src", folder / "raw",
                   "--out", folder / "store", "--quiet")
    return built_once(tmp_path_factory, "utk", wash)[0] / "store"


# Options that make a few epochs on a couple of thousand faces learn visibly (the defaults are for
# the full set): more, smaller steps with Adam.
QUICK_TRAINING = ("--batch-size", "64", "--optimizer", "adam", "--learning-rate", "0.001", "--quiet")


@pytest.fixture(scope="session")
def joint_run(utk_store, tmp_path_factory):
    """A short joint training run on real faces, shared by the tests that inspect its outputs (and only
    read them): the run folder and what the script printed (.stdout)."""
    def train(run):
        return {"stdout": run_script("joint/jointly.py", "--data", utk_store, "--run", run, "--epochs", "5",
                                     *QUICK_TRAINING).stdout}
    run, printed = built_once(tmp_path_factory, "joint-run", train)
    return run, types.SimpleNamespace(**printed)
