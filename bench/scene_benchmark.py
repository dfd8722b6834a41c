"""Faces in scenes: how many faces each detector finds, how many it invents, and what the model then gets right.

Scenes are built from the store's test faces (the original 200x200 RGB chips its index.csv names),
never from faces the model was trained on; `--split train` builds them of train faces instead, to
choose a detector's settings without looking at the test faces. Each scene is 640x480 or larger, with a background drawn
from random textures, gradients, stripes, clutter of shapes and matplotlib's sample terrain and
pictures (nothing of the faces' own colours), and 0 to 4 faces, each pasted at a random size (60 to
400 px), place, rotation (within 15 degrees) and brightness, its square edge feathered into the scene.
Scenes are seeded: scene i is the same in every run and with any --limit.

    python bench/scene_benchmark.py                          # 300 scenes, every detector installed
    python bench/scene_benchmark.py --detectors haar blazeface --limit 100 --model runs/x/model
    python bench/scene_benchmark.py --save-scenes out/scenes --limit 20   # look at them

Per detector: recall (faces found), false faces per scene (boxes on no face, or a second box on one),
gender and age-group accuracy per scene face (a face not found counts wrong) and per found face,
beside the same faces scored as chips (the store's crops, no detection) and as cut from the scenes
exactly where they were pasted (what framing alone costs is the found faces against these), and
detection time per scene.
A box finds a face when its centre lies within 0.3 face sides of the face's centre and its side is
0.3 to 1.5 face sides; each face and each box is matched at most once.
"""
import argparse
import csv
import json
import os
import sys
import time

import cv2
import numpy as np

from agegender import BUNDLED_MODEL, cli
from agegender.faces import DETECTORS, DetectorError, crop_square, to_channels
from agegender.labels import GENDER_NAMES
from agegender.model import check_store_channels
from agegender.predict import Predictor
from agegender.store import load_split, read_manifest
from face_video import SHARED_UTKFACE
from stores import default_store
from scenes_of_faces import CHIP_SIDE, chip_to_scene, scenes  # (the detector tests build them too)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SIZE_EDGES, SIZE_NAMES = (100, 200), ("60-99px", "100-199px", "200-400px")  # recall by face size


def split_faces(store, faces_folder, split="test"):
    """A split's chips: (paths of the original chips, stored 128x128 crops (gray or RGB), labels), in the
    store's order."""
    images, labels = load_split(store, split)
    with open(os.path.join(store, split, "index.csv"), newline="", encoding="utf-8") as file:
        rows = sorted(csv.DictReader(file), key=lambda row: (int(row["shard"]), int(row["row"])))
    if len(rows) != len(images):
        raise SystemExit(f"error: {store}: {split}/index.csv lists {len(rows)} faces, the shards hold {len(images)}")
    paths = []
    for row in rows:
        dataset, name = row["key"].split("/", 1)
        if dataset != "utkface":
            raise SystemExit(f"error: {store}: scenes are built from UTKFace chips; {row['key']} is not one")
        paths.append(os.path.join(faces_folder, name))
    return paths, images, labels


# ---- scoring ---------------------------------------------------------------------------------------------

def match(boxes, faces):
    """Pairs (box index, face index) of boxes on faces, closest first, each used once."""
    pairs = []
    for b, (x, y, w, h) in enumerate(boxes):
        side = max(w, h)
        for f, (_, (cx, cy), face_side, _) in enumerate(faces):
            distance = np.hypot(x + w / 2 - cx, y + h / 2 - cy)
            if distance < 0.3 * face_side and 0.3 * face_side < side < 1.5 * face_side:
                pairs.append((distance, b, f))
    used_boxes, used_faces, matched = set(), set(), []
    for _, b, f in sorted(pairs):
        if b not in used_boxes and f not in used_faces:
            used_boxes.add(b)
            used_faces.add(f)
            matched.append((b, f))
    return matched


