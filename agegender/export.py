"""Export a model for serving: a SavedModel and TFLite files (float32 and int8), checked against it.

An export folder holds:

    saved_model/           TensorFlow SavedModel, signature "serving_default"
    model_float32.tflite   TFLite, float32 weights and arithmetic
    model_int8.tflite      TFLite, int8 weights and activations, calibrated on real faces (a few
                           element-wise operations stay float: see INT8_FLOAT_OPS)
    model.json             the model's description: tasks, class names in output order, age edges
    export.json            file sizes, single-face latency of each format, agreement with the model

Every format has the model's interface: input "faces", uint8 [n,128,128] grayscale faces, or
[n,128,128,3] RGB ones for a model trained on a colour store (the crop inference uses; standardisation
happens inside); outputs, one per task the model has, float32
softmax probabilities [n, classes]. The int8 model keeps that interface too: its input already is
integer pixels, and float probabilities cost one dequantisation of a few numbers at the very end.

The export is written under a temporary name, checked on real test faces, and only then renamed
into place: a folder that exists has passed its check.
"""
import os
import platform
import statistics
import time
import warnings
from datetime import datetime, timezone

import numpy as np

from agegender import atomic, store
from agegender.errors import AgeGenderError, tensorflow_message
from agegender.model import MODEL_JSON, WEIGHTS, check_store_channels
from agegender.quiet_tensorflow import dropping_lines, tf

SIGNATURE = "serving_default"
INPUT = "faces"
SAVED_MODEL = "saved_model"
TFLITE_FLOAT = "model_float32.tflite"
TFLITE_INT8 = "model_int8.tflite"
REPORT = "export.json"

# Calibration faces from the train split: 100, 300 and 1,000 gave the same agreement within a point
# (bundled model), and calibration time grows with the count (7 s for 300).
REPRESENTATIVE_FACES = 300
CHECK_FACES = 5000          # at most this many test faces are compared (the whole UTKFace test split)
LATENCY_CALLS = 200         # single-face latency: the median of this many calls per format
# What each format must meet on real test faces. The float formats run the same arithmetic as the
# model, so only rounding differs. int8 rounds every activation to 256 levels, so it is held to a
# mean probability error and, on heads of a few classes (gender, age groups), to its decisions
# (argmax). A head of many ordered classes (exact age in years) is read as its expected value, and
# neighbouring years swap places at the top of its flat softmax: for a 101-year head (improved
# architecture, one epoch) argmax agreement was 0.60 while the expected age moved by 0.23 years.
# The bundled models' int8 files are off by 0.005-0.011 in mean probability under every kernel path,
# here and on an emulated AVX2-only CPU (0.05 there while XNNPACK's int8 MEAN went wrong), and make
# 97.5-99% of the decisions on the 2,010 UTKFace test faces. Agreement is held to 95%, not 97%: the
# near-ties of a 4-class age head make it noisy on the few hundred faces of a small store's test split.
TOLERANCES = {SAVED_MODEL: {"max_abs_diff": 1e-5}, "tflite_float32": {"max_abs_diff": 1e-4},
              "tflite_int8": {"min_agreement": 0.95, "mean_abs_diff": 0.02}}
