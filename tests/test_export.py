"""Export: the SavedModel and TFLite files give the model's answers on real faces."""
import json
import os
import warnings

import numpy as np
import pytest
import tensorflow as tf

from agegender import BUNDLED_MODEL, export, store
from agegender.model import load_model
from conftest import run_script

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(utk_store, tmp_path_factory):
    """The bundled model exported by the script, as a user would, with the small store's faces."""
    out = tmp_path_factory.mktemp("export") / "export"
    result = run_script("joint/export.py", "--data", utk_store, "--out", out)
    return out, result


@pytest.fixture(scope="module")
def reference(utk_store):
    """Real test faces and the bundled model's probabilities for them."""
    faces, _ = store.load_split(utk_store, "test")
    model, _ = load_model(BUNDLED_MODEL)
    return faces, {task: values.numpy() for task, values in model.probabilities(faces).items()}


def run_tflite(path, faces, kernels="xnnpack"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_path=str(path),
                                          experimental_op_resolver_type=export.KERNEL_PATHS[kernels])
    (detail,) = interpreter.get_input_details()
    assert detail["dtype"] == np.uint8 and list(detail["shape_signature"]) == [-1, 128, 128]
    outputs = interpreter.get_signature_runner("serving_default")(faces=faces)
    assert all(values.dtype == np.float32 for values in outputs.values())
    return interpreter, outputs


def test_script_writes_every_format_and_a_report(exported, reference):
    out, result = exported
    report = json.loads((out / "export.json").read_text())
    with open(os.path.join(BUNDLED_MODEL, "model.json")) as file:
        description = json.load(file)
    assert json.loads((out / "model.json").read_text()) == description  # class names travel with it
    assert report["outputs"] == description["class_counts"]
    assert report["check_faces"] == len(reference[0]) and report["representative_faces"] == 300
    for name, file in (("saved_model", "saved_model"), ("tflite_float32", "model_float32.tflite"),
                       ("tflite_int8", "model_int8.tflite")):
        entry = report["formats"][name]
        assert entry["bytes"] == export.size_bytes(out / file) > 100_000
        assert 0 < entry["latency_ms"] < 1000 and set(entry["check"]) == set(description["class_counts"])
    assert set(report["formats"]["tflite_int8"]["check_by_kernels"]) == {"builtin", "reference"}
    assert report["formats"]["tflite_int8"]["bytes"] < 0.35 * report["formats"]["tflite_float32"]["bytes"]
    assert os.listdir(out.parent) == [out.name]  # no temporary left beside it
    assert "tflite_int8" in result.stdout and "ms per face" in result.stdout


def test_saved_model_gives_the_models_answers_on_real_faces(exported, reference):
    faces, expected = reference
    signature = tf.saved_model.load(str(exported[0] / "saved_model")).signatures["serving_default"]
    (spec,) = signature.structured_input_signature[1].values()
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, 128, 128]
    outputs = signature(faces=tf.constant(faces))
    assert set(outputs) == set(expected)
    for task, values in expected.items():
        np.testing.assert_allclose(outputs[task].numpy(), values, atol=1e-5, rtol=0)


