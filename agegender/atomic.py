"""Files and folders that appear whole or not at all, written so that only what this program wrote is
ever removed or replaced.

A file is written under a temporary name beside its destination, `<name>.partial-<random><extension>`,
and renamed over it once complete (os.replace is atomic within a file system), so a reader never sees
half of one. A folder (a store, a model, an export) is filled the same way and swapped in: the old one
is moved aside as `<name>.old-<random>`, the new one renamed into place, the old one deleted. The
random part is unpredictable and each temporary is made exclusively (O_EXCL, as tempfile.mkstemp
does), so a link planted beside the destination is never followed and nothing there is written over.

Before it makes its temporary, a write leaves a journal beside the destination, `.<name>.<random>.journal`,
naming its process and the temporary and old names it will use, and removes it when it is over, however
it ends. A process killed in between leaves its journal, and the next write to the same destination
undoes what that journal names: the temporary is removed, and an old folder put back where it was if
its replacement never arrived. Nothing is taken for a leftover by its name alone: a user's
`data/utk.old-20231201/` beside a store stays the user's.

A folder is replaced only when it is free, empty, or shown to be one of the kind being written by its
signature and layout (check_folder_destination): a mistyped destination loses nothing. A write that
fails (a full disk, say) removes its temporary and raises WriteError naming the destination: whatever
was there before is left as it was.
"""
import contextlib
import csv
import fnmatch
import json
import os
import secrets
import shutil

import numpy as np

from agegender.errors import AgeGenderError

JOURNAL_FORMAT = "agegender-write-journal"
# A layout's entries (see strangers): a file, or a folder whose contents are not listed (TensorFlow's
# checkpoints, say); a dict is the layout of a folder.
FILE, FOLDER = "file", "folder"


