"""Files and folders that appear whole or not at all: written under a temporary name, then renamed.

A file is written as `<name>.partial-<pid><extension>` beside its destination and renamed over it once
complete (os.replace is atomic within a file system), so a reader never sees half of one. A folder (a
store, a model, an export) is filled the same way and swapped in: the old one is moved aside as
`<name>.old-<pid>`, the new one renamed into place, the old one deleted. A process killed in between
leaves those names behind; the next write to the same destination removes them, and puts an old folder
back where it was if its replacement never arrived.

A write that fails (a full disk, say) removes its temporary and raises WriteError naming the
destination: whatever was there before is left as it was.
"""
import contextlib
import csv
import json
import os
import re
import shutil

import numpy as np

from agegender.errors import AgeGenderError


class WriteError(AgeGenderError):
    """A file or folder that cannot be written where it was asked for."""


def temporary_path(path, kind="partial"):
    """`out/photo.jpg` -> `out/photo.partial-<pid>.jpg`: the extension stays last, as OpenCV and
    matplotlib choose a file's format by it."""
    root, extension = os.path.splitext(os.fspath(path))
    return f"{root}.{kind}-{os.getpid()}{extension}"


def _is_running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def remove_leftovers(path):
    """Clear what writes to `path` by processes that no longer run (killed, or the machine stopped) left."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    root, extension = os.path.splitext(os.path.basename(path))
    pattern = re.compile(re.escape(root) + r"\.(partial|old)-(\d+)" + re.escape(extension) + r"\Z")
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = pattern.match(name)
        if not match or _is_running(int(match[2])):
            continue
        leftover = os.path.join(folder, name)
        if match[1] == "old" and not os.path.lexists(path):
            os.replace(leftover, path)  # moved aside, never replaced: it is still the current one
        else:
            _remove(leftover)


def _write_error(path, error):
    return WriteError(f"{path}: cannot write it ({error.strerror or error}); nothing there was changed")


def _is_about(error, temporary):
    """Whether an OSError concerns the temporary being written (not, say, an input being read)."""
    return isinstance(error, OSError) and (error.filename is None
                                           or os.fspath(error.filename).startswith(temporary))


def check_file_destination(path):
    """WriteError unless `path` can become a file: its folder exists, and it is not itself a folder."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise WriteError(f"{path}: is a folder; give the name of a file to write")
    if not os.path.isdir(folder):
        raise WriteError(f"{path}: the folder {os.path.dirname(path) or folder} does not exist; "
                         "create it first or choose another path")


class AtomicFile:
    """`with AtomicFile(path) as temporary:` write the file `temporary`; it becomes `path` when the block
    ends, and is removed if the block raises. commit() and discard() do the same by hand."""

    def __init__(self, path):
        self.path = os.fspath(path)
        check_file_destination(self.path)
        remove_leftovers(self.path)
        self.temporary = temporary_path(self.path)

    def commit(self):
        try:
            os.replace(self.temporary, self.path)
        except OSError as error:
            self.discard()
            raise _write_error(self.path, error) from None

    def discard(self):
        _remove(self.temporary)

    def __enter__(self):
        return self.temporary

    def __exit__(self, kind, error, traceback):
        if kind is None:
            self.commit()
            return False
        self.discard()
        if _is_about(error, self.temporary):
            raise _write_error(self.path, error) from None
        return False


def write_json(path, data):
    with AtomicFile(path) as temporary, open(temporary, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=2)
        file.write("\n")


def write_csv(path, header, rows):
    with AtomicFile(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)


def save_npy(path, array):
    """An array as .npy (no pickle)."""
    with AtomicFile(path) as temporary, open(temporary, "wb") as file:
        np.save(file, array, allow_pickle=False)


def check_folder_destination(path, marker, kind):
    """WriteError unless `path` is free, an empty folder, or `kind` ("an export": one holding `marker`):
    the only folders a write may replace, so that a mistyped destination loses nothing."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and (not os.listdir(path) or os.path.isfile(os.path.join(path, marker))):
        return
    raise WriteError(f"{path}: exists and is not {kind} (no {marker} in it), so it is not replaced; "
                     "choose another folder, or move this one away yourself")


@contextlib.contextmanager
def replacing_folder(path, marker, kind):
    """`with replacing_folder(path, marker, kind) as temporary:` fill the folder `temporary`; it takes
    the place of `path` when the block ends, and is removed if the block raises. See
    check_folder_destination for what may be replaced."""
    path = os.fspath(path).rstrip("/\\")
    check_folder_destination(path, marker, kind)
    remove_leftovers(path)
    temporary = temporary_path(path)
    try:
        os.makedirs(temporary)
        yield temporary
        old = temporary_path(path, "old")
        if os.path.lexists(path):
            os.replace(path, old)
        os.replace(temporary, path)
        _remove(old)
    except BaseException as error:
        _remove(temporary)
        if _is_about(error, temporary):
            raise _write_error(path, error) from None
        raise