def measure(detector_name, model, scene_list, truth, chip_answers, placed_right):
    """One detector's figures over the scenes; chip_answers: per face number, (gender, group) from chips;
    placed_right: per scene face in scene order, (gender, group) right when cut where it was pasted."""
    predictor = Predictor(model, detector_name)
    group_names = predictor.description["classes"]["age_group"]
    predictor(scene_list[0][0])  # warm-up: first calls allocate and trace
    faces_total = found = false_faces = 0
    seconds = 0.0
    rows = []  # per scene face: (found, gender right, group right, chip gender right, chip group right)
    sides = []
    for image, faces in scene_list:
        started = time.perf_counter()
        boxes, angles = predictor.detector.detect(image)
        seconds += time.perf_counter() - started
        results = predictor(image, boxes, angles) if len(boxes) else []
        matched = dict((f, b) for b, f in match(boxes, faces))
        false_faces += len(boxes) - len(matched)
        for f, (number, _, side, _) in enumerate(faces):
            sides.append(side)
            gender, group = truth["gender"][number], truth["age_group"][number]
            chip_gender, chip_group = chip_answers[number]
            if f in matched:
                labels = results[matched[f]].labels
                rows.append((True, labels["gender"] == GENDER_NAMES[gender], labels["age_group"] == group_names[group],
                             chip_gender == gender, chip_group == group))
            else:
                rows.append((False, False, False, chip_gender == gender, chip_group == group))
        faces_total += len(faces)
        found += len(matched)
    rows = np.array(rows, dtype=bool).reshape(-1, 5)
    on_found, placed_on_found = rows[rows[:, 0]], placed_right[rows[:, 0]]
    size_group = np.searchsorted(SIZE_EDGES, sides, side="right")
    return {
        "scenes": len(scene_list), "faces": faces_total, "found": found,
        "recall": found / max(faces_total, 1), "false_faces_per_scene": false_faces / len(scene_list),
        "gender_per_face": rows[:, 1].mean(), "age_group_per_face": rows[:, 2].mean(),
        "gender_chips": rows[:, 3].mean(), "age_group_chips": rows[:, 4].mean(),
        "gender_found": on_found[:, 1].mean(), "age_group_found": on_found[:, 2].mean(),
        "gender_chips_found": on_found[:, 3].mean(), "age_group_chips_found": on_found[:, 4].mean(),
        "gender_placed_found": placed_on_found[:, 0].mean(), "age_group_placed_found": placed_on_found[:, 1].mean(),
        "detect_ms_per_scene": 1000 * seconds / len(scene_list),
        **{f"recall_{name}": rows[size_group == group, 0].mean() for group, name in enumerate(SIZE_NAMES)},
    }


def placed_face_answers(predictor, scene_list, truth):
    """Per scene face in scene order, (gender right, age group right) on the face cut out of the scene
    at its true place, with no detector: 'upright' undoes the rotation too; 'rotated' takes the
    axis-aligned square a perfect box would give. What the scenes' sizes, brightness and rotations
    cost, apart from any detector; the found faces against their upright cuts: what framing costs."""
    crops = {"upright": [], "rotated": []}
    labels = []
    for image, faces in scene_list:
        pixels = to_channels(image, predictor.channels)  # as the model takes faces
        for number, centre, side, angle in faces:
            chip = cv2.warpAffine(pixels, cv2.invertAffineTransform(chip_to_scene(centre, side, angle)),
                                  (CHIP_SIDE, CHIP_SIDE), flags=cv2.INTER_LINEAR)
            crops["upright"].append(crop_square(chip, (0, 0, CHIP_SIDE, CHIP_SIDE)))
            crops["rotated"].append(crop_square(pixels, (centre[0] - side / 2, centre[1] - side / 2, side, side)))
            labels.append((truth["gender"][number], truth["age_group"][number]))
    labels = np.array(labels).reshape(-1, 2)
    right = {}
    for kind, faces in crops.items():
        answers = predictor.classify(np.stack(faces))
        right[kind] = np.stack([answers["gender"].argmax(1) == labels[:, 0],
                                answers["age_group"].argmax(1) == labels[:, 1]], axis=1)
    return right