AGREEMENT_MAX_CLASSES = 10
# What the int8 model leaves in float: the operations whose int8 forms are wrong on some CPUs, lose
# the picture, or are slow, and which cost next to nothing in float.
# - MEAN: XNNPACK's int8 mean over one long row (per-image standardisation averages a face's 16,384
#   pixels) is wrong on CPUs without AVX-512: under an emulated AVX2-only CPU (Haswell) a face's mean
#   came out 10 grey levels off on average, against 0.3 with TFLite's own kernels, and the int8 model
#   then made only 81-88% of the float model's age decisions (bench/int8_emulated_cpu.py).
# - SUB, SQUARED_DIFFERENCE, MAXIMUM (the rest of the standardisation): in int8 the centred face has
#   steps of 1.5 grey levels and its variance steps of 149.
# - MUL, ADD (LRN's 1 + alpha * sum of squares): a value within 3% of 1 kept only 7 of int8's levels.
# - DIV: TFLite's int8 DIV rejects a divisor whose raw int8 value is 0, an ordinary value when the zero
#   point is not 0, and some faces stopped the interpreter.
# - SQRT, RSQRT: in int8 they made a face take 25 ms instead of 0.7 ms.
INT8_FLOAT_OPS = ["MEAN", "SUB", "SQUARED_DIFFERENCE", "MAXIMUM", "MUL", "ADD", "DIV", "SQRT", "RSQRT"]
# The first convolution stays float too: it sees the face itself, which int8 would cut to 256 levels
# of a range set by the brightest outliers. In float it cut int8's mean probability error from 0.011
# to 0.006 (improved model) and 0.008 to 0.006 (original) for a few percent of the model's arithmetic.
# TFLite's kernel paths, each checked: the default XNNPACK delegate (what tflite_runner uses), TFLite's
# own optimised kernels without it, and its reference kernels. XNNPACK and TFLite's optimised kernels
# pick their code by the CPU's instruction set, so the check on one machine covers that machine only:
# bench/int8_emulated_cpu.py checks an AVX2-only CPU.
KERNEL_PATHS = {"xnnpack": tf.lite.experimental.OpResolverType.AUTO,
                "builtin": tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                "reference": tf.lite.experimental.OpResolverType.BUILTIN_REF}


class ExportError(AgeGenderError):
    """An export that cannot be written or does not give the model's answers."""


def first_faces(folder, split, count):
    """Up to `count` faces of a store's split, reading only the shards needed (each shard is a random
    sample of its split, so the first faces are one too)."""
    manifest = store.read_manifest(folder)
    parts, total = [], 0
    for images_path, _ in store.shard_paths(folder, manifest, split):
        if total >= count:
            break
        parts.append(np.array(np.load(images_path, mmap_mode="r", allow_pickle=False)[:count - total]))
        total += len(parts[-1])
    if not total:
        raise ExportError(f"{folder}: the {split} split has no faces")
    return np.concatenate(parts)


def input_spec(model):
    """The faces the model's `probabilities` takes, from its input signature: uint8 [n,128,128] (gray)
    or [n,128,128,3] (RGB)."""
    return model.probabilities.input_signature[0]


def input_channels(model):
    """1 for a model of gray faces, 3 for one of RGB faces (input_spec)."""
    return input_spec(model).shape[-1] if input_spec(model).shape.rank == 4 else 1


def serving_function(model):
    """The model's `probabilities` under a fixed public name and its input (input_spec)."""
    spec = input_spec(model)

    @tf.function(input_signature=[tf.TensorSpec(spec.shape, spec.dtype, name=INPUT)])
    def serve(faces):
        return dict(model.probabilities(faces))
    return serve


def to_tflite(saved_model, representative=None):
    """A SavedModel's serving signature as TFLite bytes: float32, or int8 calibrated on `representative`."""
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    float_model = converter.convert()
    if representative is None:
        return float_model
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([face[None]] for face in representative)
    # The converter itself cannot leave chosen ops in float; its quantisation debugger can.
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=INT8_FLOAT_OPS,
                                                            denylisted_nodes=first_convolution(float_model))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the debugger's interpreter warns that tf.lite.Interpreter is deprecated
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_options=options)
    return debugger.get_nondebug_quantized_model()


def first_convolution(tflite_model):
    """[name of the first CONV_2D's output] in a TFLite model, or [] when it has none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_content=tflite_model)
    names = {tensor["index"]: tensor["name"] for tensor in interpreter.get_tensor_details()}
    return [names[op["outputs"][0]] for op in interpreter._get_ops_details() if op["op_name"] == "CONV_2D"][:1]


def tflite_runner(path=None, content=None, kernels="xnnpack"):
    """A callable faces -> {task: probabilities} running a TFLite file (or its bytes) on every core, as
    TensorFlow does, with the kernels of KERNEL_PATHS[kernels]."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter is deprecated in favour of ai-edge-litert
        interpreter = tf.lite.Interpreter(model_path=path, model_content=content, num_threads=os.cpu_count(),
                                          experimental_op_resolver_type=KERNEL_PATHS[kernels])
    # TFLite applies its default delegate when it first allocates and says so on stderr, at a level no
    # setting of TFLite's lowers: a line the user did not ask for (TF_CPP_MIN_LOG_LEVEL=0 shows it).
    shown = os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0"
    with dropping_lines([] if shown else ["Created TensorFlow Lite XNNPACK delegate"]):
        interpreter.allocate_tensors()
    runner = interpreter.get_signature_runner(SIGNATURE)
    return lambda faces: runner(**{INPUT: faces})


