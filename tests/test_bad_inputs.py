"""Bad inputs, damaged files, full disks and interruptions, as a careless user (or an unlucky one) meets
them: each ends in one line `error: <file>: <problem>` with no traceback, and whatever was there
before is left as it was.

Most cases need no training: a store of 300 real faces washed once, the bundled model, and run
folders started the way the training scripts start them. Full disks are small tmpfs mounts (root
only; skipped elsewhere).
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from argparse import Namespace

import cv2
import numpy as np
import pytest

from agegender import BUNDLED_MODELS
from conftest import ROOT, UTKFACE, copy_utkface, default_ctrl_c, run_script
from video_of_faces import make_face_video

# Each case runs a script as a user would (TensorFlow's import alone takes seconds): end to end.
pytestmark = pytest.mark.slow

JOINT_MODEL = os.path.join(BUNDLED_MODELS, "joint")


@pytest.fixture(autouse=True)
def tensorflow_log_level_unset(monkeypatch):
    """The scripts as a newcomer runs them: TensorFlow's log level left to the package."""
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """300 real faces, their store, a video of real faces, and a run folder as a training script starts it."""
    folder = tmp_path_factory.mktemp("assets")
    raw = folder / "raw"
    copy_utkface(raw, 300)
    run_script("others/wash_data.py", "--dataset", "utkface", "--src", raw, "--out", folder / "store", "--quiet")
    return Namespace(folder=folder, raw=raw, store=folder / "store", video=make_face_video(
                         str(folder / "faces.mp4"), [os.path.join(UTKFACE, sorted(os.listdir(UTKFACE))[5000])]),
                     run=start_run(folder / "run", folder / "store"))


def start_run(run, data):
    """A run folder as `joint/jointly.py --data DATA --run RUN` leaves it when stopped before its first
    epoch ends: its options in config.json."""
    from agegender import train_cli, train_options
    train_cli.start_run(Namespace(run=str(run), data=str(data), resume=False, force=False),
                        train_options.TrainConfig(tasks=("gender", "age_group")))
    return run


def copy_store(assets, folder):
    return shutil.copytree(assets.store, folder)


def copy_model(folder):
    return shutil.copytree(JOINT_MODEL, folder)


