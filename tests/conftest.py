"""Shared fixtures: real faces from ../shared/data, copied in small numbers into each test's folder.

Tests marked `slow` run the project end to end (`pytest -m "not slow"` leaves them out). A test that
needs the shared data skips, saying so, when it is missing; the others still run.
"""
import functools
import json
import multiprocessing
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
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


# A script's run begins with TensorFlow's import, 4-5 s of CPU (three times that on a busy machine), and
# the suite runs scripts over a hundred times. So each run is a process forked from one that has already
# imported what the scripts import (the standard library's forkserver): a process of its own, as a user's
# run is, with its own arguments, working folder, environment, standard streams and exit code, that
# starts in a fraction of a second. What a fork cannot show, a process started from nothing is for: the
# lines TensorFlow prints on import, Ctrl-C, an installed command: run_script(..., fresh_process=True), or
# the test starts one itself.
# (Windows has no fork: there each run starts from nothing.)
SCRIPT_STARTER = multiprocessing.get_context("forkserver") if "forkserver" in multiprocessing.get_all_start_methods() \
    else None
if SCRIPT_STARTER:
    SCRIPT_STARTER.set_forkserver_preload(["agegender.cli", "agegender.train", "agegender.predict", "agegender.scoring",
                                           "agegender.export", "agegender.video", "agegender.wash",
                                           "matplotlib.pyplot"])


@functools.cache
def plain_python_path():
    """sys.path as `python script.py` starts with it (less the script's folder): not the test runner's."""
    printed = subprocess.run([sys.executable, "-c", "import json, sys; print(json.dumps(sys.path[1:]))"],
                             capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(printed.stdout)


def _run_as_main(script, arguments, folder, environment, python_path, stdout, stderr):
    """In the forked process: what `python script arguments` does, from `folder`, into the two files."""
    os.chdir(folder)
    os.environ.clear()
    os.environ.update(environment)
    sys.path[:] = [os.path.dirname(script), *python_path]
    sys.argv = [script, *arguments]
    for descriptor, path, flags in ((0, os.devnull, os.O_RDONLY), (1, stdout, os.O_WRONLY), (2, stderr, os.O_WRONLY)):
        os.dup2(os.open(path, flags), descriptor)
    sys.stdin, sys.stdout, sys.stderr = (open(descriptor, mode, closefd=False) for descriptor, mode in
                                         ((0, "r"), (1, "w"), (2, "w")))
    try:
        runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as exit:
        code = exit.code
        if not (code is None or isinstance(code, int)):  # sys.exit("error: ..."), as the interpreter ends on it
            print(code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def run_script(script, *arguments, check=True, timeout=900, env=None, cwd=ROOT, fresh_process=False):
    """Run one of the project's scripts as a user would (from `cwd`, with os.environ and `env`), in a
    forked process or, with `fresh_process`, one started from nothing; returns a CompletedProcess with
    its exit status and what it printed."""
    arguments = [str(argument) for argument in arguments]
    if fresh_process or SCRIPT_STARTER is None:
        result = subprocess.run([sys.executable, os.path.join(ROOT, script), *arguments], capture_output=True,
                                text=True, timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})},
                                stdin=subprocess.DEVNULL)
    else:
        result = run_forked(script, arguments, timeout, env, cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"{script} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def run_forked(script, arguments, timeout, env, cwd):
    with tempfile.TemporaryDirectory() as streams:
        stdout, stderr = (os.path.join(streams, name) for name in ("stdout", "stderr"))
        for path in (stdout, stderr):
            open(path, "w").close()
        process = SCRIPT_STARTER.Process(target=_run_as_main, args=(
            os.path.join(ROOT, script), arguments, str(cwd), {**os.environ, **(env or {})}, plain_python_path(),
            stdout, stderr))
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired([script, *arguments], timeout)
        with open(stdout, encoding="utf-8") as out, open(stderr, encoding="utf-8") as err:
            return subprocess.CompletedProcess([script, *arguments], process.exitcode, out.read(), err.read())


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


@pytest.fixture(autouse=True)
def machine_shared(tmp_path_factory, request):
    """Each test holds a shared lock on the machine while it runs, one that needs it whole
    (`@pytest.mark.whole_machine`: a benchmark held against the CPU's measured peak) an exclusive one:
    under pytest-xdist it starts when the other workers' tests have ended, and they wait for its end."""
    if not (fcntl and os.environ.get("PYTEST_XDIST_WORKER")):
        yield
        return
    with open(tmp_path_factory.getbasetemp().parent / "machine.lock", "w") as lock:
        whole = request.node.get_closest_marker("whole_machine") is not None
        fcntl.flock(lock, fcntl.LOCK_EX if whole else fcntl.LOCK_SH)
        yield


@pytest.fixture(scope="session")
def utk_store(tmp_path_factory):
    """A store washed from 2,400 real UTKFace faces, shared by the tests that only read it."""
    def wash(folder):
        copy_utkface(folder / "raw", 2400)
        run_script("others/wash_data.py", "--dataset", "utkface", "--src", folder / "raw",
                   "--out", folder / "store", "--quiet")
    return built_once(tmp_path_factory, "utk", wash)[0] / "store"


@pytest.fixture(scope="session")
def small_stores(tmp_path_factory):
    """400 real faces washed twice in this process, gray and in colour (a second or two): for the tests that
    need real faces as a store holds them, but no training on them."""
    from agegender import sources, wash
    folder = tmp_path_factory.mktemp("small")
    copy_utkface(folder / "raw", 400)
    for name, color in (("gray", False), ("rgb", True)):
        wash.wash([("utkface", str(folder / "raw"), sources.read_utkface(str(folder / "raw")))], folder / name,
                  wash.WashOptions(workers=1, color=color), quiet=True)
    return folder


# Options that make a few epochs on a couple of thousand faces learn visibly (the defaults are for
# the full set): more, smaller steps with Adam.
QUICK_TRAINING = ("--batch-size", "64", "--optimizer", "adam", "--learning-rate", "0.001", "--quiet")


@pytest.fixture(scope="session")
def joint_run(utk_store, tmp_path_factory):
    """A short joint training run on real faces, shared by the tests that inspect its outputs (and only
    read them): the run folder and what the script printed (.stdout)."""
    def train(run):
        return {"stdout": run_script("joint/jointly.py", "--data", utk_store, "--run", run, "--epochs", "3",
                                     *QUICK_TRAINING).stdout}
    run, printed = built_once(tmp_path_factory, "joint-run", train)
    return run, types.SimpleNamespace(**printed)
