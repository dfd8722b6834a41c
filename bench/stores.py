"""The store a bench script reads unless told otherwise: the one the README's wash commands write for
the model's channels (store.DEFAULT_STORES: data/utk, or data/utk-rgb washed with --color). Reads only
model.json, so scripts that keep TensorFlow out of their own process can use it."""
import json
import os

from agegender.store import DEFAULT_STORES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def model_channels(model_folder):
    with open(os.path.join(model_folder, "model.json"), encoding="utf-8") as file:
        return json.load(file).get("channels", 1)  # absent: a gray model, written before colour


def default_store(model_folder):
    return os.path.join(ROOT, DEFAULT_STORES[model_channels(model_folder)])
