"""Evaluate a trained model on labelled faces, or classify the faces in one image: joint/test_model.py,
installed as agegender-test.

    python joint/test_model.py --data data/utk                 # a store's test split
    python joint/test_model.py --data ~/data/UTKFace --json figures.json   # a raw UTKFace folder
    python joint/test_model.py --image photo.jpg               # the faces in one image
    python joint/test_model.py --data data/utk --model runs/x/model --calibrate   # fit temperatures first

Reports accuracy, balanced accuracy, one-off accuracy for age groups (for a model with an exact-age head:
MAE, CS(5), and the share of true ages its 80% age intervals hold, which --calibrate fits), the expected
calibration error of each head, confusion matrices (PNG), and accuracy per gender, age group and race
(and race among faces 18 and over), so differences between groups of people are visible.
"""
import argparse
import os

from agegender import BUNDLED_MODEL, atomic, cli, evaluate, store


def print_figures(figures):
    for task, task_figures in figures.items():
        print(f"{task}: {evaluate.headline(task, task_figures)} ({task_figures['faces']} faces; "
              f"confusion matrix {task_figures['confusion_png']})")
        for group, table in task_figures.get("by", {}).items():
            cells = ", ".join(f"{name} {row['accuracy']:.3f} ({row['faces']})" for name, row in table.items())
            print(f"  by {group}: {cells}")


def test_model():
    parser = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder (default: the bundled model; --calibrate needs one named)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--data", help="a store written by others/wash_data.py, or a raw UTKFace folder")
    what.add_argument("--image", help="an image whose faces to classify")
    parser.add_argument("--split", choices=store.SPLITS, default="test", help="split of a store (default test)")
    parser.add_argument("--out", default="out/evaluation", type=cli.output_folder,
                        help="folder for confusion matrices / annotated image")
    parser.add_argument("--json", type=cli.output_file, help="write every figure to this JSON file")
    parser.add_argument("--calibrate", action="store_true",
                        help="first fit the temperatures of --model on the valid split of --data (a store) and "
                             "write them into its model.json, so its probabilities mean what they say")
    parser.add_argument("--flip-average", action="store_true",
                        help="with --calibrate: the model averages each face with its mirror image from now on "
                             "(twice the cost a face; without it, --calibrate turns that off)")
    parser.add_argument("--zooms", nargs="+", type=cli.zoom, metavar="ZOOM",
                        help="with --calibrate: the model averages each face seen at these zooms from now on "
                             "(1.1: its centre 91%% enlarged; 0.9: inside a reflected border), each one more "
                             "pass of the network (default: 1, the face as it is)")
    arguments = parser.parse_args()
    if (arguments.flip_average or arguments.zooms) and not arguments.calibrate:
        parser.error("--flip-average and --zooms go with --calibrate: they set the views of each face the model "
                     "averages from then on, with temperatures fitted for them")
    if arguments.calibrate:
        # It rewrites the model's model.json: never the bundled model's unless the user names it.
        if not arguments.model:
            parser.error("--calibrate writes the fitted temperatures into the model's model.json: name the model "
                         "folder to change with --model (a copy of the bundled one, say)")
        if not arguments.data or not os.path.isfile(os.path.join(arguments.data, store.MANIFEST)):
            parser.error("--calibrate needs --data naming a store (its valid split)")
    arguments.model = arguments.model or BUNDLED_MODEL
    # Imported once the options are known to be good: TensorFlow's import alone takes seconds.
    from agegender.predict import Predictor, label_image_file
    from agegender.scoring import calibrate, evaluate_model, labelled_batches
    if arguments.calibrate:
        temperatures = calibrate(arguments.model, arguments.data, arguments.flip_average, arguments.zooms or [1.0])
        print("temperatures fitted on the valid split: " + ", ".join(
            f"{key} {value:.3f}" for key, value in temperatures.items()))
    predictor = Predictor(arguments.model)
    if arguments.image:
        results, figures = label_image_file(predictor, arguments.image, arguments.out)
        print(f"{arguments.image}: {len(results)} face(s) -> {figures['annotated']}")
        for number, result in enumerate(results, 1):
            print(f"  face {number} at {result.box}: {result.caption()}")
    else:
        figures = {"model": os.path.abspath(arguments.model), "data": os.path.abspath(arguments.data),
                   **evaluate_model(predictor, labelled_batches(arguments.data, arguments.split, predictor),
                                    arguments.out)}
        print_figures({task: figures[task] for task in predictor.description["classes"]})
    if arguments.json:
        atomic.write_json(arguments.json, figures)


def main():
    cli.run(test_model)