def snapshot(folder):
    """Every file below `folder` with a digest of its bytes."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as file:
                files[os.path.relpath(path, folder)] = hashlib.blake2b(file.read(), digest_size=16).hexdigest()
    return files


def truncate(path, keep_bytes):
    with open(path, "r+b") as file:
        file.truncate(keep_bytes)


def edit_json(path, change):
    with open(path, encoding="utf-8") as file:
        data = json.load(file)
    change(data)
    with open(path, "w", encoding="utf-8") as file:
        json.dump(data, file)


def first_shard(store, split="train", kind="images"):
    return os.path.join(store, split, f"{kind}-00000.npy")


def header_bytes(path):
    from agegender import store
    return store.npy_header_bytes(path)


# -- the cases ------------------------------------------------------------------------------------------
# Each prepares its files in the test's folder `here` and returns (the script's arguments, what the error
# line must name). Everything in `here` before the command must be unchanged after it.

def wash_force_onto_a_folder_of_documents(here, assets):
    (here / "notes").mkdir()
    (here / "notes" / "thesis.txt").write_text("four years of work")
    return ["others/wash_data.py", "--dataset", "utkface", "--src", assets.raw, "--out", here / "notes", "--force"], \
        here / "notes"


def wash_force_onto_a_web_app(here, assets):
    """A folder holding a manifest.json of its own is not a store."""
    (here / "webapp").mkdir()
    (here / "webapp" / "manifest.json").write_text('{"name": "my app", "start_url": "index.html"}')
    (here / "webapp" / "index.html").write_text("<html>my app</html>")
    return ["others/wash_data.py", "--dataset", "utkface", "--src", assets.raw, "--out", here / "webapp", "--force"], \
        here / "webapp"


def wash_force_onto_a_store_holding_notes(here, assets):
    copy_store(assets, here / "store")
    (here / "store" / "notes.txt").write_text("which faces I checked by hand")
    return ["others/wash_data.py", "--dataset", "utkface", "--src", assets.raw, "--out", here / "store", "--force"], \
        here / "store"


def wash_onto_a_store_without_force(here, assets):
    copy_store(assets, here / "store")
    return ["others/wash_data.py", "--dataset", "utkface", "--src", assets.raw, "--out", here / "store"], here / "store"


def wash_with_age_groups(text):
    def case(here, assets):
        return ["others/wash_data.py", "--dataset", "utkface", "--src", assets.raw, "--out", here / "store",
                "--age-groups", text], "--age-groups"
    return case


def wash_with_split(text):
    def case(here, assets):
        return ["others/wash_data.py", "--dataset", "utkface", "--src", assets.raw, "--out", here / "store",
                "--split", text], "--split"
    return case


def wash_with_workers_0(here, assets):
    return ["others/wash_data.py", "--dataset", "utkface", "--src", assets.raw, "--out", here / "store",
            "--workers", "0"], "--workers"


def wash_csv(content, encoding, named="faces.csv"):
    def case(here, assets):
        (here / "faces.csv").write_bytes(content.encode(encoding))
        return ["others/wash_data.py", "--dataset", "csv", "--src", here / "faces.csv", "--out", here / "store"], \
            here / named
    return case


def wash_zero_byte_mat(here, assets):
    (here / "wiki_crop").mkdir()
    (here / "wiki_crop" / "wiki.mat").write_bytes(b"")
    return ["others/wash_data.py", "--dataset", "wiki", "--src", here / "wiki_crop", "--out", here / "store"], \
        here / "wiki_crop" / "wiki.mat"


def wash_folder_without_a_face(here, assets):
    (here / "raw").mkdir()
    (here / "raw" / "30_1_0_20170101000000000.jpg.chip.jpg").write_bytes(b"not an image")
    (here / "raw" / "31_0_0_20170101000000001.jpg.chip.jpg").write_bytes(b"")
    return ["others/wash_data.py", "--dataset", "utkface", "--src", here / "raw", "--out", here / "store",
            "--quiet"], here / "store.dropped.csv"


def train_with(*options):
    def case(here, assets):
        return ["joint/jointly.py", "--data", assets.store, "--run", here / "run", *options], options[0]
    return case


def train_with_a_missing_teacher(here, assets):
    return ["joint/jointly.py", "--data", assets.store, "--run", here / "run", "--teacher", here / "no-model"], \
        here / "no-model"


def train_age_with_a_gender_teacher(here, assets):
    model = copy_model(here / "model")

    def gender_only(description):
        for field in ("class_counts", "temperatures", "classes"):
            del description[field]["age_group"]
        description["tasks"] = ["gender"]
    edit_json(os.path.join(model, "model.json"), gender_only)
    return ["age/age.py", "--data", assets.store, "--run", here / "run", "--teacher", model], model


def train_with_a_teacher_of_other_age_groups(here, assets):
    model = copy_model(here / "model")
    edit_json(os.path.join(model, "model.json"), lambda description: description.update(
        age_edges=[25, 46, 60], classes={**description["classes"], "age_group": ["0-24", "25-45", "46-59", "60+"]}))
    return ["joint/jointly.py", "--data", assets.store, "--run", here / "run", "--teacher", model], model


def train_with_a_colour_teacher(here, assets):
    from agegender.model import build_model, save_model  # TensorFlow, for this case alone
    with open(os.path.join(JOINT_MODEL, "model.json"), encoding="utf-8") as file:
        description = json.load(file)
    model = here / "colour-model"
    save_model(build_model("original", description["class_counts"], channels=3), model,
               {"classes": description["classes"], "age_edges": description["age_edges"]})
    return ["joint/jointly.py", "--data", assets.store, "--run", here / "run", "--teacher", model], model


def train_on_missing_store(here, assets):
    return ["joint/jointly.py", "--data", here / "no-store", "--run", here / "run"], here / "no-store"


def train_batch_larger_than_the_split(here, assets):
    return ["joint/jointly.py", "--data", assets.store, "--run", here / "run", "--batch-size", "1000"], assets.store


def train_force_onto_a_folder_of_documents(here, assets):
    (here / "notes").mkdir()
    (here / "notes" / "thesis.txt").write_text("four years of work")
    return ["joint/jointly.py", "--data", assets.store, "--run", here / "notes", "--force"], here / "notes"


def train_force_onto_an_app_with_a_config(here, assets):
    (here / "myapp").mkdir()
    (here / "myapp" / "config.json").write_text('{"theme": "dark"}')
    (here / "myapp" / "notes.txt").write_text("my notes")
    return ["joint/jointly.py", "--data", assets.store, "--run", here / "myapp", "--force"], here / "myapp"


def train_run_onto_a_file(here, assets):
    (here / "run").write_text("a file, not a folder")
    return ["joint/jointly.py", "--data", assets.store, "--run", here / "run"], here / "run"


def resume_on_a_store_washed_again(*options):
    """A run started on here/store, then the store washed again at the same path: from other faces (half
    of them), or with `options` (other age groups)."""
    def case(here, assets):
        copy_store(assets, here / "store")
        start_run(here / "run", here / "store")
        raw = here / "raw"
        raw.mkdir()
        for name in sorted(os.listdir(assets.raw))[::1 if options else 2]:
            shutil.copyfile(assets.raw / name, raw / name)
        run_script("others/wash_data.py", "--dataset", "utkface", "--src", raw, "--out", here / "store", "--force",
                   "--quiet", *options)
        return ["joint/jointly.py", "--data", here / "store", "--run", here / "run", "--resume"], here / "store"
    return case


def resume_an_older_run_on_a_store_washed_again_with_other_age_groups(here, assets):
    """A run of one epoch started before stores had an identity (its config.json has none), then its store
    washed again with three age groups: the checkpoint's age-group head has four outputs."""
    copy_store(assets, here / "store")
    run_script("joint/jointly.py", "--data", here / "store", "--run", here / "run", "--epochs", "1",
               "--batch-size", "64", "--quiet")
    edit_json(here / "run" / "config.json", lambda config: config.pop("data_identity"))
    run_script("others/wash_data.py", "--dataset", "utkface", "--src", assets.raw, "--out", here / "store", "--force",
               "--quiet", "--age-groups", "30,60")
    return ["joint/jointly.py", "--data", here / "store", "--run", here / "run", "--resume", "--epochs", "2"], \
        here / "store"


def store_without_test_faces(here, assets):
    """300 faces washed with half a percent for the test split: none of them falls in it."""
    run_script("others/wash_data.py", "--dataset", "utkface", "--src", assets.raw, "--out", here / "store",
               "--split", "90,9.5,0.5", "--quiet")
    with open(here / "store" / "manifest.json", encoding="utf-8") as file:
        assert json.load(file)["splits"]["test"]["faces"] == 0
    return here / "store"


def train_on_a_store_without_test_faces(here, assets):
    return ["joint/jointly.py", "--data", store_without_test_faces(here, assets), "--run", here / "run"], here / "store"


def evaluate_on_a_store_without_test_faces(here, assets):
    return ["joint/test_model.py", "--data", store_without_test_faces(here, assets), "--out", here / "png"], \
        here / "store"


def wash_csv_race_out_of_the_coding(here, assets):
    """A real face whose CSV row gives race 40000 (UTKFace's races are 0..4): more than the store's int16 holds."""
    name = sorted(os.listdir(assets.raw))[0]
    (here / "faces.csv").write_text(f"path,age,gender,race\n{assets.raw / name},30,f,40000\n", encoding="utf-8")
    return ["others/wash_data.py", "--dataset", "csv", "--src", here / "faces.csv", "--out", here / "store"], \
        here / "store.dropped.csv"


def resume_with_other_options(here, assets):
    shutil.copytree(assets.run, here / "run")
    return ["joint/jointly.py", "--data", assets.store, "--run", here / "run", "--resume", "--arch", "improved",
            "--batch-size", "32"], "--batch-size 32"


def resume_with_another_script(here, assets):
    shutil.copytree(assets.run, here / "run")  # a joint run
    return ["gender/gender.py", "--data", assets.store, "--run", here / "run", "--resume"], here / "run"


def resume_a_run_of_an_older_version(here, assets):
    shutil.copytree(assets.run, here / "run")
    edit_json(here / "run" / "config.json", lambda config: config.update(tasks=["gender", "age"]))  # before age_group
    return ["joint/jointly.py", "--data", assets.store, "--run", here / "run", "--resume"], here / "run"


