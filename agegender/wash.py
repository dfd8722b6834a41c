"""Cleaning, cropping, splitting and writing the store (see store.py for its layout).

The stages, in order:
1. label checks on the records (no pixels needed): unparsable, implausible age, unknown gender,
   no face or a second face in IMDB-WIKI's metadata;
2. pixels, in parallel worker processes: read, decode as grayscale, drop missing / empty / undecodable /
   all-zero images, crop the face, resize to 128x128, hash bytes and pixels; the crops go to a spool
   file on disk, so memory stays flat however many faces there are. With `color`, the crop kept is
   the same region of the image decoded in colour (R, G, B): the drops, faces found, duplicates and
   split are decided on the gray image alone, so a colour store holds the gray store's faces in the
   same splits and order;
3. duplicates: images identical in bytes or in pixels form one group, which never straddles two splits;
4. a seeded split, stratified by gender and age group, that depends on nothing but the data and seed;
5. shards, index, reports and manifest, written into a temporary folder renamed into place at the end.
"""
import hashlib
import math
import multiprocessing
import os
import signal
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from agegender import atomic, labels, store
from agegender.errors import AgeGenderError
from agegender.faces import FACE_SIZE, HaarDetector, chip_box, crop_square, face_shape
from agegender.progress import Progress

DEFAULT_SPLIT_FRACTIONS = (0.85, 0.05, 0.10)  # train / valid / test, as the original project


@dataclass(frozen=True)
class WashOptions:
    age_edges: tuple = labels.DEFAULT_AGE_EDGES
    split_fractions: tuple = DEFAULT_SPLIT_FRACTIONS
    seed: int = 0
    min_face_score: float = 1.0     # IMDB-WIKI: weaker detections are often not faces
    keep_second_face: bool = False  # IMDB-WIKI: with two faces, the label may belong to the other
    detect: bool = False            # detect the face again with the Haar cascade, even where a box is known
    workers: int = os.cpu_count() or 1
    shard_size: int = 8192          # faces per shard file: 128 MB (384 MB with color)
    color: bool = False             # keep RGB faces (128, 128, 3) instead of grayscale ones

    @property
    def channels(self):
        return 3 if self.color else 1


class WashError(AgeGenderError):
    """A problem with the whole job (output exists, nothing left to write), not with one image."""


def label_problem(record, options):
    """Why a record's labels make it unusable, or None."""
    if record.problem:
        return record.problem
    if record.age is None or not 0 <= record.age <= labels.MAX_AGE:
        return "age_out_of_range"
    if record.gender is None:
        return "unknown_gender"
    if not -1 <= record.race < len(labels.RACE_NAMES):  # -1: unknown; a CSV may hold any number
        return "race_out_of_range"
    if record.face_score == -math.inf:
        return "no_face"
    if record.face_score < options.min_face_score:
        return "low_face_score"
    if not options.keep_second_face and not math.isnan(record.second_face_score):
        return "second_face"
    return None


_worker_detector = None  # one Haar cascade per worker process, built on first use


