"""The package as a user installs it (README, Set up): a command per stage from any folder, the package
used from one's own code, the bundled models found in the package, and a wheel that carries them."""
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata

import pytest

from agegender import BUNDLED_MODEL, model
from agegender.detect_cli import sample_portrait
from conftest import ROOT, run_script

COMMANDS = {"agegender-wash": "others/wash_data.py", "agegender-train": "joint/jointly.py",
            "agegender-train-gender": "gender/gender.py", "agegender-train-age": "age/age.py",
            "agegender-test": "joint/test_model.py", "agegender-detect": "detect.py",
            "agegender-realtime": "joint/real_time.py", "agegender-export": "joint/export.py"}


# A program that uses the package, then checks that it left TF_CPP_MIN_LOG_LEVEL as it found it.
QUIET_CHILD = """import os
before = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
from agegender.quiet_tensorflow import tf
tf.constant(1)
assert os.environ.get("TF_CPP_MIN_LOG_LEVEL") == before, os.environ.get("TF_CPP_MIN_LOG_LEVEL")
"""


def quiet_child_stderr(level):
    """stderr of QUIET_CHILD started with TF_CPP_MIN_LOG_LEVEL at `level` (None: unset), whatever the
    environment of the tests holds."""
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    return subprocess.run([sys.executable, "-c", QUIET_CHILD], capture_output=True, text=True, timeout=120,
                          check=True, env=env).stderr


@pytest.mark.slow  # TensorFlow imported afresh: seconds
def test_a_program_started_from_one_that_uses_the_package_shows_no_tensorflow_start_up_lines():
    assert quiet_child_stderr(None) == ""


@pytest.mark.slow
@pytest.mark.parametrize("level", ["1", "2", "3"])
def test_any_log_level_from_1_up_is_quiet_from_the_first_line(level):
    assert quiet_child_stderr(level) == ""


# A script run with a wrong option, then asked whether it had imported TensorFlow.
WRONG_OPTION = """import runpy, sys
sys.argv = [{script!r}, "--data", "store", "--run", "run", "--no-such-option"]
try:
    runpy.run_path({script!r}, run_name="__main__")
finally:
    print("tensorflow" in sys.modules)
"""


@pytest.mark.parametrize("script", ["joint/jointly.py", "gender/gender.py", "age/age.py", "joint/export.py",
                                    "detect.py", "joint/real_time.py", "joint/test_model.py"])
