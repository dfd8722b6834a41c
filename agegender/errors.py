"""The package's one base exception: every error a user can cause or fix derives from it.

Each module raises its own kind (StoreError, ModelError, ...), with a message that names the file and
says what is wrong and, where something is refused, what to do instead; each script catches
AgeGenderError alone and prints that message as one line (see cli.py).
"""


class AgeGenderError(Exception):
    """A problem with the user's files, options or machine, explained in one line."""


def tensorflow_message(error):
    """The readable part of a tf.errors.OpError: without the graph function and op it came from, nor the
    temporary file a write failed on ("<file>; No space left on device")."""
    return error.message.split("}}")[-1].split(" [Op:")[0].rsplit("; ", 1)[-1].strip()
