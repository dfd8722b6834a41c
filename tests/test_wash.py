"""The dataset stage, as a user meets it: raw real faces in, a clean store and honest reports out."""
import csv
import json
import os
import shutil

import cv2
import numpy as np
import pytest
import scipy.io

from agegender import faces, labels, sources, store, wash
from conftest import UTKFACE, WIKI_MAT, copy_utkface, require, run_script, utkface_names

pytestmark = pytest.mark.slow


def read_csv_rows(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_utkface_names_parse_what_can_be_parsed():
    real_malformed = {
        "39_1_20170116174525125.jpg.chip.jpg": (39, labels.FEMALE, -1),     # race missing
        "24_0_1_20170116220224657 .jpg.chip.jpg": (24, labels.MALE, 1),     # stray space
        "55_0_0_20170116232725357jpg.chip.jpg": (55, labels.MALE, 0),       # missing dot
        "14_0_0_2017011022340900.jpg.chip.jpg": (14, labels.MALE, 0),       # short datetime
    }
    records = {os.path.basename(r.path): r for r in sources.read_utkface(require(UTKFACE))}
    assert len(records) == 20100
    for name, (age, gender, race) in real_malformed.items():
        record = records[name]
        assert (record.age, record.gender, record.race, record.problem) == (age, gender, race, None)
    assert sum(r.problem is not None for r in records.values()) == 0


@pytest.fixture(scope="module")
def messy_utkface(tmp_path_factory):
    """300 real faces plus every kind of bad file a real folder can hold, washed by the script."""
    folder = tmp_path_factory.mktemp("messy")
    raw = folder / "raw"
    names = copy_utkface(raw, 300)
    (raw / "35_1_0_20170101000000000.jpg.chip.jpg").write_bytes(b"")                      # empty file
    (raw / "36_1_0_20170101000000001.jpg.chip.jpg").write_bytes(b"\xff\xd8\xff garbage")   # corrupt
    cv2.imwrite(str(raw / "37_0_0_20170101000000002.jpg.chip.jpg"), np.zeros((200, 200), np.uint8))
    (raw / "notes.txt").write_text("not a face")                                             # no label
    (raw / "40_0_0_20170101000000003.jpg.chip.jpg").write_text("not an image either")
    shutil.copyfile(raw / names[10], raw / "77_1_0_20170101000000004.jpg.chip.jpg")  # copy, other label
    shutil.copyfile(raw / names[20], raw / ("0" + names[20]))  # byte-identical copy, same labels
    result = run_script("others/wash_data.py", "--dataset", "utkface", "--src", raw,
                        "--out", folder / "store")
    return folder / "store", names, result


def test_wash_reports_every_drop_with_its_reason(messy_utkface):
    out, names, result = messy_utkface
    dropped = {row["key"].split("/")[-1]: row["reason"] for row in read_csv_rows(out / "dropped.csv")}
    assert dropped == {
        "35_1_0_20170101000000000.jpg.chip.jpg": "empty_file",
        "36_1_0_20170101000000001.jpg.chip.jpg": "unreadable",
        "37_0_0_20170101000000002.jpg.chip.jpg": "all_zero",
        "40_0_0_20170101000000003.jpg.chip.jpg": "unreadable",
        "notes.txt": "unparsable_label",
        **{name: "age_out_of_range" for name in names if int(name.split("_")[0]) > 100},
    }
    manifest = store.read_manifest(out)
    kept = 300 + 2 - sum(reason == "age_out_of_range" for reason in dropped.values())
    assert manifest["counts"]["kept"] == kept
    assert sum(s["faces"] for s in manifest["splits"].values()) == kept
    assert f"kept {kept} of 307 images" in result.stdout
    assert "unreadable" in result.stdout and "faces/s" in result.stderr


def test_store_round_trip_keeps_labels_and_pixels(messy_utkface):
    out, _, _ = messy_utkface
    manifest = store.read_manifest(out)
    assert manifest["label_coding"]["gender"] == {"0": "male", "1": "female"}
    assert manifest["age_group_names"] == ["0-29", "30-45", "46-59", "60+"]
    for split in store.SPLITS:
        images, split_labels = store.load_split(out, split)
        index = read_csv_rows(out / split / "index.csv")
        assert images.dtype == np.uint8 and images.shape[1:] == (128, 128)
        assert len(index) == len(images) == manifest["splits"][split]["faces"]
        for row, image, age, gender, group in zip(index, images, split_labels["age"],
                                                  split_labels["gender"], split_labels["age_group"]):
            name = row["key"].split("/", 1)[1]
            label_age, label_gender = (int(part) for part in name.split("_")[:2])
            assert (age, gender) == (label_age, label_gender) == (int(row["age"]), int(row["gender"]))
            assert group == labels.age_group(age)
            source = cv2.imread(os.path.join(out.parent, "raw", name), cv2.IMREAD_GRAYSCALE)
            expected = cv2.resize(source, (128, 128), interpolation=cv2.INTER_AREA)
            assert np.array_equal(image, expected)


def test_identical_images_stay_on_one_side_and_conflicts_are_reported(messy_utkface):
    out, names, _ = messy_utkface
    rows = read_csv_rows(out / "duplicates.csv")
    groups = {}
    for row in rows:
        groups.setdefault(row["group"], []).append(row)
    for members in groups.values():
        assert len({row["split"] for row in members}) == 1
    by_key = {row["key"].split("/")[-1]: row for row in rows}
    conflict = by_key["77_1_0_20170101000000004.jpg.chip.jpg"]
    assert conflict["conflicting_labels"] == "1"
    assert by_key[names[10]]["group"] == conflict["group"]
    assert by_key["0" + names[20]]["conflicting_labels"] == "0"
    # The shared set itself holds conflicting copies: their keys never appear in two splits.
    manifest = store.read_manifest(out)
    assert manifest["counts"]["conflicting_duplicate_groups"] >= 1


def test_split_is_deterministic_stratified_and_independent_of_workers(tmp_path):
    raw = tmp_path / "raw"
    copy_utkface(raw, 600)
    reader = lambda: [("utkface", str(raw), sources.read_utkface(str(raw)))]  # noqa: E731
    one = wash.wash(reader(), tmp_path / "one", wash.WashOptions(workers=1), quiet=True)
    two = wash.wash(reader(), tmp_path / "two", wash.WashOptions(workers=2), quiet=True)
    other = wash.wash(reader(), tmp_path / "other", wash.WashOptions(seed=7), quiet=True)
    for split in store.SPLITS:
        first = (tmp_path / "one" / split / "index.csv").read_text()
        assert first == (tmp_path / "two" / split / "index.csv").read_text()
        assert np.array_equal(store.load_split(tmp_path / "one", split)[0],
                              store.load_split(tmp_path / "two", split)[0])
    assert (tmp_path / "other" / "test" / "index.csv").read_text() != \
        (tmp_path / "one" / "test" / "index.csv").read_text()
    assert one["splits"] == two["splits"]
    # Stratified: each split holds close to its share of every gender and age group.
    total_by_group = np.sum([one["splits"][s]["age_group"] for s in store.SPLITS], axis=0)
    for split, fraction in zip(store.SPLITS, wash.DEFAULT_SPLIT_FRACTIONS):
        shares = np.array(one["splits"][split]["age_group"]) / total_by_group
        assert np.all(np.abs(shares - fraction) < 0.04), (split, shares)
    assert other["counts"]["kept"] == one["counts"]["kept"]


def test_existing_output_is_kept_unless_forced_and_never_half_replaced(tmp_path, messy_utkface):
    out = tmp_path / "store"
    shutil.copytree(messy_utkface[0], out)
    before = (out / store.MANIFEST).read_text()
    raw = messy_utkface[0].parent / "raw"
    refused = run_script("others/wash_data.py", "--dataset", "utkface", "--src", raw, "--out", out,
                         check=False)
    assert refused.returncode != 0 and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    failed = run_script("others/wash_data.py", "--dataset", "utkface", "--src", empty, "--out", out,
                        "--force", check=False)
    assert failed.returncode != 0 and "empty" in failed.stderr and "Traceback" not in failed.stderr
    assert (out / store.MANIFEST).read_text() == before
    missing = run_script("others/wash_data.py", "--dataset", "utkface", "--src", tmp_path / "nope",
                         "--out", tmp_path / "new", check=False)
    assert missing.returncode != 0 and "nope" in missing.stderr and "Traceback" not in missing.stderr
    assert sorted(os.listdir(tmp_path)) == ["empty", "store"]


def test_learning_curve_stores_nest_and_its_fit_finds_the_power_law_of_the_runs_errors(tmp_path, messy_utkface):
    """bench/learning_curve.py: smaller train splits inside each other, valid and test as they were; the
    power law through runs' valid, test or pooled errors, and the faces at which it reaches a goal; one
    size only, or a run without the figures asked for, refused in one line."""
    source = tmp_path / "store"
    shutil.copytree(messy_utkface[0], source)
    run_script("bench/learning_curve.py", "stores", "0.25", "0.5", "--data", source)
    full_images, full_labels = store.load_split(source, "train")
    rows_of = {}
    for percent in (25, 50):
        subset = tmp_path / f"store-train{percent}"
        images, subset_labels = store.load_split(subset, "train")
        assert len(images) == round(percent / 100 * len(full_images))
        rows_of[percent] = {image.tobytes() + bytes(str([subset_labels[name][i] for name in store.LABEL_COLUMNS]), "ascii")
                            for i, image in enumerate(images)}
        keys = [row["key"] for row in read_csv_rows(subset / "train" / "index.csv")]
        assert [int(key.split("/")[-1].split("_")[0]) for key in keys] == subset_labels["age"].tolist()
        for split in ("valid", "test"):
            assert np.array_equal(store.load_split(subset, split)[0], store.load_split(source, split)[0])
    full_rows = {image.tobytes() + bytes(str([full_labels[name][i] for name in store.LABEL_COLUMNS]), "ascii")
                 for i, image in enumerate(full_images)}
    assert rows_of[25] < rows_of[50] < full_rows

    # Runs whose valid gender error is 0.2 at the whole train split and halves with four times the faces:
    # error = a * faces^-0.5, so the goal's 0.06 comes at (0.2 / 0.06)^2 times the whole split's faces.
    # Their test figures (printed once, as a run ends) have a flat gender error, and the age groups' halves.
    faces = len(full_images)
    for name, percent in (("run25", 25), ("run50", 50), ("bundled", 100)):
        error = 0.2 * (round(percent / 100 * faces) / faces) ** -0.5
        (tmp_path / name).mkdir()
        epoch = {"epoch": 1, "valid_score": 0.7, "valid": {"gender": {"accuracy": 1 - error},
                 "age_group": {"accuracy": 0.7}, "exact_age": {"mae": 5.0, "cs5": 0.6}}}
        test = {"gender": {"accuracy": 0.9}, "age_group": {"accuracy": 1 - error}, "exact_age": {"mae": 5.0, "cs5": 0.6}}
        (tmp_path / name / "metrics.json").write_text(json.dumps({"history": [epoch], "best_epoch": 1, "test": test}))
        if percent < 100:  # a bundled model has no config.json: its store is --data
            (tmp_path / name / "config.json").write_text(json.dumps({"data": str(tmp_path / f"store-train{percent}")}))
    fit = run_script("bench/learning_curve.py", "fit", *(tmp_path / name for name in ("bundled", "run50", "run25")),
                     "--data", source).stdout
    gender = next(line for line in fit.splitlines() if line.startswith("  gender:"))
    assert gender == (f"  gender: b 0.500; at {2 * faces:,} faces {0.2 / 2 ** 0.5:.4f}, at {4 * faces:,} 0.1000; "
                      f"goal 0.0600 at {faces * (0.2 / 0.06) ** 2:,.0f} faces (11.1x)"), gender
    assert f"  {faces:,} faces (1): gender 0.2000 (b 0.500), age groups 0.3000 (b 0.000)," in fit
    assert "age groups: b 0.000" in fit and "(inf" in fit  # a flat error never reaches its goal
    test = run_script("bench/learning_curve.py", "fit", *(tmp_path / name for name in ("bundled", "run50", "run25")),
                      "--data", source, "--split", "test").stdout
    assert "| test error: gender," in test and "  gender: b 0.000" in test and "age groups: b 0.500" in test
    both = run_script("bench/learning_curve.py", "fit", *(tmp_path / name for name in ("bundled", "run50", "run25")),
                      "--data", source, "--split", "both").stdout
    held_out = {split: store.read_manifest(source)["splits"][split]["faces"] for split in ("valid", "test")}
    pooled = (0.2 * held_out["valid"] + 0.1 * held_out["test"]) / (held_out["valid"] + held_out["test"])
    assert "| valid and test error: gender," in both and f"  {faces:,} faces (1): gender {pooled:.4f} (b " in both
    one_size = run_script("bench/learning_curve.py", "fit", tmp_path / "bundled", "--data", source, check=False)
    assert (one_size.returncode, one_size.stdout) == (1, "")
    assert one_size.stderr.strip() == "error: fit needs runs on at least two sizes of train split"
    # A run still training has valid figures but no test figures yet.
    shutil.copytree(tmp_path / "run25", tmp_path / "unfinished")
    metrics = json.loads((tmp_path / "unfinished" / "metrics.json").read_text())
    del metrics["test"]
    (tmp_path / "unfinished" / "metrics.json").write_text(json.dumps(metrics))
    run_script("bench/learning_curve.py", "fit", tmp_path / "bundled", tmp_path / "unfinished", "--data", source)
    unfinished = run_script("bench/learning_curve.py", "fit", tmp_path / "bundled", tmp_path / "unfinished",
                            "--data", source, "--split", "test", check=False)
    assert (unfinished.returncode, unfinished.stdout) == (1, "")
    assert unfinished.stderr.strip() == (f"error: {tmp_path / 'unfinished' / 'metrics.json'}: no test figures of a "
                                         "finished training run of the improved network with the exact age")


def write_wiki_images(folder, records, faces):
    """Write real faces at the paths wiki.mat names, each placed inside its metadata face box."""
    for record, face in zip(records, faces):
        x, y, w, h = record.face_box
        canvas = np.full((int(y + h + 40), int(x + w + 40)), 90, np.uint8)
        canvas[int(y):int(y) + int(h), int(x):int(x) + int(w)] = cv2.resize(face, (int(w), int(h)))
        os.makedirs(os.path.dirname(record.path), exist_ok=True)
        cv2.imwrite(record.path, canvas)


def test_wiki_mat_real_metadata_with_written_images(tmp_path):
    crops = tmp_path / "wiki_crop"
    records = list(sources.read_imdb_wiki(str(crops), "wiki", require(WIKI_MAT)))
    assert len(records) == 62328
    first = records[0]  # 17/10000217_1981-05-05_2009.jpg: born 1981, photo 2009, IMDB-WIKI gender 1
    assert first.key == "wiki/17/10000217_1981-05-05_2009.jpg"
    assert (first.age, first.gender) == (2009 - 1981, labels.MALE)
    usable = [r for r in records if wash.label_problem(r, wash.WashOptions()) is None][:40]
    faces = [cv2.imread(os.path.join(UTKFACE, name), cv2.IMREAD_GRAYSCALE) for name in utkface_names(40)]
    write_wiki_images(crops, usable[:36], faces)
    for record in usable[36:38]:
        os.makedirs(os.path.dirname(record.path), exist_ok=True)
    assert cv2.imwrite(usable[36].path, np.zeros((300, 300), np.uint8))
    with open(usable[37].path, "wb") as file:
        file.write(b"\xff\xd8 truncated")
    result = run_script("others/wash_data.py", "--dataset", "wiki", "--src", crops,
                        "--mat", WIKI_MAT, "--out", tmp_path / "store")
    manifest = json.loads((tmp_path / "store" / store.MANIFEST).read_text())
    dropped = manifest["counts"]["dropped"]
    assert manifest["counts"]["kept"] == 36
    assert dropped["all_zero"] == 1 and dropped["unreadable"] == 1
    assert dropped["missing_file"] == 38137 - 38
    assert {"no_face", "second_face", "unknown_gender", "age_out_of_range"} <= set(dropped)
    assert "kept 36 of 62328" in result.stdout
    # The crop is framed like a UTKFace chip around the metadata's box (faces.CHIP_SCALE, CHIP_DOWN_SHIFT).
    written = {r.key: (r, face) for r, face in zip(usable[:36], faces)}
    correlations = []
    for split in store.SPLITS:
        images, _ = store.load_split(tmp_path / "store", split)
        for row, image in zip(read_csv_rows(tmp_path / "store" / split / "index.csv"), images):
            record, face = written[row["key"]]
            assert int(row["gender"]) == record.gender and int(row["age"]) == record.age
            correlations.append(framing_correlations(face, image))
    framed, shifted = np.mean(correlations, axis=0)
    assert len(correlations) == 36
    assert framed > 0.9 and shifted < 0.75  # measured: 0.97 framed right, 0.63 framed 8 px off


def framing_correlations(face, crop):
    """How well a 128 px crop matches the face where the framing puts it, and 8 px lower.

    With the face box 1 wide, the crop is CHIP_SCALE wide and its centre CHIP_DOWN_SHIFT below the
    box's centre, so in the crop's pixels the face starts at (left, top) and is `size` px wide.
    """
    side = faces.CHIP_SCALE
    size = round(128 / side)
    left = round((side / 2 - 0.5) / side * 128)
    top = round((side / 2 - 0.5 - faces.CHIP_DOWN_SHIFT) / side * 128)
    placed = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
    window = (slice(max(top, 0) + 4, min(top + size, 128) - 12), slice(max(left, 0) + 4, min(left + size, 128) - 4))
    expected_part = placed[window[0].start - top:window[0].stop - top, window[1].start - left:window[1].stop - left]
    lower = (slice(window[0].start + 8, window[0].stop + 8), window[1])
    return (np.corrcoef(crop[window].ravel(), expected_part.ravel())[0, 1],
            np.corrcoef(crop[lower].ravel(), expected_part.ravel())[0, 1])


def matlab_cells(values):
    """A 1 x n cell array, as IMDB-WIKI's .mat files hold their text and box fields."""
    cells = np.empty((1, len(values)), dtype=object)
    for i, value in enumerate(values):
        cells[0, i] = value
    return cells


def test_tiny_mat_in_the_real_layout_and_csv_source(tmp_path):
    """A .mat written in IMDB-WIKI's layout and a CSV source, washed together into one store."""
    names = utkface_names(6)
    for name in names:
        shutil.copyfile(os.path.join(UTKFACE, name), tmp_path / name)
    dob = np.array([[719529 + 7305, 719529, 719529.7]])  # 1 Jan 1990, 1 Jan 1970, 1 Jan 1970 17:00
    table = {
        "dob": dob, "photo_taken": np.array([[2010, 2000, 1960]], np.uint16),
        "full_path": matlab_cells([np.array([name]) for name in names[:3]]),
        "gender": np.array([[0.0, 1.0, np.nan]]),
        "name": matlab_cells([np.array([name]) for name in "abc"]),
        "face_location": matlab_cells([np.array([[10.0, 10.0, 190.0, 190.0]])] * 3),
        "face_score": np.array([[3.0, 2.0, 4.0]]), "second_face_score": np.full((1, 3), np.nan),
    }
    scipy.io.savemat(tmp_path / "wiki.mat", {"wiki": table})
    records = list(sources.read_imdb_wiki(str(tmp_path), "wiki"))
    assert [(r.age, r.gender) for r in records] == [(20, labels.FEMALE), (30, labels.MALE), (-10, None)]
    (tmp_path / "faces.csv").write_text("path,age,gender\n" + "".join(
        f"{name},{25 + i},{'female' if i % 2 else 'm'}\n" for i, name in enumerate(names[3:])) + "x.jpg,,\n")
    result = run_script("others/wash_data.py", "--dataset", "wiki", "--src", tmp_path,
                        "--dataset", "csv", "--src", tmp_path / "faces.csv", "--out", tmp_path / "store",
                        "--age-groups", "30,60")
    manifest = store.read_manifest(tmp_path / "store")
    assert manifest["counts"]["kept"] == 5
    assert manifest["counts"]["dropped"] == {"age_out_of_range": 1, "unparsable_label": 1}
    assert manifest["age_group_names"] == ["0-29", "30-59", "60+"]
    assert [s["dataset"] for s in manifest["sources"]] == ["wiki", "csv"]
    assert "kept 5 of 7" in result.stdout