def resume_on_another_store(here, assets):
    shutil.copytree(assets.run, here / "run")
    copy_store(assets, here / "other-store")
    return ["joint/jointly.py", "--data", here / "other-store", "--run", here / "run", "--resume"], \
        here / "other-store"


def damaged_store(damage):
    """Training on a copy of the store damaged by `damage(store)`, which returns the file to be named."""
    def case(here, assets):
        store = copy_store(assets, here / "store")
        return ["joint/jointly.py", "--data", store, "--run", here / "run"], damage(store)
    return case


def images_cut_to_whole_faces(store):
    path = first_shard(store)
    truncate(path, header_bytes(path) + 100 * 128 * 128)
    return path


def images_cut_mid_face(store):
    path = first_shard(store)
    truncate(path, os.path.getsize(path) - 5000)
    return path


def labels_cut_short(store):
    path = first_shard(store, kind="labels")
    truncate(path, header_bytes(path) + 8 * 40)
    return path


def manifest_counts_more_faces(store):
    edit_json(os.path.join(store, "manifest.json"), lambda manifest: manifest["splits"]["valid"].update(faces=900))
    return os.path.join(store, "manifest.json")


def evaluate_json_into(target):
    def case(here, assets):
        (here / "figures").mkdir()
        return ["joint/test_model.py", "--data", assets.store, "--json", here / target], here / target
    return case


def damaged_model(damage, script="joint/test_model.py"):
    """A script run with a copy of the bundled model damaged by `damage(model)`, which returns the file to
    be named."""
    def case(here, assets):
        model = copy_model(here / "model")
        arguments = {"joint/test_model.py": ["--data", assets.store], "detect.py": [], "joint/export.py":
                     ["--data", assets.store, "--out", here / "export"]}[script]
        return [script, "--model", model, *arguments], damage(model)
    return case


