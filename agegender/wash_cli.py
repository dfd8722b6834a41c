"""Turn a raw face dataset into the project's clean 128x128 grayscale (or, with --color, RGB) store:
others/wash_data.py, installed as agegender-wash.

    python others/wash_data.py --dataset utkface --src ~/data/UTKFace --out data/utk
    python others/wash_data.py --dataset utkface --src ~/data/UTKFace --out data/utk-rgb --color
    python others/wash_data.py --dataset wiki --src ~/data/wiki_crop --out data/wiki
    python others/wash_data.py --dataset utkface --src A --dataset wiki --src B --out data/mixed

The store decides what a model trained on it takes: training on a --color store builds a colour model
(no training option is needed), and such a model then labels faces cropped from colour images.
"""
import argparse
import os

from agegender import cli, labels, sources, wash


def parse_arguments():
    parser = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", action="append", required=True, choices=sources.DATASETS,
                        help="kind of the next --src; repeat the pair for several sources")
    parser.add_argument("--src", action="append", required=True,
                        help="the dataset: UTKFace's image folder, IMDB-WIKI's crop folder "
                             "(wiki_crop/ or imdb_crop/ with the .mat inside), or the CSV file itself")
    parser.add_argument("--mat", action="append",
                        help="IMDB-WIKI metadata file, when it is not inside --src (one per wiki/imdb source)")
    parser.add_argument("--out", required=True, help="folder to write the store to")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--age-groups", default="4", type=cli.age_groups,
                        help="number of age groups, one of %s, or their lower edges such as 30,46,60 "
                             "(default 4: 0-29, 30-45, 46-59, 60+)" % sorted(labels.AGE_GROUP_PRESETS))
    parser.add_argument("--split", default="85,5,10", type=cli.split_fractions,
                        help="train,valid,test proportions (default 85,5,10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    parser.add_argument("--min-face-score", type=cli.finite_float, default=1.0,
                        help="IMDB-WIKI: drop faces its detector scored lower (default 1.0)")
    parser.add_argument("--keep-second-face", action="store_true",
                        help="IMDB-WIKI: keep images where a second face was seen")
    parser.add_argument("--detect", action="store_true",
                        help="find the face again with the Haar cascade (drops images without one)")
    parser.add_argument("--color", action="store_true",
                        help="keep the faces in colour (R, G, B; three times the bytes): the same faces, "
                             "crops and split as without it; models trained on the store take colour faces")
    parser.add_argument("--workers", type=cli.positive_int, default=os.cpu_count(),
                        help="worker processes (default: one per core)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    arguments = parser.parse_args()
    if len(arguments.dataset) != len(arguments.src):
        parser.error("give one --src for each --dataset, in the same order")
    return arguments


def wash_data():
    arguments = parse_arguments()
    mats = list(arguments.mat or [])
    readers = []
    for dataset, src in zip(arguments.dataset, arguments.src):
        mat = mats.pop(0) if dataset in ("wiki", "imdb") and mats else None
        readers.append((dataset, src, sources.read_source(dataset, src, mat)))
    options = wash.WashOptions(age_edges=arguments.age_groups, split_fractions=arguments.split,
                               seed=arguments.seed, min_face_score=arguments.min_face_score,
                               keep_second_face=arguments.keep_second_face, detect=arguments.detect,
                               workers=arguments.workers, color=arguments.color)
    manifest = wash.wash(readers, arguments.out, options, force=arguments.force, quiet=arguments.quiet)
    print("\n".join(wash.summary_lines(manifest)))
    print(f"wrote {os.path.abspath(arguments.out)} (drop reasons per image in dropped.csv)")


def main():
    cli.run(wash_data, interrupted="interrupted: nothing was written")