def load_face(record, detect, color=False):
    """(problem, face crop, byte digest, pixel digest) for one record; problem None when kept. The crop
    is gray, or with `color` RGB; the pixel digest is always the gray crop's (see the module's doc)."""
    global _worker_detector
    try:
        with open(record.path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        return "missing_file", None, None, None
    except OSError:
        return "unreadable", None, None, None
    if not data:
        return "empty_file", None, None, None
    gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        return "unreadable", None, None, None
    if not gray.any():
        return "all_zero", None, None, None
    if detect:
        _worker_detector = _worker_detector or HaarDetector()
        boxes = _worker_detector(gray)
        if len(boxes) == 0:
            return "no_face_detected", None, None, None
        region = chip_box(boxes[0])
    elif record.face_box is not None:
        region = chip_box(record.face_box)
    else:  # an aligned chip, such as UTKFace's: already framed the way the model expects
        region = (0, 0, gray.shape[1], gray.shape[0])
    face = crop_square(gray, region)
    pixel_digest = hashlib.blake2b(face.tobytes(), digest_size=16).digest()
    if color:
        colour = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        face = crop_square(cv2.cvtColor(colour, cv2.COLOR_BGR2RGB), region)
    return None, face, hashlib.blake2b(data, digest_size=16).digest(), pixel_digest


_worker_spool = None  # each worker appends its crops to a spool file of its own
_worker_write_error = None  # the OSError its spool first met (a full disk): the faces left are skipped


def _init_worker(work_folder):
    global _worker_spool
    # Ctrl-C reaches every process of the terminal's group: the main process stops the pool and
    # reports it once; workers that also raised KeyboardInterrupt would print a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)  # the processes are the parallelism; OpenCV's own threads would oversubscribe
    _worker_spool = open(os.path.join(work_folder, f"spool-{os.getpid()}.raw"), "ab")


def _load_face_task(task):
    """Load one face in a worker; the crop goes to the worker's spool, only its place comes back.

    A spool that cannot be written (a full disk) comes back as its OSError, for the main process to
    raise once the pool has finished. A worker that raised it instead would end the pool while the
    others are still at work, and terminating a worker while it sends its result can leave the pool's
    lock held and the wash hung for good (3 runs in 21 with 16 workers on 2 cores)."""
    global _worker_write_error
    index, record, detect, color = task
    if _worker_write_error:
        return index, None, None, None, None, _worker_write_error
    problem, face, byte_digest, pixel_digest = load_face(record, detect, color)
    if problem:
        return index, problem, None, None, None, None
    offset = _worker_spool.tell()
    try:
        _worker_spool.write(face.tobytes())
        _worker_spool.flush()  # every crop whole on disk before its place is returned, or an OSError
    except OSError as error:
        _worker_write_error = error
        return index, None, None, None, None, error
    return index, None, (_worker_spool.name, offset), byte_digest, pixel_digest, None


def group_duplicates(digest_pairs):
    """Group ids, one per face: faces sharing a byte digest or a pixel digest are one group.

    Faces and digests are the nodes of a graph with an edge from each face to its two digests; the
    groups are its connected components, numbered in order of their first face.
    """
    digest_ids = {}
    faces = [i for i, pair in enumerate(digest_pairs) for _ in pair]
    digests = [len(digest_pairs) + digest_ids.setdefault(d, len(digest_ids)) for pair in digest_pairs for d in pair]
    nodes = len(digest_pairs) + len(digest_ids)
    graph = scipy.sparse.coo_matrix((np.ones(len(faces)), (faces, digests)), shape=(nodes, nodes))
    _, component = scipy.sparse.csgraph.connected_components(graph, directed=False)
    component = component[:len(digest_pairs)]
    _, first_face, group = np.unique(component, return_index=True, return_inverse=True)
    rank = np.empty(len(first_face), dtype=np.int64)
    rank[np.argsort(first_face)] = np.arange(len(first_face))
    return rank[group]


def assign_splits(group_ids, strata, fractions, seed):
    """Split index per face: whole groups, shuffled with `seed` within each stratum, cut by fractions.

    Each group goes to the split its middle falls in along the shuffled stratum, so every stratum is
    divided in the requested proportions (up to one group) and a group is never cut.
    """
    rng = np.random.default_rng(seed)
    group_sizes = np.bincount(group_ids)
    group_stratum = {}
    for face, group in enumerate(group_ids):
        group_stratum.setdefault(group, strata[face])  # a group's stratum is its first face's
    groups_by_stratum = defaultdict(list)
    for group in range(len(group_sizes)):
        groups_by_stratum[group_stratum[group]].append(group)
    bounds = np.cumsum(fractions) / np.sum(fractions)
    split_of_group = np.zeros(len(group_sizes), dtype=np.int64)
    for stratum in sorted(groups_by_stratum):
        groups = np.array(groups_by_stratum[stratum])[rng.permutation(len(groups_by_stratum[stratum]))]
        sizes = group_sizes[groups]
        middles = (np.cumsum(sizes) - sizes / 2) / sizes.sum()
        split_of_group[groups] = np.minimum(np.searchsorted(bounds, middles, side="right"),
                                            len(fractions) - 1)
    return split_of_group[group_ids]


def wash(sources, out, options=WashOptions(), force=False, quiet=False):
    """Clean `sources` (a list of (dataset name, src path, records)) into a store at `out`.

    Returns the manifest written. Nothing at `out` changes unless the whole store was written.
    """
    started = time.perf_counter()
    out = os.path.abspath(out)
    atomic.check_folder_destination(out, store.store_problem)
    if os.path.exists(out) and os.listdir(out) and not force:
        raise WashError(f"{out}: a store is already there; pass --force to replace it")
    with atomic.replacing_folder(out, store.store_problem) as work:
        return _wash_into(sources, work, options, quiet, started, out)


def _wash_into(sources, work, options, quiet, started, out):
    records, source_summaries = [], []
    for dataset, src, reader in sources:
        before = len(records)
        records.extend(reader)
        source_summaries.append({"dataset": dataset, "src": os.path.abspath(src),
                                 "records": len(records) - before})
    if not records:
        raise WashError("the sources hold no images")

    dropped = []  # (record, reason)
    candidates = []
    for record in records:
        problem = label_problem(record, options)
        if problem:
            dropped.append((record, problem))
        else:
            candidates.append(record)

    # Pixels: workers decode, crop and spool the faces to disk; this process keeps where each one is.
    spool_places = [None] * len(candidates)  # (spool file, byte offset) of each kept face
    digests = [None] * len(candidates)
    progress = None if quiet else Progress(len(candidates), "washing")
    tasks = ((i, record, options.detect, options.color) for i, record in enumerate(candidates))
    # Workers come from a fresh server process, not a fork of this one: a fork inherits OpenCV's and
    # TensorFlow's thread pools in whatever state they are, and its children can hang on their locks
    # (seen when a test session had run the face detector before washing).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["agegender.wash"])  # imported once in the server, not per worker
    write_error = None
    with context.Pool(max(1, options.workers), initializer=_init_worker, initargs=(work,)) as pool:
        for index, problem, place, byte_digest, pixel_digest, error in pool.imap_unordered(
                _load_face_task, tasks, chunksize=64):
            if error:
                write_error = write_error or error
            elif problem:
                dropped.append((candidates[index], problem))
            else:
                spool_places[index] = place
                digests[index] = (byte_digest, pixel_digest)
            if progress:
                progress.update()
    pixel_seconds = progress.close() if progress else None
    if write_error:
        raise write_error

    kept = [i for i in range(len(candidates)) if spool_places[i] is not None]
    kept.sort(key=lambda i: candidates[i].key)  # a data-defined order, whatever order workers finished
    if not kept:
        # The store is refused, but the reasons must not go with it: the report goes beside it.
        report = f"{out}.dropped.csv"
        _write_dropped(report, dropped)
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(Counter(r for _, r in dropped).items()))
        raise WashError(f"{out}: no usable face left after cleaning ({reasons}); every image and its reason "
                        f"in {report}")
    faces = [candidates[i] for i in kept]
    places = [spool_places[i] for i in kept]
    group_ids = group_duplicates([digests[i] for i in kept])
    age_groups = labels.age_group([face.age for face in faces], options.age_edges)
    genders = np.array([face.gender for face in faces])
    splits = assign_splits(group_ids, list(zip(genders.tolist(), age_groups.tolist())),
                           options.split_fractions, options.seed)

    split_summaries = {}
    rng = np.random.default_rng(options.seed + 1)
    spools = {path: open(path, "rb") for path in {path for path, _ in places}}
    try:
        for split_index, split in enumerate(store.SPLITS):
            members = np.flatnonzero(splits == split_index)
            members = members[rng.permutation(len(members))]  # every shard a random sample of its split
            split_summaries[split] = _write_split(
                os.path.join(work, split), spools, members, faces, places, age_groups, options)
    finally:
        for path, spool in spools.items():
            spool.close()
            os.remove(path)

    _write_dropped(os.path.join(work, "dropped.csv"), dropped)
    conflicting_groups = _write_duplicates(os.path.join(work, "duplicates.csv"), group_ids, faces, splits)

    group_names = labels.age_group_names(options.age_edges)
    manifest = {
        "format": store.FORMAT,
        "format_version": store.FORMAT_VERSION,
        "identity": store.content_identity(work, {"splits": split_summaries}),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "sources": source_summaries,
        "options": {**asdict(options), "workers": None},  # worker count does not change the output
        "face_size": FACE_SIZE,
        "channels": options.channels,
        "label_coding": {
            "gender": dict(enumerate(labels.GENDER_NAMES)),
            "race": {-1: "unknown", **dict(enumerate(labels.RACE_NAMES))},
            "age_group": dict(enumerate(group_names)),
            "label_columns": list(store.LABEL_COLUMNS),
        },
        "age_edges": list(options.age_edges),
        "age_group_names": list(group_names),
        "counts": {
            "records": len(records),
            "kept": len(faces),
            "dropped": dict(sorted(Counter(reason for _, reason in dropped).items())),
            "duplicate_groups": int(np.sum(np.bincount(group_ids) > 1)),
            "conflicting_duplicate_groups": conflicting_groups,
        },
        "splits": split_summaries,
        "seconds": round(time.perf_counter() - started, 2),
        "pixel_seconds": round(pixel_seconds, 2) if pixel_seconds else None,
    }
    atomic.write_json(os.path.join(work, store.MANIFEST), manifest)
    return manifest


