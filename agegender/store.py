"""The store: the cleaned dataset that others/wash_data.py writes and training streams.

Layout of a store folder:

    manifest.json              sources, options, label coding, age edges, counts, shard list
    train/images-00000.npy     uint8 (n, 128, 128): one grayscale face per row
    train/labels-00000.npy     int16 (n, 4): LABEL_COLUMNS per face
    train/index.csv            shard, row, key (dataset/relative path), age, gender, race, age_group
    valid/..., test/...        the same for the other splits
    dropped.csv                every image left out, with the reason
    duplicates.csv             groups of identical images, and whether their labels conflict

Every array is a plain .npy (no pickle). A .npy file is a short header followed by the raw rows, so
tf.data can stream a shard with FixedLengthRecordDataset and memory stays flat however large the set
is; numpy can open one with np.load(mmap_mode="r") for a look.
"""
import json
import os

import numpy as np

FORMAT_VERSION = 1
SPLITS = ("train", "valid", "test")
LABEL_COLUMNS = ("age", "gender", "age_group", "race")
MANIFEST = "manifest.json"


class StoreError(Exception):
    """A store that is missing, incomplete, or of another version."""


def save_npy_atomically(path, array):
    """Write an array as .npy under a temporary name, then rename: readers never see half a file."""
    temporary = path + ".partial"
    with open(temporary, "wb") as file:
        np.save(file, array, allow_pickle=False)
    os.replace(temporary, path)


def write_json_atomically(path, data):
    temporary = path + ".partial"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=2)
        file.write("\n")
    os.replace(temporary, path)


def npy_header_bytes(path):
    """Length of a .npy file's header: the raw rows start there."""
    with open(path, "rb") as file:
        major, _ = np.lib.format.read_magic(file)
        read_header = (np.lib.format.read_array_header_1_0 if major == 1
                       else np.lib.format.read_array_header_2_0)
        read_header(file)
        return file.tell()


def read_manifest(folder):
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        raise StoreError(f"{folder}: not a dataset store (no {MANIFEST}); "
                         "write one with `python others/wash_data.py`")
    try:
        with open(path, encoding="utf-8") as file:
            manifest = json.load(file)
    except (OSError, json.JSONDecodeError) as error:
        raise StoreError(f"{path}: unreadable manifest ({error})") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise StoreError(f"{path}: store format {manifest.get('format_version')} is not the "
                         f"supported {FORMAT_VERSION}; write it again with others/wash_data.py")
    return manifest


def shard_paths(folder, manifest, split):
    """(images .npy, labels .npy) paths of every shard of a split, checked to exist."""
    pairs = []
    for shard in manifest["splits"][split]["shards"]:
        pair = tuple(os.path.join(folder, split, shard[kind]) for kind in ("images", "labels"))
        for path in pair:
            if not os.path.isfile(path):
                raise StoreError(f"{path}: shard listed in the manifest is missing")
        pairs.append(pair)
    return pairs


def load_split(folder, split, limit=None):
    """A whole split in memory: (images uint8 (n,128,128), labels dict of int arrays).

    For evaluation and small experiments; training streams instead (see pipeline.py).
    """
    manifest = read_manifest(folder)
    images, labels = [], []
    for image_path, label_path in shard_paths(folder, manifest, split):
        images.append(np.load(image_path, allow_pickle=False))
        labels.append(np.load(label_path, allow_pickle=False))
    images = np.concatenate(images) if images else np.zeros((0, 128, 128), np.uint8)
    labels = np.concatenate(labels) if labels else np.zeros((0, len(LABEL_COLUMNS)), np.int16)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, {name: labels[:, i].astype(np.int64) for i, name in enumerate(LABEL_COLUMNS)}