def test_a_wrong_option_is_refused_before_tensorflow_is_imported(script):
    """TensorFlow's import takes seconds: a typo in an option is answered at once."""
    refused = subprocess.run([sys.executable, "-c", WRONG_OPTION.format(script=script)], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and refused.stderr.startswith("error: unrecognized arguments") \
        and "--no-such-option" in refused.stderr, refused.stderr
    assert refused.stdout == "False\n"


def installed_command(name):
    return os.path.join(os.path.dirname(sys.executable), name)


def test_every_stage_is_installed_as_a_command_that_runs_what_its_script_runs():
    entry_points = {entry.name: entry for entry in metadata.distribution("agegender").entry_points
                    if entry.group == "console_scripts"}
    assert set(entry_points) == set(COMMANDS)
    for name, script in COMMANDS.items():
        assert os.path.isfile(installed_command(name)), name
        module, function = entry_points[name].value.split(":")
        with open(os.path.join(ROOT, script), encoding="utf-8") as file:
            assert f"{module.split('.')[-1]}.{function}()" in file.read(), script  # the script is its wrapper


@pytest.mark.slow
def test_the_installed_command_labels_faces_from_a_folder_outside_the_project(tmp_path):
    command = subprocess.run([installed_command("agegender-detect"), "--json", "--out", "faces"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert command.returncode == 0, command.stderr
    script = json.loads(run_script("detect.py", "--json", "--out", tmp_path / "script").stdout)
    (installed,) = json.loads(command.stdout)
    assert installed["annotated"] == "faces/grace_hopper_faces.jpg" and (tmp_path / installed["annotated"]).is_file()
    assert installed["faces"] == script[0]["faces"]


@pytest.mark.slow
def test_the_readme_example_of_using_the_package_from_ones_own_code_runs(tmp_path):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as file:
        example = re.search(r"## Use it from your own code\n.*?```python\n(.*?)```", file.read(), re.S).group(1)
    shutil.copyfile(sample_portrait(), tmp_path / "photo.jpg")
    result = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\(\d+, \d+, \d+, \d+\) female \d+%, 60\+ \d+%, age \d+ \(\d+-\d+\) \{.*\}\n", result.stdout), result.stdout


def test_the_bundled_models_are_found_in_the_package():
    assert model.load_model(BUNDLED_MODEL)[1]["classes"]


@pytest.mark.slow
def test_a_wheel_carries_the_bundled_models_and_its_command_labels_a_photo_from_any_folder(tmp_path):
    """The wheel a user builds (no network: the venv's setuptools), installed alone into a folder, and its
    agegender-detect run from another with the default model. -S skips the site-packages' .pth files, so
    the editable install of the clone is not imported; PYTHONPATH names the wheel's folder, then the
    dependencies'."""
    source = tmp_path / "source"  # a copy, so that the build leaves nothing in the clone
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(os.path.join(ROOT, name), source / name)
    shutil.copytree(os.path.join(ROOT, "agegender"), source / "agegender",
                    ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp_path / "wheel",
                    source], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "wheel").iterdir()
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", tmp_path / "installed", wheel],
                   check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "installed"),
                                                         sysconfig.get_paths()["purelib"]])}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copyfile(sample_portrait(), elsewhere / "photo.jpg")

    def run(*arguments):
        return subprocess.run([sys.executable, "-S", *arguments], cwd=elsewhere, env=env, capture_output=True,
                              text=True, timeout=300, stdin=subprocess.DEVNULL)

    found = run("-c", "import agegender; print(agegender.BUNDLED_MODEL)")
    assert found.stdout == os.path.join(tmp_path / "installed", "agegender", "models", "improved") + "\n", found
    detected = run(tmp_path / "installed" / "bin" / "agegender-detect", "photo.jpg", "--json", "--out", "faces")
    assert detected.returncode == 0, detected.stderr
    ((face,),) = [image["faces"] for image in json.loads(detected.stdout)]
    assert (face["labels"]["gender"], face["labels"]["age_group"]) == ("female", "60+")
    assert (elsewhere / "faces" / "photo_faces.jpg").is_file()


@pytest.mark.slow
def test_a_script_of_a_clone_run_without_installing_says_in_one_line_how_to_install(tmp_path):
    """A python that has the dependencies but not the package, as a user's python before `pip install -e .`:
    -S skips the site-packages' .pth files, through which the editable install puts agegender on the path,
    and PYTHONPATH still names site-packages itself, so TensorFlow and the rest are found."""
    site_packages = sysconfig.get_paths()["purelib"]
    without_package = {**os.environ, "PYTHONPATH": site_packages}

    def run(*arguments):
        return subprocess.run([sys.executable, "-S", *arguments], cwd=tmp_path, env=without_package,
                              capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)

    assert run("-c", "import numpy, cv2, tensorflow").returncode == 0  # the dependencies are there
    assert "No module named 'agegender'" in run("-c", "import agegender").stderr  # the package is not
    for script in sorted(set(COMMANDS.values()) - {"detect.py"}):
        result = run(os.path.join(ROOT, script), "--help")
        assert (result.returncode, result.stdout) == (2, ""), (script, result.stdout, result.stderr)
        assert result.stderr == ("error: No module named 'agegender': install the package first: "
                                 "`pip install -e .` in the repository root\n"), script
    # detect.py stands in the repository root, beside the package, which it imports from there as before.
    detect = run(os.path.join(ROOT, "detect.py"), "--help")
    assert detect.returncode == 0 and detect.stdout.startswith("usage: detect.py"), detect.stderr


def test_requirements_txt_lists_exactly_the_packages_pyproject_toml_depends_on():
    import tomllib  # Python 3.11+, as the tests run on
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as file:
        dependencies = tomllib.load(file)["project"]["dependencies"]
    with open(os.path.join(ROOT, "requirements.txt"), encoding="utf-8") as file:
        requirements = [line.split("#")[0].strip() for line in file]
    assert sorted(filter(None, requirements)) == sorted(dependencies)