def weights_cut_short(model):
    path = os.path.join(model, "weights.npz")
    truncate(path, os.path.getsize(path) // 2)
    return model


def weights_bit_flipped(model):
    path = os.path.join(model, "weights.npz")
    with open(path, "r+b") as file:
        file.seek(os.path.getsize(path) // 2)
        byte = file.read(1)
        file.seek(-1, os.SEEK_CUR)
        file.write(bytes([byte[0] ^ 0x10]))
    return model


def class_names_of_three(model):
    path = os.path.join(model, "model.json")
    edit_json(path, lambda description: description["classes"].update(age_group=["a", "b", "d"]))
    return path


def task_renamed(old, new):
    def damage(model):
        path = os.path.join(model, "model.json")

        def rename(description):
            for field in ("class_counts", "temperatures", "classes"):
                description[field] = {new if task == old else task: value for task, value in description[field].items()}
            description["tasks"] = [new if task == old else task for task in description["tasks"]]
        edit_json(path, rename)
        return path
    return damage


def zooms_of_zero(model):
    path = os.path.join(model, "model.json")
    edit_json(path, lambda description: description.update(zooms=[1.0, 0]))
    return path


def model_json(change):
    """A damage: model.json edited by `change(description)`."""
    def damage(model):
        path = os.path.join(model, "model.json")
        edit_json(path, change)
        return path
    return damage


def gender_temperature(value):
    return model_json(lambda description: description["temperatures"].update(gender=value))


def input_size_of(value, trained_at=None):
    """input_size changed, and the size the network was trained at (its train_config's) with it where given."""
    def change(description):
        description["input_size"] = value
        if trained_at is None:
            del description["train_config"]["input_size"]
    return model_json(change)


def weights_with_a_nan(model):
    path = os.path.join(model, "weights.npz")
    with np.load(path) as archive:
        weights = dict(archive)
    weights["fc/kernel"][0, 0] = np.nan
    np.savez_compressed(path, **weights)
    return path


def calibrate_without_a_model(here, assets):
    return ["joint/test_model.py", "--data", assets.store, "--calibrate"], "--calibrate"


def calibrate_on_a_small_valid_split(here, assets):
    model = copy_model(here / "model")  # unchanged after: nothing written
    return ["joint/test_model.py", "--data", assets.store, "--model", model, "--calibrate"], assets.store


def age_edges_of_two(model):
    path = os.path.join(model, "model.json")
    edit_json(path, lambda description: description.update(age_edges=[30, 60]))
    return path


def detect_into_a_file(here, assets):
    (here / "out").write_text("a file, not a folder")
    return ["detect.py", "--out", here / "out"], here / "out"


def detect_not_an_image(here, assets):
    (here / "photo.jpg").write_text("a text saved under an image's name")
    return ["detect.py", here / "photo.jpg", "--out", here / "out"], here / "photo.jpg"


def detect_a_jpeg_cut_short(here, assets):
    """The sample portrait's first 40%: OpenCV's imread decodes the rows that are there over grey."""
    from agegender.detect_cli import sample_portrait
    with open(sample_portrait(), "rb") as file:
        data = file.read()
    (here / "photo.jpg").write_bytes(data[:len(data) * 2 // 5])
    return ["detect.py", here / "photo.jpg", "--out", here / "out"], here / "photo.jpg"


def wash_a_chip_cut_short(here, assets):
    (here / "raw").mkdir()
    name = sorted(os.listdir(assets.raw))[0]
    (here / "raw" / name).write_bytes((assets.raw / name).read_bytes()[:3000])
    return ["others/wash_data.py", "--dataset", "utkface", "--src", here / "raw", "--out", here / "store",
            "--quiet"], here / "store.dropped.csv"


def video_with(*options, named):
    def case(here, assets):
        (here / "folder").mkdir()
        return ["joint/real_time.py", "--source", assets.video, "--no-display", *options], named(here)
    return case


def video_source_not_a_video(here, assets):
    (here / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 and then nothing")
    return ["joint/real_time.py", "--source", here / "clip.mp4", "--no-display"], here / "clip.mp4"


def export_onto_a_folder_of_documents(here, assets):
    (here / "notes").mkdir()
    (here / "notes" / "thesis.txt").write_text("four years of work")
    return ["joint/export.py", "--data", assets.store, "--out", here / "notes", "--no-int8"], here / "notes"


CASES = [
    # (script's exit code, a phrase of the problem, the case)
    pytest.param(1, "is not a dataset store", wash_force_onto_a_folder_of_documents, id="wash --force onto documents"),
    pytest.param(1, "is not a dataset store written by this program", wash_force_onto_a_web_app,
                 id="wash --force onto a web app"),
    pytest.param(1, "is not a dataset store alone: it also holds notes.txt", wash_force_onto_a_store_holding_notes,
                 id="wash --force onto a store holding notes"),
    pytest.param(1, "pass --force", wash_onto_a_store_without_force, id="wash onto a store"),
    pytest.param(2, "no preset of that many groups", wash_with_age_groups("7"), id="wash --age-groups 7"),
    pytest.param(2, "strictly ascending", wash_with_age_groups("60,30"), id="wash --age-groups 60,30"),
    pytest.param(2, "not a finite number", wash_with_split("inf,5,10"), id="wash --split inf,5,10"),
    pytest.param(2, "needs a share above 0", wash_with_split("85,0,15"), id="wash --split 85,0,15"),
    pytest.param(2, "give three proportions", wash_with_split("85,15"), id="wash --split 85,15"),
    pytest.param(2, "at least 1", wash_with_workers_0, id="wash --workers 0"),
    pytest.param(1, "not UTF-8", wash_csv("path,age,gender\nMüller.jpg,30,f\n", "latin-1"), id="wash Latin-1 CSV"),
    pytest.param(1, "no usable face left after cleaning (unparsable_label 1)", wash_csv("path,age,gender\nface.jpg,inf,f\n", "utf-8", "store.dropped.csv"),
                 id="wash CSV age inf"),
    pytest.param(1, "no usable face left after cleaning (race_out_of_range 1)", wash_csv_race_out_of_the_coding,
                 id="wash CSV race 40000"),
    pytest.param(1, "not an IMDB-WIKI 'wiki' metadata file", wash_zero_byte_mat, id="wash zero-byte .mat"),
    pytest.param(1, "no usable face left after cleaning (empty_file 1, unreadable 1)", wash_folder_without_a_face,
                 id="wash no face left keeps the drop report"),
    pytest.param(2, "at least 1", train_with("--batch-size", "0"), id="train --batch-size 0"),
    pytest.param(2, "at least 1", train_with("--batch-size", "-5"), id="train --batch-size -5"),
    pytest.param(2, "at least 1", train_with("--epochs", "0"), id="train --epochs 0"),
    pytest.param(2, "above 0", train_with("--learning-rate", "0"), id="train --learning-rate 0"),
    pytest.param(2, "up to (not including) 1", train_with("--dropout", "1"), id="train --dropout 1"),
    pytest.param(2, "at least 1", train_with("--patience", "0"), id="train --patience 0"),
    pytest.param(2, "there is no exact-age head to train", train_with("--expected-age-loss", "0.25"),
                 id="train --expected-age-loss without --exact-age"),
    pytest.param(2, "8 is out of range: it must be from 16 to 512", train_with("--input-size", "8"),
                 id="train --input-size 8 (a model.json would refuse it)"),
    pytest.param(2, "there is no teacher to share the targets with", train_with("--teacher-share", "0.5"),
                 id="train --teacher-share without a teacher"),
    pytest.param(1, "not a saved model (model.json missing)", train_with_a_missing_teacher, id="train --teacher missing"),
    pytest.param(1, "none of the tasks this run learns (age_group)", train_age_with_a_gender_teacher,
                 id="train --teacher of other tasks"),
    pytest.param(1, "the teacher's age groups end at [25, 46, 60], the store's at [30, 46, 60]",
                 train_with_a_teacher_of_other_age_groups, id="train --teacher of other age groups"),
    pytest.param(1, "the teacher takes RGB faces but the store", train_with_a_colour_teacher,
                 id="train --teacher of other channels"),
    pytest.param(1, "not a dataset store", train_on_missing_store, id="train on a missing store"),
    pytest.param(1, "fewer than one batch", train_batch_larger_than_the_split, id="train batch > split"),
    pytest.param(1, "is not a run folder", train_force_onto_a_folder_of_documents, id="train --force onto documents"),
    pytest.param(1, "is not a run folder written by this program", train_force_onto_an_app_with_a_config,
                 id="train --force onto an app with a config.json"),
    pytest.param(1, "is a file, not a run folder", train_run_onto_a_file, id="train --run onto a file"),
    pytest.param(1, "not the store the run", resume_on_a_store_washed_again(), id="resume on a store washed again"),
    pytest.param(1, "not the store the run", resume_on_a_store_washed_again("--age-groups", "30,60"),
                 id="resume on a store washed again with other age groups"),
    pytest.param(1, "its age groups end at [30, 60], but the run",
                 resume_an_older_run_on_a_store_washed_again_with_other_age_groups,
                 id="resume an older run on a store washed again with other age groups"),
    pytest.param(1, "the test split is empty", train_on_a_store_without_test_faces, id="train without test faces"),
    pytest.param(1, "its test split holds no faces", evaluate_on_a_store_without_test_faces,
                 id="evaluate without test faces"),
    pytest.param(1, "--arch improved (the run's: original)", resume_with_other_options, id="resume other options"),
    pytest.param(1, "the run's:", resume_on_another_store, id="resume on another store"),
    pytest.param(1, "trains gender, age_group; resume it with joint/jointly.py", resume_with_another_script,
                 id="resume with another script"),
    pytest.param(1, "an older version started it", resume_a_run_of_an_older_version, id="resume an older run"),
    pytest.param(1, "holds 1638400 bytes of images where the manifest lists 255 faces", damaged_store(images_cut_to_whole_faces), id="store images cut to 100 faces"),
    pytest.param(1, "cut short", damaged_store(images_cut_mid_face), id="store images cut mid-face"),
    pytest.param(1, "cut short", damaged_store(labels_cut_short), id="store labels cut short"),
    pytest.param(1, "the valid shards hold", damaged_store(manifest_counts_more_faces), id="manifest counts disagree"),
    pytest.param(2, "does not exist", evaluate_json_into("missing/figures.json"), id="evaluate --json into a missing folder"),
    pytest.param(2, "is a folder", evaluate_json_into("figures"), id="evaluate --json onto a folder"),
    pytest.param(2, "0 is out of range: it must be from 0.5 to 2.0", lambda here, assets: (
        ["joint/test_model.py", "--data", assets.store, "--calibrate", "--zooms", "1", "0"], "--zooms"),
        id="calibrate --zooms 0"),
    pytest.param(2, "go with --calibrate", lambda here, assets: (
        ["joint/test_model.py", "--data", assets.store, "--zooms", "1", "1.1"], "--zooms"), id="--zooms alone"),
    pytest.param(1, "damaged model", damaged_model(weights_cut_short), id="weights.npz cut short"),
    pytest.param(1, "damaged model", damaged_model(weights_bit_flipped), id="weights.npz bit flipped"),
    pytest.param(1, "class names are ['a', 'b', 'd']", damaged_model(class_names_of_three), id="model.json 3 names"),
    pytest.param(1, "the age edges [30, 60] give", damaged_model(age_edges_of_two), id="model.json 2 edges"),
    pytest.param(1, "zooms [1.0, 0], not a list of numbers from 0.5 to 2.0", damaged_model(zooms_of_zero),
                 id="model.json zoom 0"),
    pytest.param(1, "unknown task 'age' (the tasks are gender, age_group, ", damaged_model(task_renamed("age_group", "age")),
                 id="model.json of an older version"),
    pytest.param(1, "temperatures['gender'] -0.7, not a finite number above 0", damaged_model(gender_temperature(-0.7)),
                 id="model.json temperature negative"),
    pytest.param(1, "temperatures['gender'] 0, not a finite number above 0", damaged_model(gender_temperature(0)),
                 id="model.json temperature 0"),
    pytest.param(1, "temperatures['gender'] '0.7', not a finite number", damaged_model(gender_temperature("0.7")),
                 id="model.json temperature a string"),
    pytest.param(1, "temperatures['gender'] [0.7], not a finite number", damaged_model(gender_temperature([0.7])),
                 id="model.json temperature a list"),
    pytest.param(1, "temperatures['gender'] -0.7, not a finite number above 0",
                 damaged_model(gender_temperature(-0.7), "detect.py"), id="detect model.json temperature negative"),
    pytest.param(1, "temperatures['age_interval'] -0.7, not a finite number above 0", damaged_model(model_json(
        lambda description: description["temperatures"].update(age_interval=-0.7))),
                 id="model.json age interval temperature negative"),
    pytest.param(1, "classes [['male', 'female'], ['0-29', '30-45', '46-59', '60+']], not a mapping of task",
                 damaged_model(model_json(lambda description: description.update(
                     classes=list(description["classes"].values())))), id="model.json classes a list"),
    pytest.param(1, "input_size '128', not a whole number of pixels from 16 to 512",
                 damaged_model(input_size_of("128", 128)), id="model.json input_size a string"),
    pytest.param(1, "input_size 0, not a whole number of pixels", damaged_model(input_size_of(0, 128)),
                 id="model.json input_size 0"),
    pytest.param(1, "input_size 64, but the network was trained at 128 (its train_config)",
                 damaged_model(input_size_of(64, 128)), id="model.json input_size other than trained"),
    pytest.param(1, "input_size 64, but the weights' FC layer takes 8x8 feature maps (an input_size from 113 to 128)",
                 damaged_model(input_size_of(64)), id="model.json input_size other than the weights'"),
    pytest.param(1, "channels 3, but the weights' first layer takes faces of 1",
                 damaged_model(model_json(lambda description: description.update(channels=3))),
                 id="model.json channels other than the weights'"),
    pytest.param(1, "fc/kernel holds values that are not numbers", damaged_model(weights_with_a_nan),
                 id="weights.npz with a NaN"),
    pytest.param(2, "name the model folder to change with --model", calibrate_without_a_model,
                 id="calibrate without --model (the bundled one is not rewritten)"),
    pytest.param(1, "fewer than the 10 of each class a temperature fit needs", calibrate_on_a_small_valid_split,
                 id="calibrate on a valid split too small"),
    pytest.param(1, "damaged model", damaged_model(weights_cut_short, "detect.py"), id="detect damaged model"),
    pytest.param(1, "damaged model", damaged_model(weights_bit_flipped, "joint/export.py"), id="export damaged model"),
    pytest.param(2, "is a file", detect_into_a_file, id="detect --out onto a file"),
    pytest.param(1, "not an image OpenCV can read", detect_not_an_image, id="detect not an image"),
    pytest.param(1, "not an image OpenCV can read (corrupt, cut short", detect_a_jpeg_cut_short,
                 id="detect a JPEG cut short"),
    pytest.param(1, "no usable face left after cleaning (unreadable 1)", wash_a_chip_cut_short,
                 id="wash a JPEG chip cut short"),
    pytest.param(2, "at least 1", video_with("--max-frames", "-1", named=lambda here: "--max-frames"),
                 id="video --max-frames -1"),
    pytest.param(2, "is a folder", video_with("--out", "folder", named=lambda here: "folder"),
                 id="video --out onto a folder"),
    pytest.param(2, "does not exist", video_with("--out", "missing/out.mp4", named=lambda here: "missing/out.mp4"),
                 id="video --out into a missing folder"),
    pytest.param(1, "not a video OpenCV can read", video_source_not_a_video, id="video source not a video"),
    pytest.param(1, "is not an export", export_onto_a_folder_of_documents, id="export onto documents"),
]


def error_line(result):
    """The one line a refused command prints, checked to be all it prints on stderr."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("code, problem, case", CASES)
def test_a_bad_input_gets_one_line_and_changes_nothing(code, problem, case, assets, tmp_path):
    here = tmp_path / "here"
    here.mkdir()
    arguments, named = case(here, assets)
    before = snapshot(here)
    result = run_script(*arguments, check=False, timeout=300, cwd=here)  # relative paths land in `here`
    line = error_line(result)
    assert result.returncode == code, result.stderr
    assert str(named) in line and problem in line, line
    after = snapshot(here)
    reports = {name for name in after if name.endswith(".dropped.csv")}  # the one thing a refusal may leave
    assert {name: after[name] for name in after if name not in reports} == before


def test_the_drop_report_of_a_refused_store_says_why(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "30_1_0_20170101000000000.jpg.chip.jpg").write_bytes(b"not an image")
    result = run_script("others/wash_data.py", "--dataset", "utkface", "--src", tmp_path / "raw",
                        "--out", tmp_path / "store", check=False)
    assert result.returncode == 1
    with open(tmp_path / "store.dropped.csv", encoding="utf-8") as file:
        assert file.read().splitlines()[1:] == [f"utkface/30_1_0_20170101000000000.jpg.chip.jpg,"
                                                f"{tmp_path}/raw/30_1_0_20170101000000000.jpg.chip.jpg,unreadable"]


def test_a_csv_saved_by_a_spreadsheet_with_a_byte_order_mark_is_read(assets, tmp_path):
    names = sorted(os.listdir(assets.raw))[:40]
    rows = "".join(f"{os.path.join(assets.raw, name)},{name.split('_')[0]},{name.split('_')[1]}\n" for name in names)
    (tmp_path / "faces.csv").write_bytes(("path,age,gender\n" + rows).encode("utf-8-sig"))
    result = run_script("others/wash_data.py", "--dataset", "csv", "--src", tmp_path / "faces.csv",
                        "--out", tmp_path / "store", "--quiet", check=False)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "store" / "manifest.json", encoding="utf-8") as file:
        assert json.load(file)["counts"]["kept"] == 40


# -- interruptions --------------------------------------------------------------------------------------

def start_wash(out, *options):
    """A wash of all of UTKFace (20,100 faces, several seconds) in a session of its own, as from a terminal."""
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "others/wash_data.py"), "--dataset", "utkface",
                             "--src", UTKFACE, "--out", out, "--quiet", "--workers", "2", *options],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=default_ctrl_c)


def wait_for_spools(out, seconds=60):
    """The temporary store, once its workers are spooling faces."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        partials = [name for name in os.listdir(os.path.dirname(out)) if ".partial-" in name]
        if partials and any(name.startswith("spool-") for name in os.listdir(os.path.join(os.path.dirname(out),
                                                                                              partials[0]))):
            return os.path.join(os.path.dirname(out), partials[0])
        time.sleep(0.05)
    raise AssertionError("the wash never started spooling faces")


def test_ctrl_c_during_a_wash_prints_one_line_and_leaves_nothing(tmp_path, assets):
    out = str(tmp_path / "store")
    shutil.copytree(assets.store, out)
    before = snapshot(out)
    wash = start_wash(out, "--force")
    wait_for_spools(out)
    os.killpg(wash.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: every process of the group
    _, stderr = wash.communicate(timeout=60)
    assert wash.returncode == 130
    assert stderr.strip() == "interrupted: nothing was written"
    assert sorted(os.listdir(tmp_path)) == ["store"] and snapshot(out) == before


# A Ctrl-C that lands inside code that swallows it, as TensorFlow's bare `except:` clauses do; then either
# a loop that checks (training checks after each step) or an error TensorFlow made of it.
SWALLOWED_CTRL_C = """
import os, signal, sys, time
from agegender import cli

def main():
    with cli.CtrlC() as ctrl_c:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)  # a sleep is where Python's handler runs and raises
        except BaseException:
            pass
        if sys.argv[1] == "loop":
            ctrl_c.check()
        else:
            raise RuntimeError("in user code: KeyboardInterrupt")
    print("went on")

cli.run(main)
"""


@pytest.mark.parametrize("then", ["loop", "error"])
def test_a_swallowed_ctrl_c_still_interrupts(then):
    result = subprocess.run([sys.executable, "-c", SWALLOWED_CTRL_C, then], capture_output=True, text=True,
                            cwd=ROOT, preexec_fn=default_ctrl_c, timeout=60)
    assert result.returncode == 130 and result.stderr.strip() == "interrupted", result.stderr
    assert "went on" not in result.stdout


# A recording stopped by Ctrl-C at its 10th frame, plainly or where TensorFlow would turn it into another error.
CTRL_C_WHILE_RECORDING = """
import os, signal, sys, time
from agegender import cli, video
from agegender.predict import Predictor

def ctrl_c_at_frame_10(frames, results):
    if frames == 10:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)
        except BaseException:
            if sys.argv[3] == "swallowed":
                raise RuntimeError("in user code: KeyboardInterrupt")
            raise

cli.run(lambda: video.run(Predictor(), sys.argv[1], out=sys.argv[2], on_frame=ctrl_c_at_frame_10))
"""


@pytest.mark.parametrize("ctrl_c", ["plain", "swallowed"])
def test_ctrl_c_ends_a_recording_and_keeps_it(tmp_path, assets, ctrl_c):
    out = tmp_path / "recording.mp4"
    result = subprocess.run([sys.executable, "-c", CTRL_C_WHILE_RECORDING, str(assets.video), str(out), ctrl_c],
                            capture_output=True, text=True, cwd=ROOT, preexec_fn=default_ctrl_c, timeout=300)
    assert result.returncode == 130 and result.stderr.strip().endswith("interrupted"), result.stderr
    recording = cv2.VideoCapture(str(out))
    assert int(recording.get(cv2.CAP_PROP_FRAME_COUNT)) == 10
    assert os.listdir(tmp_path) == ["recording.mp4"]  # and no temporary left beside it


def test_a_killed_wash_leaves_a_temporary_that_the_next_wash_removes(tmp_path, assets):
    out = str(tmp_path / "store")
    wash = start_wash(out)
    leftover = wait_for_spools(out)
    os.killpg(wash.pid, signal.SIGKILL)
    wash.wait()
    assert os.path.isdir(leftover)
    run_script("others/wash_data.py", "--dataset", "utkface", "--src", assets.raw, "--out", out, "--quiet")
    assert sorted(os.listdir(tmp_path)) == ["store"]


# A store write killed after moving the old store aside, before renaming the new one in.
KILLED_MID_SWAP = """
import os, sys
from agegender import atomic, store

def replace_then_die(source, target, replace=os.replace):
    replace(source, target)
    if ".old-" in os.fspath(target):
        os._exit(9)

os.replace = replace_then_die
with atomic.replacing_folder(sys.argv[1], store.store_problem) as folder:
    open(os.path.join(folder, "manifest.json"), "w").write("the new store, never finished")
"""


def test_a_swap_killed_halfway_is_undone_by_the_next_write_and_only_it(tmp_path, assets):
    """The next write to the same place brings the old store back and removes the half-written one, as
    the killed write's journal says; the user's backup beside it, named as leftovers once were, stays."""
    from agegender import atomic
    shutil.copytree(assets.store, tmp_path / "store")
    before = snapshot(tmp_path / "store")
    (tmp_path / "store.old-20231201").mkdir()
    (tmp_path / "store.old-20231201" / "manifest.json").write_text("the user's backup")
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_SWAP, str(tmp_path / "store")], cwd=ROOT)
    assert killed.returncode == 9 and not (tmp_path / "store").exists()
    atomic.remove_leftovers(tmp_path / "store")
    assert sorted(os.listdir(tmp_path)) == ["store", "store.old-20231201"]
    assert snapshot(tmp_path / "store") == before
    assert (tmp_path / "store.old-20231201" / "manifest.json").read_text() == "the user's backup"


def test_a_wash_leaves_a_backup_named_like_an_old_leftover_alone(tmp_path, assets):
    (tmp_path / "utkdata.old-20231201").mkdir()
    (tmp_path / "utkdata.old-20231201" / "notes.txt").write_text("my backup")
    run_script("others/wash_data.py", "--dataset", "utkface", "--src", assets.raw, "--out", tmp_path / "utkdata",
               "--quiet")
    assert sorted(os.listdir(tmp_path)) == ["utkdata", "utkdata.old-20231201"]
    assert (tmp_path / "utkdata.old-20231201" / "notes.txt").read_text() == "my backup"


def test_a_link_planted_at_a_temporary_name_is_never_followed(tmp_path):
    """The name the previous version wrote through (`<name>.partial-<pid>.<ext>`), planted as a link to a
    user's file: the write goes elsewhere and the file is untouched."""
    from agegender import atomic
    (tmp_path / "thesis.txt").write_text("four years of work")
    (tmp_path / "out").mkdir()
    os.symlink(tmp_path / "thesis.txt", tmp_path / "out" / f"photo_faces.partial-{os.getpid()}.json")
    atomic.write_json(tmp_path / "out" / "photo_faces.json", {"faces": 1})
    assert (tmp_path / "thesis.txt").read_text() == "four years of work"
    assert json.loads((tmp_path / "out" / "photo_faces.json").read_text()) == {"faces": 1}


def test_two_images_of_one_name_get_two_annotated_copies(tmp_path):
    from agegender.detect_cli import sample_portrait
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copyfile(sample_portrait(), tmp_path / folder / "photo.jpg")
    result = run_script("detect.py", tmp_path / "a" / "photo.jpg", tmp_path / "b" / "photo.jpg", "--out",
                        tmp_path / "out", "--no-model")
    assert sorted(os.listdir(tmp_path / "out")) == ["photo-2_faces.jpg", "photo_faces.jpg"]
    assert f"-> {tmp_path / 'out' / 'photo-2_faces.jpg'} (renamed: photo_faces.jpg is an earlier image's)" \
        in result.stdout


def test_a_folder_scan_says_what_it_passed_over(tmp_path):
    from agegender.detect_cli import sample_portrait
    (tmp_path / "photos").mkdir()
    shutil.copyfile(sample_portrait(), tmp_path / "photos" / "portrait.jpg")
    (tmp_path / "photos" / "notes.txt").write_text("who is who")
    (tmp_path / "photos" / "older").mkdir()
    result = run_script("detect.py", tmp_path / "photos", "--out", tmp_path / "out", "--no-model")
    assert result.stderr.splitlines() == [
        f"note: {tmp_path / 'photos'}: passed over 2 of its 3 entries: folders and files not named as images "
        "(.jpg, .jpeg, .png, .bmp, .tif, .tiff, .webp)"]
    assert "portrait.jpg: 1 face(s)" in result.stdout


# A Ctrl-C that arrives while the training script imports TensorFlow.
CTRL_C_DURING_THE_TENSORFLOW_IMPORT = """
import os, signal, sys, time
from agegender import train_cli

class CtrlCAtTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow":
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)

sys.meta_path.insert(0, CtrlCAtTensorFlow())
sys.argv = ["jointly.py", "--data", sys.argv[1], "--run", sys.argv[2]]
train_cli.main()
"""


def test_ctrl_c_while_a_training_script_starts_prints_one_line(tmp_path, assets):
    result = subprocess.run([sys.executable, "-c", CTRL_C_DURING_THE_TENSORFLOW_IMPORT, str(assets.store),
                             str(tmp_path / "run")], capture_output=True, text=True, cwd=ROOT,
                            preexec_fn=default_ctrl_c, timeout=120)
    assert result.returncode == 130 and result.stderr.strip() == "interrupted: nothing was written", result.stderr
    assert os.listdir(tmp_path) == []


# -- full disks -----------------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path, request):
    """A small file system (150 KB unless the test asks for another size) holding one file of ours, or a
    skip where mounting one is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    size = getattr(request, "param", "150k")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    (disk / "keep.txt").write_text("there before")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def assert_disk_as_before(disk):
    assert os.listdir(disk) == ["keep.txt"] and (disk / "keep.txt").read_text() == "there before"


def test_full_disk_while_washing(small_disk, assets):
    # 16 workers, as on a 16-core machine: when the first to find the disk full ended the pool, the
    # others could be killed mid-reply and the wash hang for good (3 runs in 21 before the fix), so a
    # hang fails here in two minutes rather than at the suite's end.
    result = run_script("others/wash_data.py", "--dataset", "utkface", "--src", assets.raw,
                        "--out", small_disk / "store", "--quiet", "--workers", "16", check=False, timeout=120)
    assert result.returncode == 1
    assert error_line(result) == (f"error: {small_disk / 'store'}: cannot write it (No space left on device); "
                                  "nothing there was changed")
    assert_disk_as_before(small_disk)


def test_full_disk_while_exporting(small_disk, assets):
    result = run_script("joint/export.py", "--data", assets.store, "--out", small_disk / "export", "--no-int8",
                        check=False)
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith(f"error: {small_disk / 'export'}: cannot write") and "No space left on device" in line
    assert_disk_as_before(small_disk)


def test_full_disk_while_writing_a_video(small_disk, assets):
    result = run_script("joint/real_time.py", "--source", assets.video, "--no-display",
                        "--out", small_disk / "annotated.mp4", check=False)
    assert result.returncode == 1
    assert error_line(result).startswith(f"error: {small_disk / 'annotated.mp4'}: the video could not be "
                                         "written whole")
    assert_disk_as_before(small_disk)


@pytest.mark.parametrize("small_disk", ["20k"], indirect=True)
def test_ctrl_c_while_recording_onto_a_full_disk_says_the_recording_was_lost(small_disk, assets):
    out = small_disk / "recording.mp4"
    result = subprocess.run([sys.executable, "-c", CTRL_C_WHILE_RECORDING, str(assets.video), str(out), "plain"],
                            capture_output=True, text=True, cwd=ROOT, preexec_fn=default_ctrl_c, timeout=300)
    assert result.returncode == 130
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"interrupted ({out}: the video could not be written whole"), result.stderr
    assert_disk_as_before(small_disk)


def test_the_same_video_on_a_disk_with_room_is_written_whole(tmp_path, assets):
    result = run_script("joint/real_time.py", "--source", assets.video, "--no-display",
                        "--out", tmp_path / "annotated.mp4")
    assert "annotated video in" in result.stdout
    written = cv2.VideoCapture(str(tmp_path / "annotated.mp4"))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 90
    written.release()
    assert os.listdir(tmp_path) == ["annotated.mp4"]


@pytest.mark.parametrize("small_disk, failing_write", [("150k", "/model: cannot write it"), ("20m", ": No space")],
                         ids=["the model does not fit", "the checkpoint does not fit"], indirect=["small_disk"])
def test_full_disk_while_training(small_disk, failing_write, assets):
    """One epoch on 255 faces (about 20 s), with the run folder on a small disk: 150 KB hold no model
    (8.8 MB), 20 MB hold the model but not the checkpoint beside it (the weights and Adam's two moments)."""
    result = run_script("joint/jointly.py", "--data", assets.store, "--run", small_disk / "run",
                        "--epochs", "1", "--batch-size", "64", "--quiet", check=False)
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith(f"error: {small_disk / 'run'}{failing_write}") and "No space left on device" in line
    assert line.endswith("0 finished epoch(s) are saved: once that is fixed, run the same command with --resume")
    assert (small_disk / "keep.txt").read_text() == "there before"
    assert not [name for name in os.listdir(small_disk / "run") if ".partial-" in name]


@pytest.mark.parametrize("small_disk", ["20m"], indirect=True)
def test_a_checkpoint_that_does_not_fit_leaves_no_half_of_it(small_disk, assets):
    """As test_full_disk_while_training's second case; then --resume, on the same full disk."""
    command = ["joint/jointly.py", "--data", assets.store, "--run", small_disk / "run", "--epochs", "1",
               "--batch-size", "64", "--quiet"]
    for options in ([], ["--resume"]):
        result = run_script(*command, *options, check=False)
        assert result.returncode == 1 and "No space left on device" in error_line(result)
        assert not [name for name in os.listdir(small_disk / "run" / "checkpoints") if name.endswith("_temp")]


def test_a_read_only_place_for_a_run_gets_one_line(tmp_path, assets):
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() == 0:  # root writes through permissions: a read-only mount instead
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True)
        if mounted.returncode:
            pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.decode().strip()}")
    else:
        folder.chmod(0o555)
    try:
        result = run_script("joint/jointly.py", "--data", assets.store, "--run", folder / "run", check=False)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(folder)], check=True)
    assert result.returncode == 1
    assert error_line(result).startswith(f"error: {folder / 'run'}: "), result.stderr


# -- TensorFlow's start-up lines --------------------------------------------------------------------------

def test_a_newcomers_first_screen_shows_only_our_lines(tmp_path):
    result = run_script("detect.py", "--out", tmp_path, fresh_process=True)
    assert result.stderr == ""
    assert "1 face(s)" in result.stdout


def test_tensorflows_own_lines_come_back_with_its_usual_variable():
    result = subprocess.run([sys.executable, "-c", "import agegender.model"], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert result.returncode == 0
    assert "oneDNN custom operations are on" in result.stderr


def test_the_results_table_explains_its_options_and_refuses_a_missing_source_before_printing(tmp_path):
    usage = run_script("bench/results_table.py", "--help", check=False, cwd=tmp_path)
    assert usage.returncode == 0 and usage.stdout.startswith("usage: results_table.py"), usage.stderr
    with open(os.path.join(JOINT_MODEL, "metrics.json"), encoding="utf-8") as file:
        metrics = json.load(file)
    epochs = f"{metrics['best_epoch']} / {len(metrics['history'])}"
    gender_accuracy = metrics["test"]["gender"]["accuracy"]
    table = run_script("bench/results_table.py", JOINT_MODEL, check=False, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert f"| `{JOINT_MODEL}` | original: gender, age_group | {epochs} | {gender_accuracy:.4f} (" in table.stdout
    refused = run_script("bench/results_table.py", JOINT_MODEL, "missing-run", check=False, cwd=tmp_path)
    assert (refused.returncode, refused.stdout) == (1, ""), refused.stdout  # no table begun
    assert error_line(refused) == "error: missing-run/metrics.json: No such file or directory"


def test_the_ablation_table_takes_the_best_epoch_and_the_last_five_and_refuses_a_file_without_epochs(tmp_path):
    # Seven epochs of a run with the exact age: the best epoch, as the run recorded it, is 3 (epoch 6 scores
    # as well, and early stopping did not take it); the last five are epochs 3 to 7.
    scores = [0.60, 0.70, 0.80, 0.70, 0.75, 0.80, 0.65]
    history = [{"epoch": epoch, "valid_score": score, "seconds": 60.0, "images_per_second": 100.0 * epoch,
                "valid": {"gender": {"accuracy": 0.9 + epoch / 1000}, "age_group": {"accuracy": 0.7},
                          "exact_age": {"mae": 5.0 + epoch / 10, "cs5": 0.6}}}
               for epoch, score in enumerate(scores, start=1)]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text(json.dumps({"history": history, "best_epoch": 3}))
    table = run_script("bench/ablation_table.py", "run", check=False, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[2] == (
        "| `run` | 3 / 7 | 0.9030, 0.7000, 5.30, 0.6000 | 0.8000 | 0.9050, 0.7000, 5.50, 0.6000; 0.7400 | 7.0 | 400 |")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.json").write_text("{}")
    refused = run_script("bench/ablation_table.py", "run", "broken", check=False, cwd=tmp_path)
    assert (refused.returncode, refused.stdout) == (1, ""), refused.stdout  # no table begun
    assert error_line(refused) == "error: broken/metrics.json: not the metrics.json of a training run (no epochs in it)"
    # The original architecture learns no exact age: its cells say so.
    joint = run_script("bench/ablation_table.py", JOINT_MODEL, check=False, cwd=tmp_path)
    assert joint.returncode == 0 and ", -, - | " in joint.stdout.splitlines()[2], joint.stderr