def in_memory_tflite_runner(model):
    """The model converted to TFLite float32 in memory (1-2 s), as a tflite_runner.

    TFLite's XNNPACK kernels take one face faster than TensorFlow's per-call path (bench/benchmark.py
    measures both); the answers are the same to 1e-5.
    """
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serving_function(model).get_concrete_function()],
                                                                model)
    return tflite_runner(content=converter.convert())


def saved_model_runner(path):
    signature = tf.saved_model.load(path).signatures[SIGNATURE]
    return lambda faces: {task: values.numpy() for task, values in signature(**{INPUT: tf.constant(faces)}).items()}


def model_runner(model):
    """The model itself in TensorFlow, as a callable faces -> {task: probabilities}. It calls the traced
    graph directly, which skips tf.function's per-call argument matching."""
    graph = model.probabilities.get_concrete_function()
    return lambda faces: {task: values.numpy() for task, values in graph(tf.constant(faces)).items()}


def in_batches(run, faces, size=64):
    """run(faces) in batches: TFLite allocates every activation for the whole batch (1.5 MB a face)."""
    parts = [run(faces[start:start + size]) for start in range(0, len(faces), size)]
    return {task: np.concatenate([part[task] for part in parts]) for task in parts[0]}


def compare(reference, outputs):
    """Per task: largest and mean absolute probability difference, how often the argmax agrees, and how
    far the expected class index moves (for ordered classes; in years for an exact-age head)."""
    if set(outputs) != set(reference):
        raise ExportError(f"outputs {sorted(outputs)} differ from the model's {sorted(reference)}")
    figures = {}
    for task, expected in reference.items():
        actual = np.asarray(outputs[task], np.float64)
        difference = np.abs(actual - expected)
        index = np.arange(expected.shape[1])
        figures[task] = {"classes": expected.shape[1], "max_abs_diff": float(difference.max()),
                         "mean_abs_diff": float(difference.mean()),
                         "agreement": float(np.mean(np.argmax(actual, 1) == np.argmax(expected, 1))),
                         "mean_expected_class_diff": float(np.mean(np.abs((actual - expected) @ index)))}
    return figures


def failures(name, figures, label=None):
    """What misses TOLERANCES[name], one phrase each, named `label` (default: name)."""
    limits, label = TOLERANCES[name], label or name
    problems = []
    for task, values in figures.items():
        for key in ("max_abs_diff", "mean_abs_diff"):
            if key in limits and not values[key] <= limits[key]:
                problems.append(f"{label} {task}: {key} {values[key]:.3g} > {limits[key]:g}")
        if ("min_agreement" in limits and values["classes"] <= AGREEMENT_MAX_CLASSES
                and not values["agreement"] >= limits["min_agreement"]):
            problems.append(f"{label} {task}: argmax agreement {values['agreement']:.4f} < {limits['min_agreement']}")
    return problems