def _write_split(folder, spools, members, faces, places, age_groups, options):
    os.makedirs(folder)
    shape = face_shape(options.channels)
    face_bytes = store.row_bytes("images", options.channels)
    shards, index_rows = [], []
    for shard_number, start in enumerate(range(0, max(len(members), 1), options.shard_size)):
        chunk = members[start:start + options.shard_size]
        images = np.empty((len(chunk), *shape), dtype=np.uint8)
        label_rows = np.empty((len(chunk), len(store.LABEL_COLUMNS)), dtype=np.int16)
        for row, face_index in enumerate(chunk):
            face = faces[face_index]
            spool_path, offset = places[face_index]
            crop = os.pread(spools[spool_path].fileno(), face_bytes, offset)
            images[row] = np.frombuffer(crop, np.uint8).reshape(shape)
            label_rows[row] = (face.age, face.gender, age_groups[face_index], face.race)
            index_rows.append((shard_number, row, face.key, face.age, face.gender, face.race,
                               int(age_groups[face_index])))
        names = {"images": f"images-{shard_number:05d}.npy", "labels": f"labels-{shard_number:05d}.npy"}
        atomic.save_npy(os.path.join(folder, names["images"]), images)
        atomic.save_npy(os.path.join(folder, names["labels"]), label_rows)
        shards.append({**names, "faces": len(chunk)})
    atomic.write_csv(os.path.join(folder, "index.csv"),
                     ("shard", "row", "key", "age", "gender", "race", "age_group"), index_rows)
    group_count = len(options.age_edges) + 1
    return {
        "faces": int(len(members)),
        "gender": np.bincount([faces[i].gender for i in members], minlength=2).tolist(),
        "age_group": np.bincount(age_groups[members], minlength=group_count).tolist(),
        "shards": shards,
    }


