"""TensorFlow, imported without the lines it prints at every start: `from agegender.quiet_tensorflow import tf`.

TensorFlow 2.21 on a machine without a GPU greets every program with lines such as "oneDNN custom
operations are on", "Could not find cuda drivers on your machine" (each twice) and "failed call to
cuInit". Most come from its C++ logging before that is initialised, when TF_CPP_MIN_LOG_LEVEL is not
yet read, so the variable alone cannot hide them. Here the import and the first look at the devices
(which prints the cuInit line) run with stderr captured; those known lines are dropped and anything
else is passed on. A TF_CPP_MIN_LOG_LEVEL from 1 up, the usual way to ask TensorFlow for quiet, is
honoured the same way (those lines come before the level is read); TF_CPP_MIN_LOG_LEVEL=0 shows every
message.
"""
import contextlib
import os
import sys
import tempfile

START_UP_LINES = ("All log messages before absl::InitializeLog() is called",
                  "oneDNN custom operations are on",
                  "Could not find cuda drivers on your machine",
                  "failed call to cuInit")


@contextlib.contextmanager
def dropping_lines(known_lines):
    """Run the block with the process's stderr (file descriptor 2, where C++ writes) captured; then pass on
    every line it wrote but those containing one of `known_lines`."""
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not any(known in line for known in known_lines)))
            sys.stderr.flush()


def _import_tensorflow():
    users_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    if users_level == "0" or "tensorflow" in sys.modules:  # the user asked for every message, or too late
        import tensorflow
        return tensorflow
    if users_level is None:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # errors only, from when the logging has started
    try:
        with dropping_lines(START_UP_LINES):
            import tensorflow
            tensorflow.config.list_physical_devices()
    finally:
        # TensorFlow has read it by now; left set, every program started from this one would take it
        # for the user's choice. A level the user set stays theirs.
        if users_level is None:
            del os.environ["TF_CPP_MIN_LOG_LEVEL"]
    return tensorflow


tf = _import_tensorflow()