def latencies_ms(runners, face, calls=LATENCY_CALLS, rounds=10):
    """Per runner, the median wall time of a call on one face, in ms. The runners take turns in rounds,
    so a busy moment of the machine falls on each of them alike."""
    times = {name: [] for name in runners}
    for run in runners.values():
        for _ in range(10):  # warm-up: first calls trace, allocate, pick kernels
            run(face)
    for _ in range(rounds):
        for name, run in runners.items():
            for _ in range(calls // rounds):
                start = time.perf_counter()
                run(face)
                times[name].append(time.perf_counter() - start)
    return {name: round(statistics.median(values) * 1000, 3) for name, values in times.items()}


def size_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def export_problem(folder):
    """Why `folder` is not an export this module wrote (so it must not be replaced), or None."""
    return atomic.folder_problem(folder, "an export", REPORT, {
        REPORT: atomic.FILE, MODEL_JSON: atomic.FILE, TFLITE_FLOAT: atomic.FILE, TFLITE_INT8: atomic.FILE,
        SAVED_MODEL: atomic.FOLDER})


def export(model, description, out, data, int8=True, model_folder=None):
    """Write the export folder `out` for `model` (with its model.json dict `description`).

    `data` is a store of the faces the model takes (ModelError otherwise): the int8 model is calibrated
    on faces of its train split, and every format is compared with the model on its test split. Returns
    the report also written to export.json; ExportError, with nothing put in place, when a format does
    not give the model's answers.
    """
    # `out` is replaced: only an earlier export may be, so a mistyped --out (the model's own folder,
    # say) loses nothing.
    atomic.check_folder_destination(out, export_problem)
    check_store_channels(input_channels(model), data, model_folder or "given")
    test_faces = first_faces(data, "test", CHECK_FACES)
    representative = first_faces(data, "train", REPRESENTATIVE_FACES) if int8 else None
    with atomic.replacing_folder(out, export_problem) as temporary:
        try:
            report = write_and_check(model, description, temporary, test_faces, representative)
        except tf.errors.OpError as error:  # TensorFlow's own writing failed: a full disk, say
            raise ExportError(f"{out}: cannot write the export ({tensorflow_message(error)}); "
                              "nothing there was changed") from None
        report = {"model": os.path.abspath(model_folder) if model_folder else None, "data": os.path.abspath(data),
                  **report}
        if model_folder:  # the model as the project stores it, for comparison
            report["formats"]["tf_model"]["bytes"] = sum(size_bytes(os.path.join(model_folder, name))
                                                         for name in (MODEL_JSON, WEIGHTS))
        atomic.write_json(os.path.join(temporary, REPORT), report)
    return report


def write_and_check(model, description, folder, test_faces, representative):
    """Write every format into `folder`, then run each on the test faces; the report, or ExportError."""
    paths = {SAVED_MODEL: os.path.join(folder, SAVED_MODEL), "tflite_float32": os.path.join(folder, TFLITE_FLOAT)}
    tf.saved_model.save(model, paths[SAVED_MODEL], signatures={SIGNATURE: serving_function(model)})
    with open(paths["tflite_float32"], "wb") as file:
        file.write(to_tflite(paths[SAVED_MODEL]))
    if representative is not None:
        paths["tflite_int8"] = os.path.join(folder, TFLITE_INT8)
        with open(paths["tflite_int8"], "wb") as file:
            file.write(to_tflite(paths[SAVED_MODEL], representative))
    atomic.write_json(os.path.join(folder, MODEL_JSON), description)

    runners = {"tf_model": model_runner(model), SAVED_MODEL: saved_model_runner(paths[SAVED_MODEL]),
               "tflite_float32": tflite_runner(paths["tflite_float32"])}
    if representative is not None:
        runners["tflite_int8"] = tflite_runner(paths["tflite_int8"])
    reference = in_batches(runners["tf_model"], test_faces)
    formats, problems = {}, []
    for name, run in runners.items():
        entry = {"file": os.path.basename(paths[name]) if name in paths else None,
                 "bytes": size_bytes(paths[name]) if name in paths else None}
        if name != "tf_model":
            entry["check"] = compare(reference, in_batches(run, test_faces))
            problems += failures(name, entry["check"])
        formats[name] = entry
    if representative is not None:  # the same int8 file under TFLite's other kernel paths
        checks = formats["tflite_int8"]["check_by_kernels"] = {}
        for kernels in KERNEL_PATHS:
            if kernels != "xnnpack":
                run = tflite_runner(paths["tflite_int8"], kernels=kernels)
                checks[kernels] = compare(reference, in_batches(run, test_faces))
                problems += failures("tflite_int8", checks[kernels], f"tflite_int8 ({kernels} kernels)")
    if problems:
        raise ExportError("the export does not give the model's answers: " + "; ".join(problems))
    for name, milliseconds in latencies_ms(runners, test_faces[:1]).items():
        formats[name]["latency_ms"] = milliseconds
    return {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "tensorflow": tf.__version__,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "input": {"name": INPUT, "dtype": "uint8", "shape": input_spec(model).shape.as_list()},
            "outputs": {task: int(values.shape[1]) for task, values in reference.items()},
            "check_faces": len(test_faces),
            "representative_faces": 0 if representative is None else len(representative),
            "latency": f"one face a call, median of {LATENCY_CALLS} calls taken in turns with the other formats, "
                       f"{os.cpu_count()} threads",
            "tolerances": {name: dict(limits) for name, limits in TOLERANCES.items()}, "formats": formats}