def _write_dropped(path, dropped):
    atomic.write_csv(path, ("key", "path", "reason"),
                     sorted((record.key, record.path, reason) for record, reason in dropped))


def _write_duplicates(path, group_ids, faces, splits):
    """Write every group of identical images; return how many have conflicting labels."""
    members_of = defaultdict(list)
    for face_index, group in enumerate(group_ids):
        members_of[group].append(face_index)
    rows, conflicting = [], 0
    for group, members in sorted(members_of.items()):
        if len(members) < 2:
            continue
        conflict = len({(faces[i].age, faces[i].gender) for i in members}) > 1
        conflicting += conflict
        for i in members:
            rows.append((group, faces[i].key, faces[i].age, faces[i].gender,
                         store.SPLITS[splits[i]], int(conflict)))
    atomic.write_csv(path, ("group", "key", "age", "gender", "split", "conflicting_labels"), rows)
    return conflicting


def summary_lines(manifest):
    """The short report printed at the end of a wash: kept, dropped by reason, per split and class."""
    counts = manifest["counts"]
    lines = [f"kept {counts['kept']} of {counts['records']} images in {manifest['seconds']:.1f} s "
             f"({counts['records'] / manifest['seconds']:,.0f} images/s)"]
    for reason, number in counts["dropped"].items():
        lines.append(f"  dropped {number:6d}  {reason}")
    lines.append(f"  {counts['duplicate_groups']} groups of identical images kept on one side of the split, "
                 f"{counts['conflicting_duplicate_groups']} with conflicting labels (duplicates.csv)")
    genders = "/".join(labels.GENDER_NAMES)
    groups = " ".join(manifest["age_group_names"])
    lines.append(f"  {'split':6s} {'faces':>6s}   {genders:>13s}   age groups {groups}")
    for split, summary in manifest["splits"].items():
        gender_counts = "/".join(str(n) for n in summary["gender"])
        group_counts = " ".join(str(n) for n in summary["age_group"])
        lines.append(f"  {split:6s} {summary['faces']:6d}   {gender_counts:>13s}   {group_counts}")
    return lines
