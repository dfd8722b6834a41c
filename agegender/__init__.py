"""Face age & gender classification: the logic behind the project's scripts, and their command lines.

Data flows one way, and each module imports only what lies upstream of it:
labels -> faces -> sources -> store -> wash; store -> pipeline; labels, faces, store -> model; evaluate,
plots -> report (what a run writes down); train_options (a run's options, free of TensorFlow), pipeline,
model, evaluate, report -> train; model -> export (SavedModel, TFLite) -> predict -> video; and pipeline,
predict, evaluate -> scoring (a model's answers and figures on labelled faces). Beneath
them all: errors (the base exception), atomic (files and folders renamed into place), quiet_tensorflow;
above them, cli (the scripts' options), then a module per command, each script's command line and main()
(the installed command; the script at the course's path calls it): wash_cli, train_cli (the three
training scripts), evaluate_cli (joint/test_model.py), detect_cli, realtime_cli, export_cli. The
commands import TensorFlow only once their options are good.
"""
import os

# oneDNN's kernels make training on a CPU about 1.6x faster; they must be chosen before TensorFlow is
# imported, so importing this package does it unless the user has decided otherwise.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# TensorFlow's start-up lines are hidden where it is imported: see quiet_tensorflow.py. OpenCV's warnings
# (a video frame it failed to write, FFmpeg on a file it cannot read) would bury the one line our code
# gives for the same problem; the user's own OPENCV_LOG_LEVEL / OPENCV_FFMPEG_LOGLEVEL win.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's AV_LOG_QUIET

# The bundled models are package data (agegender/models/, pyproject.toml), so a clone, an editable install
# and an installed wheel find them at the same place. Here, not in model.py, so that the scripts name the
# default model before importing TensorFlow.
BUNDLED_MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
BUNDLED_MODEL = os.path.join(BUNDLED_MODELS, "improved")  # the most accurate model within the real-time budget; see its README
# How a Predictor can run the model (predict.RUNNERS): TensorFlow, or the model converted to TFLite.
ENGINES = ("tensorflow", "tflite")
# Real time's: TFLite float32 classifies one face about 3x faster than TensorFlow's per-call path, with
# the same answers to 1e-5, for a conversion of 1-2 s at start (bench/benchmark.py, all engines in turns
# in one process). TFLite int8, faster still with VNNI, makes only 98.3-98.7% of the age-group decisions.
REALTIME_ENGINE = "tflite"
