"""Face age & gender classification: the shared logic behind the project's scripts.

Data flows one way, and each module imports only what lies upstream of it:
labels -> faces -> sources -> wash -> store -> pipeline -> model -> evaluate, plots -> train, and
model -> export (SavedModel, TFLite) -> predict -> video.
"""
import os

# oneDNN's kernels make training on a CPU about 1.6x faster; they must be chosen before TensorFlow is
# imported, so importing this package does it unless the user has decided otherwise.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter hides our output
