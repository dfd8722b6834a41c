"""Find the faces in images and label each with gender and age group: detect.py, installed as agegender-detect.

    python detect.py                      # the portrait that ships with matplotlib: a result at once
    python detect.py photo.jpg more/      # images and folders of images
    python detect.py photo.jpg --json     # every face's box and whole distributions, as JSON
    python detect.py photo.jpg --no-model # only find faces, as the original detect.py did
    python detect.py photo.jpg --six-views  # better answers, at six passes of the network a face
"""
import argparse
import json
import os
import sys

from agegender import BUNDLED_MODEL, cli
from agegender.faces import DEFAULT_DETECTOR, DETECTOR_HELP, DETECTORS, ImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def sample_portrait():
    import matplotlib.cbook
    return str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def image_paths(arguments):
    """The image files named, and those in the folders named (by their extension; a note on stderr says
    how many other entries of a folder were passed over)."""
    paths = []
    for item in arguments or [sample_portrait()]:
        if os.path.isdir(item):
            names = sorted(name for name in os.listdir(item) if not name.startswith("."))
            found = [os.path.join(item, name) for name in names if name.lower().endswith(IMAGE_EXTENSIONS)
                     and os.path.isfile(os.path.join(item, name))]
            if not found:
                raise ImageError(f"{item}: no images in this folder")
            if len(found) < len(names):
                print(f"note: {item}: passed over {len(names) - len(found)} of its {len(names)} entries: folders "
                      f"and files not named as images ({', '.join(IMAGE_EXTENSIONS)})", file=sys.stderr)
            paths.extend(found)
        else:
            paths.append(item)
    return paths


def label_images():
    parser = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", help="image files or folders (default: matplotlib's sample portrait)")
    parser.add_argument("--model", default=BUNDLED_MODEL, help="model folder (default: the bundled model)")
    parser.add_argument("--no-model", action="store_true", help="only detect faces")
    parser.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR, help=DETECTOR_HELP)
    parser.add_argument("--out", default="out", type=cli.output_folder, help="folder for the annotated copies (default: out)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--six-views", action="store_true",
                        help="average each face's answers over six views of it (zoomed 1, 1.1 and 0.9, each also "
                             "mirrored): more faces right on photos (bench/RESULTS.md), six passes of the network "
                             "a face")
    arguments = parser.parse_args()
    paths = image_paths(arguments.images)
    # Imported once the options are known to be good: TensorFlow's import alone takes seconds.
    from agegender.predict import SIX_VIEWS, Predictor, annotated_names, label_image_file
    views = SIX_VIEWS if arguments.six_views else {}  # else the model's own (model.json)
    predictor = Predictor(arguments.model, arguments.detector, use_model=not arguments.no_model, **views)
    report, failures = [], 0
    for path, name in zip(paths, annotated_names(paths)):
        try:
            results, image_report = label_image_file(predictor, path, arguments.out, name)
        except ImageError as error:
            print(f"error: {error}", file=sys.stderr)
            failures += 1
            continue
        report.append(image_report)
        if not arguments.json:
            usual = annotated_names([path])[0]
            print(f"{path}: {len(results)} face(s) -> {image_report['annotated']}"
                  + (f" (renamed: {usual} is an earlier image's)" if name != usual else ""))
            for number, result in enumerate(results, 1):
                x, y, w, h = result.box
                print(f"  face {number}: box x={x} y={y} w={w} h={h}" + (f"  {result.caption()}" if result.labels else ""))
    if arguments.json:
        print(json.dumps(report, indent=2, allow_nan=False))  # strict JSON: model.json's checks keep answers finite
    sys.exit(1 if failures else 0)


def main():
    cli.run(label_images)