def test_tflite_float32_gives_the_models_answers_on_real_faces(exported, reference):
    faces, expected = reference
    _, outputs = run_tflite(exported[0] / "model_float32.tflite", faces)
    assert set(outputs) == set(expected)
    for task, values in expected.items():
        np.testing.assert_allclose(outputs[task], values, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kernels", list(export.KERNEL_PATHS))
def test_tflite_int8_is_quantised_and_makes_the_models_decisions_under_every_kernel_path(exported, reference,
                                                                                         kernels):
    """The default XNNPACK delegate, TFLite's own kernels without it, and its reference kernels: a user's
    runtime may pick any of them (XNNPACK's int8 MEAN went wrong on AVX2-only CPUs, see export.py)."""
    faces, expected = reference
    interpreter, outputs = run_tflite(exported[0] / "model_int8.tflite", faces, kernels)
    if kernels == "xnnpack":  # (TFLite's own kernels list scratch buffers among the tensors too)
        weights = [t for t in interpreter.get_tensor_details()  # constants: no batch dimension, and large
                   if -1 not in t["shape_signature"] and t["shape"].prod() > 10_000]
        assert len(weights) >= 5 and all(t["dtype"] == np.int8 for t in weights)
    assert set(outputs) == set(expected)
    limits = export.TOLERANCES["tflite_int8"]
    for task, values in expected.items():
        if values.shape[1] <= export.AGREEMENT_MAX_CLASSES:
            assert np.mean(outputs[task].argmax(1) == values.argmax(1)) >= limits["min_agreement"], task
            np.testing.assert_allclose(outputs[task].sum(1), 1, atol=0.02)
        else:  # exact age: its top year is one of 101 close neighbours, each probability rounded to 1/256;
            # the expected age is what counts
            years = np.arange(values.shape[1])
            assert np.abs(outputs[task] @ years - values @ years).mean() < 1.0, task
        assert np.abs(outputs[task] - values).mean() <= limits["mean_abs_diff"], task
    report = json.loads((exported[0] / "export.json").read_text())["formats"]["tflite_int8"]
    figures = report["check"] if kernels == "xnnpack" else report["check_by_kernels"][kernels]
    agreement = np.mean(outputs["age_group"].argmax(1) == expected["age_group"].argmax(1))
    assert figures["age_group"]["agreement"] == pytest.approx(agreement, abs=1.5 / len(faces))  # the export checked it


class ThreeHeads(tf.Module):
    """A stand-in for a model with other outputs than the bundled one (an extra 101-class head)."""

    def __init__(self):
        super().__init__()
        generator = tf.random.Generator.from_seed(1)
        self.kernel = tf.Variable(generator.normal([9, 9, 1, 16]) * 0.3)
        self.heads = {task: tf.Variable(generator.normal([16, count]) * 3)
                      for task, count in {"gender": 2, "age_group": 4, "exact_age": 101}.items()}

    @tf.function(input_signature=[tf.TensorSpec([None, 128, 128], tf.uint8)])
    def probabilities(self, faces):
        x = tf.image.per_image_standardization(tf.cast(faces[..., None], tf.float32))
        x = tf.reduce_mean(tf.nn.relu(tf.nn.conv2d(x, self.kernel, 4, "SAME")), axis=[1, 2])
        return {task: tf.nn.softmax(x @ weights) for task, weights in self.heads.items()}


def test_export_follows_the_models_outputs_and_replaces_only_a_checked_export(utk_store, tmp_path, monkeypatch):
    model, out = ThreeHeads(), tmp_path / "export"
    report = export.export(model, {"tasks": "stand-in"}, out, str(utk_store))
    assert report["outputs"] == {"gender": 2, "age_group": 4, "exact_age": 101}
    faces, _ = store.load_split(utk_store, "test", limit=50)
    expected = {task: values.numpy() for task, values in model.probabilities(faces).items()}
    for name in ("model_float32.tflite", "model_int8.tflite"):
        _, outputs = run_tflite(out / name, faces)
        assert {task: values.shape for task, values in outputs.items()} == {task: (50, n) for task, n in
                                                                            report["outputs"].items()}
    np.testing.assert_allclose(run_tflite(out / "model_float32.tflite", faces)[1]["exact_age"],
                               expected["exact_age"], atol=1e-4, rtol=0)

    # An export that misses its tolerance is not put in place, and the previous one stays.
    previous = (out / "export.json").read_text()
    monkeypatch.setitem(export.TOLERANCES, "tflite_float32", {"max_abs_diff": -1.0})
    with pytest.raises(export.ExportError, match="tflite_float32"):
        export.export(model, {}, out, str(utk_store), int8=False)
    assert (out / "export.json").read_text() == previous
    assert sorted(os.listdir(tmp_path)) == ["export"]


def test_script_refuses_bad_input_with_a_clear_message(utk_store, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text("{}")  # not an export: must not be replaced
    out = tmp_path / "out"
    for arguments, message in ((["--model", tmp_path / "missing", "--out", out], "not a saved model"),
                               (["--data", tmp_path / "missing", "--out", out], "not a dataset store"),
                               (["--data", utk_store, "--out", model], "is not an export")):
        result = run_script("joint/export.py", *arguments, check=False)
        assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("error:")
    assert not out.exists() and (model / "model.json").read_text() == "{}"