def installed_detectors():
    names = []
    for name, detector in DETECTORS.items():
        try:
            detector()
            names.append(name)
        except DetectorError as error:  # an optional detector whose package is not installed
            print(f"skipping {name}: {error}", file=sys.stderr)
    return names


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="store of the model's channels (default: data/utk for a gray model, "
                                       "data/utk-rgb for a colour one, as bench/train_bundled.sh washes them)")
    parser.add_argument("--faces", default=SHARED_UTKFACE, help="UTKFace folder (default: ../shared/data/utkface)")
    parser.add_argument("--model", default=BUNDLED_MODEL, help="model folder (default: the bundled model)")
    parser.add_argument("--detectors", nargs="+", choices=list(DETECTORS), help="default: every one installed")
    parser.add_argument("--scenes", type=int, default=300, help="scenes to build (default: 300)")
    parser.add_argument("--limit", type=int,
                        help="score only the first N scenes (the same scenes as in a full run)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--split", choices=("test", "valid", "train"), default="test",
                        help="the store's split whose faces the scenes hold (default: test); choose a "
                             "detector's settings on train or valid scenes, report them on test ones")
    parser.add_argument("--save-scenes", help="also write the scenes as JPEG files into this folder")
    parser.add_argument("--json", help="write the figures here as JSON")
    arguments = parser.parse_args()
    count = min(arguments.scenes, arguments.limit or arguments.scenes)
    arguments.data = arguments.data or default_store(arguments.model)
    edges = read_manifest(arguments.data)["age_edges"]
    paths, chips, truth = split_faces(arguments.data, arguments.faces, arguments.split)
    print(f"building {count} scenes from the {len(paths)} {arguments.split} faces of {arguments.data} ...",
          file=sys.stderr)
    scene_list = list(scenes(count, arguments.seed, paths))
    if arguments.save_scenes:
        os.makedirs(arguments.save_scenes, exist_ok=True)
        for index, (image, _) in enumerate(scene_list):
            cv2.imwrite(os.path.join(arguments.save_scenes, f"scene-{index:04d}.jpg"), image)
    used = sorted({number for _, faces in scene_list for number, _, _, _ in faces})
    chip_predictor = Predictor(arguments.model, use_model=True)
    check_store_channels(chip_predictor.channels, arguments.data, arguments.model)
    if list(chip_predictor.description["age_edges"]) != list(edges):
        raise SystemExit(f"error: {arguments.model}: age edges {chip_predictor.description['age_edges']} "
                         f"differ from the store's {edges}")
    answers = chip_predictor.classify(chips[used])
    chip_answers = dict(zip(used, zip(answers["gender"].argmax(1), answers["age_group"].argmax(1))))
    placed = placed_face_answers(chip_predictor, scene_list, truth)
    names = arguments.detectors or installed_detectors()
    figures = {}
    for name in names:
        print(f"detecting with {name} ...", file=sys.stderr, flush=True)
        figures[name] = measure(name, arguments.model, scene_list, truth, chip_answers, placed["upright"])
    faces = sum(len(f) for _, f in scene_list)
    empty = sum(not f for _, f in scene_list)
    print(f"{count} scenes ({empty} without a face), {faces} {arguments.split} faces of {arguments.data}, seed "
          f"{arguments.seed}, model {os.path.relpath(arguments.model, ROOT)}; chips: gender "
          f"{figures[names[0]]['gender_chips']:.1%}, age group {figures[names[0]]['age_group_chips']:.1%}. The same "
          f"faces cut from the scenes where they were pasted, no detector: upright (rotation undone) gender "
          f"{placed['upright'][:, 0].mean():.1%}, age group {placed['upright'][:, 1].mean():.1%}; as rotated gender "
          f"{placed['rotated'][:, 0].mean():.1%}, age group {placed['rotated'][:, 1].mean():.1%}.\n")
    print("| detector | recall | false faces/scene | gender per face (chips) | age group per face (chips) "
          "| gender on found faces (same as chips; cut where pasted) "
          "| age group on found faces (same as chips; cut where pasted) | detection ms/scene |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, row in figures.items():
        print(f"| {name} | {row['recall']:.1%} | {row['false_faces_per_scene']:.3f} "
              f"| {row['gender_per_face']:.1%} ({row['gender_chips']:.1%}) "
              f"| {row['age_group_per_face']:.1%} ({row['age_group_chips']:.1%}) "
              f"| {row['gender_found']:.1%} ({row['gender_chips_found']:.1%}; {row['gender_placed_found']:.1%}) "
              f"| {row['age_group_found']:.1%} ({row['age_group_chips_found']:.1%}; {row['age_group_placed_found']:.1%}) "
              f"| {row['detect_ms_per_scene']:.0f} |")
    print("\n| detector | " + " | ".join(f"recall, faces of {name}" for name in SIZE_NAMES) + " |")
    print("| --- |" + " --- |" * len(SIZE_NAMES))
    for name, row in figures.items():
        print(f"| {name} | " + " | ".join(f"{row[f'recall_{size}']:.1%}" for size in SIZE_NAMES) + " |")
    if arguments.json:
        with open(arguments.json, "w", encoding="utf-8") as file:
            json.dump({"scenes": count, "faces": faces, "seed": arguments.seed, "model": arguments.model,
                       "detectors": {n: {k: float(v) for k, v in row.items()} for n, row in figures.items()}},
                      file, indent=2)


if __name__ == "__main__":
    cli.run(main)  # a store and model of other channels: one line, no traceback
