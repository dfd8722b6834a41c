"""Export a model as a TensorFlow SavedModel and TFLite files (float32 and int8), checked on real faces:
joint/export.py, installed as agegender-export.

    python joint/export.py                                  # the bundled model -> out/export
    python joint/export.py --model runs/joint/model --out out/joint-export --data data/utk

The int8 model is calibrated on faces of the store's train split; every format is compared with the
model on its test split (int8 under each of TFLite's kernel paths) and the export is put in place only
if it gives the model's answers.
export.json in the output folder lists file sizes, single-face latency and the agreement figures.
"""
import argparse

from agegender import BUNDLED_MODEL, cli, store


def export_model():
    parser = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=BUNDLED_MODEL, help="model folder (default: the bundled model)")
    parser.add_argument("--out", default="out/export",
                        help="export folder; an earlier export there is replaced (default out/export)")
    parser.add_argument("--data", help="store written by others/wash_data.py: train faces calibrate int8, test "
                                       "faces check every format (default: data/utk for a gray model, "
                                       "data/utk-rgb for a colour one such as the bundled one)")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 TFLite model")
    arguments = parser.parse_args()
    # Imported once the options are known to be good: TensorFlow's import alone takes seconds.
    from agegender import export
    from agegender.model import load_model
    model, description = load_model(arguments.model)
    data = arguments.data or store.DEFAULT_STORES[model.channels]
    report = export.export(model, description, arguments.out, data, int8=not arguments.no_int8,
                           model_folder=arguments.model)
    print(f"{arguments.out}: checked on {report['check_faces']} test faces of {data}")
    for name, entry in report["formats"].items():
        print(f"  {name:15} {(entry['bytes'] or 0) / 1e6:6.2f} MB  {entry['latency_ms']:6.2f} ms per face"
              + agreement(entry.get("check", {})))
        for kernels, check in entry.get("check_by_kernels", {}).items():
            print(f"  {'':15} {kernels + ' kernels':>29}" + agreement(check))


def agreement(check):
    return "".join(f"  {task}: agreement {figures['agreement']:.4f}, max diff {figures['max_abs_diff']:.2g}"
                   for task, figures in check.items())


def main():
    cli.run(export_model, interrupted="interrupted: nothing was written")