class WriteError(AgeGenderError):
    """A file or folder that cannot be written where it was asked for."""


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
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def _create_exclusively(path, content=b""):
    """A new file at `path` holding `content`; FileExistsError if anything is there, a link included.
    Its mode is the user's usual one (umask), not tempfile.mkstemp's owner-only 0600."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        os.write(descriptor, content)
    except BaseException:
        os.close(descriptor)
        os.remove(path)
        raise
    os.close(descriptor)


def _write_error(path, error):
    return WriteError(f"{path}: cannot write it ({error.strerror or error}); nothing there was changed")


def _undo(path, temporary, old):
    """What a write to `path` that did not finish leaves: its temporary removed, and the old folder it
    moved aside put back if its replacement never arrived (else removed)."""
    _remove(temporary)
    if os.path.lexists(old) and not os.path.lexists(path):
        os.replace(old, path)
    else:
        _remove(old)


class Journal:
    """The record of one write to `path`, beside it: made before the write's temporary, removed by
    close() once the write is over. `temporary` and `old` are the names the write may use."""

    def __init__(self, path):
        self.folder, name = os.path.split(os.path.abspath(path))
        root, extension = os.path.splitext(name)  # the extension stays last: OpenCV and matplotlib go by it
        token = secrets.token_hex(8)
        self.temporary = os.path.join(self.folder, f"{root}.partial-{token}{extension}")
        self.old = os.path.join(self.folder, f"{root}.old-{token}{extension}")
        self.path = os.path.join(self.folder, f".{name}.{token}.journal")
        record = {"format": JOURNAL_FORMAT, "pid": os.getpid(), "destination": name,
                  "temporary": os.path.basename(self.temporary), "old": os.path.basename(self.old)}
        try:
            _create_exclusively(self.path, json.dumps(record).encode())
        except OSError as error:
            raise _write_error(path, error) from None

    def close(self):
        _remove(self.path)


def _finished_journal(folder, name, journal_name):
    """The record of the journal `journal_name` (in `folder`) of a write to `name` whose process no
    longer runs, or None: only a plain file of this user's, in this program's format, counts."""
    path = os.path.join(folder, journal_name)
    try:
        if os.lstat(path).st_uid != os.getuid() or os.path.islink(path):
            return None
        with open(path, encoding="utf-8") as file:
            record = json.load(file)
        names = (record["temporary"], record["old"])
        if (record["format"] != JOURNAL_FORMAT or record["destination"] != name or _is_running(record["pid"])
                or any(os.path.basename(n) != n or n in ("", ".", "..") for n in names)):
            return None
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return record


def remove_leftovers(path):
    """Undo what writes to `path` by processes that no longer run (killed, or the machine stopped) left,
    as their journals say."""
    folder, name = os.path.split(os.path.abspath(path))
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for journal_name in names:
        if not (journal_name.startswith(f".{name}.") and journal_name.endswith(".journal")):
            continue
        record = _finished_journal(folder, name, journal_name)
        if record:
            _undo(os.path.join(folder, name), os.path.join(folder, record["temporary"]),
                  os.path.join(folder, record["old"]))
            _remove(os.path.join(folder, journal_name))


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
        self.journal = Journal(self.path)
        self.temporary = self.journal.temporary
        try:
            _create_exclusively(self.temporary)
        except OSError as error:
            self.journal.close()
            raise _write_error(self.path, error) from None

    def commit(self):
        try:
            os.replace(self.temporary, self.path)
        except OSError as error:
            self.discard()
            raise _write_error(self.path, error) from None
        self.journal.close()

    def discard(self):
        _remove(self.temporary)
        self.journal.close()

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


def strangers(folder, layout, below=""):
    """The entries of `folder` that its `layout` lacks, as paths below it (sorted). `layout` maps
    patterns of names (fnmatch) to FILE, FOLDER or the layout of a folder."""
    found = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        kind = next((kind for pattern, kind in layout.items() if fnmatch.fnmatchcase(name, pattern)), None)
        if kind is None or (kind == FILE) == (os.path.isdir(path) and not os.path.islink(path)):
            found.append(os.path.join(below, name))
        elif isinstance(kind, dict):
            found.extend(strangers(path, kind, os.path.join(below, name)))
    return found


def folder_problem(folder, kind, marker, layout, format_name=None):
    """Why the folder `folder` is not `kind` ("a dataset store") as this program writes it, or None: it
    holds its `marker` file, which names `"format": format_name` where the kind has such a signature,
    and nothing that the kind's `layout` (see strangers) lacks."""
    marker_path = os.path.join(folder, marker)
    if not os.path.isfile(marker_path):
        return f"is not {kind} (no {marker} in it)"
    if format_name:
        try:
            with open(marker_path, encoding="utf-8") as file:
                signature = json.load(file).get("format")
        except (OSError, ValueError, AttributeError):  # unreadable, not JSON, not a JSON object
            signature = None
        if signature != format_name:
            return (f"is not {kind} written by this program (its {marker} does not name the format "
                    f"{format_name!r}; one written by an older version does not either: if it is one you no "
                    "longer need, remove it yourself)")
    found = strangers(folder, layout)
    if found:
        return f"is not {kind} alone: it also holds {', '.join(found[:3])}{' ...' if len(found) > 3 else ''}"
    return None


def check_folder_destination(path, problem):
    """WriteError unless `path` is free, an empty folder, or a folder `problem(path)` finds nothing
    wrong with (a kind's folder_problem): the only folders a write may replace or remove, so that a
    mistyped destination loses nothing."""
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path):
        reason = "is not a folder"
    elif not os.listdir(path):
        return
    else:
        reason = problem(path)
    if reason:
        raise WriteError(f"{path}: {reason}, so it is not replaced; choose another folder, or move this "
                         "one away yourself")


@contextlib.contextmanager
def replacing_folder(path, problem):
    """`with replacing_folder(path, problem) as temporary:` fill the folder `temporary`; it takes the
    place of `path` when the block ends, and is removed if the block raises. See
    check_folder_destination for what may be replaced."""
    path = os.fspath(path).rstrip("/\\")
    check_folder_destination(path, problem)
    remove_leftovers(path)
    journal = Journal(path)
    try:
        os.mkdir(journal.temporary)  # exclusive: fails on anything there, a link included
        yield journal.temporary
        if os.path.lexists(path):
            os.replace(path, journal.old)
        os.replace(journal.temporary, path)
        _remove(journal.old)
    except BaseException as error:
        _undo(path, journal.temporary, journal.old)
        if _is_about(error, journal.temporary):
            raise _write_error(path, error) from None
        raise
    finally:
        journal.close()
