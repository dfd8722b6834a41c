"""Does the int8 export give the model's answers on a CPU without AVX-512? Checked under emulation.

    apt-get install qemu-user                       # Debian / Ubuntu: qemu-x86_64
    python bench/int8_emulated_cpu.py               # both bundled models, 200 test faces of each one's store
    python bench/int8_emulated_cpu.py --model runs/joint/model --faces 100 --cpu Haswell
    python bench/int8_emulated_cpu.py --as-before   # the int8 settings before the fix (MEAN in int8)

XNNPACK and TFLite's optimised kernels choose their code by the instruction set of the CPU they run
on, so an int8 model checked on an AVX-512 machine can still go wrong on an AVX2-only one. This script
converts each model to int8 as the export does (natively), then runs the int8 file under
`qemu-x86_64 -cpu <cpu>` (default Haswell: AVX2 and FMA, no AVX-512) with each of TFLite's kernel
paths, and compares its answers with the float model's, as the export's check does, beside the same
comparison on this machine. Emulation is slow: about a minute per 100 faces, model and kernel path.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from agegender import cli, export
from agegender.model import check_store_channels, load_model
from stores import default_store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What export.py left in float before the emulated check found XNNPACK's AVX2 int8 MEAN at fault.
FLOAT_OPS_BEFORE = ["DIV", "RSQRT", "SQRT"]


def run_int8(folder):
    """In the (emulated) child: run folder/model_int8.tflite on folder/faces.npy with every kernel path."""
    faces = np.load(os.path.join(folder, "faces.npy"))
    outputs = {}
    for kernels in export.KERNEL_PATHS:
        run = export.tflite_runner(os.path.join(folder, export.TFLITE_INT8), kernels=kernels)
        for task, values in export.in_batches(run, faces).items():
            outputs[f"{kernels}/{task}"] = values
    np.savez(os.path.join(folder, "outputs.npz"), **outputs)


def check(model_folder, data, faces_count, cpu, work):
    """Rows (model, cpu, kernel path, {task: figures}) for one model, natively and emulated."""
    model, _ = load_model(model_folder)
    check_store_channels(model.channels, data, model_folder)
    folder = os.path.join(work, os.path.basename(model_folder.rstrip("/")))
    saved_model = os.path.join(folder, export.SAVED_MODEL)
    os.makedirs(folder)
    export.tf.saved_model.save(model, saved_model, signatures={export.SIGNATURE: export.serving_function(model)})
    representative = export.first_faces(data, "train", export.REPRESENTATIVE_FACES)
    with open(os.path.join(folder, export.TFLITE_INT8), "wb") as file:
        file.write(export.to_tflite(saved_model, representative))
    faces = export.first_faces(data, "test", faces_count)
    np.save(os.path.join(folder, "faces.npy"), faces)
    reference = export.in_batches(export.model_runner(model), faces)
    rows = []
    for where, command in (("native", [sys.executable]), (f"emulated {cpu}", ["qemu-x86_64", "-cpu", cpu,
                                                                                sys.executable])):
        subprocess.run([*command, os.path.abspath(__file__), "--child", folder], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with np.load(os.path.join(folder, "outputs.npz")) as outputs:
            for kernels in export.KERNEL_PATHS:
                figures = export.compare(reference, {task: outputs[f"{kernels}/{task}"] for task in reference})
                rows.append((model_folder, where, kernels, figures))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=["agegender/models/joint", "agegender/models/improved"], help="model folders")
    parser.add_argument("--data", help="store: train faces calibrate, test faces check (default: data/utk for a "
                                       "gray model, data/utk-rgb for a colour one)")
    parser.add_argument("--faces", type=int, default=200, help="test faces to compare (default 200)")
    parser.add_argument("--cpu", default="Haswell", help="qemu CPU model to emulate (default Haswell)")
    parser.add_argument("--as-before", action="store_true",
                        help=f"convert as the export did before: only {', '.join(FLOAT_OPS_BEFORE)} in float")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        return run_int8(arguments.child)
    if not shutil.which("qemu-x86_64"):
        sys.exit("error: qemu-x86_64 not found: install qemu-user (apt-get install qemu-user)")
    if arguments.as_before:
        export.INT8_FLOAT_OPS = FLOAT_OPS_BEFORE
        export.first_convolution = lambda tflite_model: []
    limits = export.TOLERANCES["tflite_int8"]
    store_named = arguments.data or "each model's store"
    print(f"int8 against the float model on {arguments.faces} test faces of {store_named}: decisions agreeing "
          f"/ mean probability difference (export's limits: >= {limits['min_agreement']} / <= "
          f"{limits['mean_abs_diff']}; * misses them)")
    print("| model | CPU | kernels | " + " | ".join(("gender", "age group")) + " |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as work:
        for model_folder in arguments.model:
            data = arguments.data or default_store(model_folder)
            for model, where, kernels, figures in check(model_folder, data, arguments.faces, arguments.cpu, work):
                cells = [f"{figures[task]['agreement']:.1%} / {figures[task]['mean_abs_diff']:.4f}"
                         + (" *" if export.failures("tflite_int8", {task: figures[task]}) else "")
                         for task in ("gender", "age_group")]
                print(f"| `{model}` | {where} | {kernels} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    cli.run(main)  # a store and model of other channels: one line, no traceback
