"""The store: the cleaned dataset that others/wash_data.py writes and training streams.

Layout of a store folder:

    manifest.json              format (the signature "agegender-store") and version, identity (a digest of
                               the shards), sources, options, label coding, age edges, counts, shard
                               list, channels
    train/images-00000.npy     uint8 (n, 128, 128): one grayscale face per row; with `"channels": 3`
                               (others/wash_data.py --color), uint8 (n, 128, 128, 3): R, G, B
    train/labels-00000.npy     int16 (n, 4): LABEL_COLUMNS per face
    train/index.csv            shard, row, key (dataset/relative path), age, gender, race, age_group
    valid/..., test/...        the same for the other splits
    dropped.csv                every image left out, with the reason
    duplicates.csv             groups of identical images, and whether their labels conflict

Every array is a plain .npy (no pickle). A .npy file is a short header followed by the raw rows, so
tf.data can stream a shard with FixedLengthRecordDataset and memory stays flat however large the set
is; numpy can open one with np.load(mmap_mode="r") for a look.
"""
import hashlib
import json
import os

import numpy as np

from agegender import atomic
from agegender.errors import AgeGenderError
from agegender.faces import COLOURS, face_shape

FORMAT = "agegender-store"  # the manifest's signature: --force replaces only a folder that has it
FORMAT_VERSION = 1
SPLITS = ("train", "valid", "test")
LABEL_COLUMNS = ("age", "gender", "age_group", "race")
MANIFEST = "manifest.json"
LABEL_ROW_BYTES = 2 * len(LABEL_COLUMNS)  # int16 labels
# Where the README's wash commands put the UTKFace store of each kind of face (by channels); a script given
# no store takes the one its model's channels call for.
DEFAULT_STORES = {1: os.path.join("data", "utk"), 3: os.path.join("data", "utk-rgb")}


# What a store folder holds, and nothing else (see atomic.strangers).
LAYOUT = {MANIFEST: atomic.FILE, "dropped.csv": atomic.FILE, "duplicates.csv": atomic.FILE,
          **{split: {"index.csv": atomic.FILE, "images-*.npy": atomic.FILE, "labels-*.npy": atomic.FILE}
             for split in SPLITS}}


def store_problem(folder):
    """Why `folder` is not a store this program wrote (so --force must not replace it), or None."""
    return atomic.folder_problem(folder, "a dataset store", MANIFEST, LAYOUT, FORMAT)


def content_identity(folder, manifest):
    """A digest of every shard's bytes, split by split: what tells a store from another washed at the same
    path. Recorded in the manifest as "identity", and by a run when it starts (see train_cli)."""
    digest = hashlib.blake2b(digest_size=16)
    for split in SPLITS:
        digest.update(split.encode())
        for paths in shard_paths(folder, manifest, split):
            for path in paths:
                with open(path, "rb") as file:
                    while chunk := file.read(1 << 22):
                        digest.update(chunk)
    return digest.hexdigest()


def row_bytes(kind, channels):
    """Bytes of one row of a shard of `kind` ("images": uint8 faces of `channels`, or "labels")."""
    return int(np.prod(face_shape(channels))) if kind == "images" else LABEL_ROW_BYTES


def face_channels(manifest):
    """The channels of a store's faces: 1 (grayscale) or 3 (RGB); stores written before colour have 1."""
    return manifest.get("channels", 1)


class StoreError(AgeGenderError):
    """A store that is missing, damaged, or of another version."""


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
    except (OSError, ValueError) as error:  # ValueError: not JSON, or not UTF-8
        raise StoreError(f"{path}: unreadable manifest ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        version = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise StoreError(f"{path}: store format {version} is not the "
                         f"supported {FORMAT_VERSION}; write it again with others/wash_data.py")
    try:
        complete = "age_edges" in manifest and all(
            isinstance(manifest["splits"][split]["faces"], int)
            and all({"images", "labels", "faces"} <= set(shard) for shard in manifest["splits"][split]["shards"])
            for split in SPLITS)
    except (KeyError, TypeError):
        complete = False
    if not complete:
        raise StoreError(f"{path}: incomplete manifest (splits, shards or age edges missing); "
                         "write the store again with others/wash_data.py")
    if face_channels(manifest) not in COLOURS:
        raise StoreError(f"{path}: faces of {face_channels(manifest)!r} channels, not 1 (grayscale) or 3 (RGB); "
                         "write the store again with others/wash_data.py")
    for split in SPLITS:
        check_shards(folder, manifest, split)
    return manifest


def check_shard(path, faces, kind, channels):
    """StoreError unless the .npy file `path` exists and holds exactly `faces` rows of `kind` ("images"
    of `channels`, or "labels"): a shard cut short (a full disk, a copy interrupted) would otherwise be
    read in part."""
    if not os.path.isfile(path):
        raise StoreError(f"{path}: shard listed in the manifest is missing; wash the store again")
    try:
        data_bytes = os.path.getsize(path) - npy_header_bytes(path)
    except (ValueError, OSError) as error:
        raise StoreError(f"{path}: not a readable .npy shard ({error}); wash the store again") from None
    expected = faces * row_bytes(kind, channels)
    if data_bytes != expected:
        raise StoreError(f"{path}: holds {data_bytes} bytes of {kind} where the manifest lists {faces} faces "
                         f"({expected} bytes): the shard is damaged or cut short; wash the store again")


def check_shards(folder, manifest, split):
    """StoreError unless every shard of a split holds the faces the manifest lists, and those add up to
    the split's count: checked whenever a store is opened, so that a damaged one is never read in part."""
    total = 0
    for shard in manifest["splits"][split]["shards"]:
        for kind in ("images", "labels"):
            check_shard(os.path.join(folder, split, shard[kind]), shard["faces"], kind, face_channels(manifest))
        total += shard["faces"]
    if total != manifest["splits"][split]["faces"]:
        raise StoreError(f"{os.path.join(folder, MANIFEST)}: the {split} shards hold {total} faces but the "
                         f"split lists {manifest['splits'][split]['faces']}; wash the store again")


def shard_paths(folder, manifest, split):
    """(images .npy, labels .npy) paths of every shard of a split of a store read_manifest opened."""
    return [tuple(os.path.join(folder, split, shard[kind]) for kind in ("images", "labels"))
            for shard in manifest["splits"][split]["shards"]]


def link_held_out_splits(source, target):
    """Link every file of `source`'s valid and test splits into `target`'s split folders (which exist):
    for stores that differ from it only in their train split, so that they are scored on the same faces."""
    for split in ("valid", "test"):
        for name in os.listdir(os.path.join(source, split)):
            os.symlink(os.path.abspath(os.path.join(source, split, name)), os.path.join(target, split, name))


def load_split(folder, split, limit=None):
    """A whole split in memory: (images uint8 (n,128,128), or (n,128,128,3) in a colour store, labels
    dict of int arrays).

    For evaluation and small experiments; training streams instead (see pipeline.py).
    """
    manifest = read_manifest(folder)
    images, labels = [], []
    for image_path, label_path in shard_paths(folder, manifest, split):
        images.append(np.load(image_path, allow_pickle=False))
        labels.append(np.load(label_path, allow_pickle=False))
    images = np.concatenate(images) if images else np.zeros((0, *face_shape(face_channels(manifest))), np.uint8)
    labels = np.concatenate(labels) if labels else np.zeros((0, len(LABEL_COLUMNS)), np.int16)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, {name: labels[:, i].astype(np.int64) for i, name in enumerate(LABEL_COLUMNS)}
