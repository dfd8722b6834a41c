"""What the scripts share on the command line: option types that refuse what is not meaningful, with
the reason; options declared once, in a dataclass's fields; and one way to end on a user's error: a
single line `error: <file>: <problem>`, no traceback.
"""
import argparse
import dataclasses
import math
import os
import signal
import sys

from agegender import atomic, labels
from agegender.errors import AgeGenderError


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, ending on a mistake in the options with the one line every error here takes."""

    def convert_arg_line_to_args(self, line):
        """A line of an options file (fromfile_prefix_chars; the training scripts' recipes in joint/recipes/):
        its words, several options a line; none for a # comment."""
        return [] if line.lstrip().startswith("#") else line.split()

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _number(kind, text):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _checked(kind, requirement, accept):
    """An option type: a finite number of `kind` that `accept`s, refused with the `requirement` otherwise."""
    def parse(text):
        value = _number(kind, text)
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{text} is out of range: it must be {requirement}")
        return value
    return parse


positive_int = _checked(int, "at least 1", lambda value: value >= 1)
non_negative_int = _checked(int, "0 or more", lambda value: value >= 0)
positive_float = _checked(float, "above 0", lambda value: value > 0)
non_negative_float = _checked(float, "0 or more", lambda value: value >= 0)
finite_float = _checked(float, "a finite number", lambda value: True)
fraction = _checked(float, "from 0 up to (not including) 1", lambda value: 0 <= value < 1)
decay_factor = _checked(float, "above 0 and at most 1", lambda value: 0 < value <= 1)
ZOOMS = (0.5, 2.0)  # a view's zoom (model.zoomed): 2 keeps the centre half of the face; model.json is checked too
zoom = _checked(float, f"from {ZOOMS[0]} to {ZOOMS[1]}", lambda value: ZOOMS[0] <= value <= ZOOMS[1])
# A network's input side (model.preprocess): at 16 the original's last feature map is 1 pixel; at 512 the
# faces are 4x enlarged. model.json is checked too.
INPUT_SIZES = (16, 512)
input_size = _checked(int, f"from {INPUT_SIZES[0]} to {INPUT_SIZES[1]}",
                      lambda value: INPUT_SIZES[0] <= value <= INPUT_SIZES[1])


def age_groups(text):
    try:
        return labels.parse_age_edges(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def split_fractions(text):
    """'85,5,10' -> (85.0, 5.0, 10.0): train, valid and test each need faces (early stopping reads valid,
    the final report test)."""
    parts = text.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: give three proportions train,valid,test such as 85,5,10")
    fractions = tuple(_number(float, part) for part in parts)
    if min(fractions) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: each of train, valid and test needs a share above 0, "
                                         "such as 85,5,10")
    return fractions


def output_file(text):
    """A file to write: its folder must exist and it must not be a folder (checked before any work)."""
    try:
        atomic.check_file_destination(text)
    except atomic.WriteError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def output_folder(text):
    """A folder to write into (made when missing): it must not be a file."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text}: is a file, not a folder; choose another folder")
    return text


def option(help, flag=None, type=None, choices=None, default_text=None):
    """A dataclass field's command-line option, kept in its metadata: field(default=..., metadata=option(...)).
    The help; where needed, the flag (else the field's name), the type (one of the validators above), the
    choices, and how --help words the default when it is not simply the field's."""
    return {"help": help, "flag": flag, "type": type, "choices": choices, "default_text": default_text}


def option_flag(field):
    return "--" + (field.metadata["flag"] or field.name.replace("_", "-"))


def add_options(parser, config_class):
    """An option for each field of the dataclass `config_class` that declares one (see option); returns
    those fields. A boolean field is a switch (its flag then says which way: --no-augment sets augment
    false). Defaults stay the dataclass's: the parsed arguments hold only the options a command line gives."""
    declared = [field for field in dataclasses.fields(config_class) if field.metadata]
    for field in declared:
        flag, about = option_flag(field), field.metadata
        if isinstance(field.default, bool):
            parser.add_argument(flag, dest=field.name, action="store_false" if field.default else "store_true",
                                default=argparse.SUPPRESS, help=about["help"])
        else:
            parser.add_argument(flag, dest=field.name, type=about["type"], choices=about["choices"],
                                default=argparse.SUPPRESS,
                                metavar=None if about["choices"] else flag[2:].upper().replace("-", "_"),
                                help=f"{about['help']} (default {about['default_text'] or field.default})")
    return declared


class CtrlC:
    """`with CtrlC() as ctrl_c:` a Ctrl-C that cannot be lost. Python raises KeyboardInterrupt wherever the
    main thread is, and inside TensorFlow's own Python code that can go wrong: a bare `except:` swallows
    it (a training run in CI went on to its end after Ctrl-C), or tracing a tf.data function turns it
    into a RuntimeError. So the Ctrl-C is also remembered: `ctrl_c.check()` raises it again where a loop
    is sure to pass, and whatever ends the block after one is a KeyboardInterrupt. Blocks may nest; where
    SIGINT is ignored or handled by someone else, nothing changes."""

    def __init__(self):
        self.pressed = False
        self.replaced = None

    def __enter__(self):
        handler = signal.getsignal(signal.SIGINT)
        if handler is signal.default_int_handler or isinstance(getattr(handler, "__self__", None), CtrlC):
            self.replaced = signal.signal(signal.SIGINT, self._pressed)  # Python's handler, or an outer block's
        return self

    def _pressed(self, signal_number, frame):
        self.pressed = True
        raise KeyboardInterrupt

    def check(self):
        if self.pressed:
            raise KeyboardInterrupt

    def __exit__(self, kind, error, trace):
        if self.replaced is not None:
            signal.signal(signal.SIGINT, self.replaced)
        if self.pressed and not isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt from error


def run(main, interrupted="interrupted"):
    """Call main(); a user's error (or a file the system refused) ends in one line on stderr, exit 1;
    Ctrl-C in the line `interrupted` (with the error, if ours ended the block after it), exit 130."""
    try:
        with CtrlC():
            main()
    except AgeGenderError as error:
        sys.exit(f"error: {error}")
    except OSError as error:
        sys.exit(f"error: {error.filename}: {error.strerror}" if error.filename else f"error: {error}")
    except KeyboardInterrupt as interrupt:
        # Our own error as the interrupted block ended (a recording that could not be written whole) still
        # says what was lost; CtrlC raises the KeyboardInterrupt from it.
        lost = f" ({interrupt.__cause__})" if isinstance(interrupt.__cause__, AgeGenderError) else ""
        print(f"\n{interrupted}{lost}", file=sys.stderr)
        sys.exit(130)
