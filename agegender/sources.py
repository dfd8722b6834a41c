"""Readers: turn a raw dataset (UTKFace file names, an IMDB-WIKI .mat, a CSV) into records.

A record is one image with its labels in the project's coding (see labels.py). Readers parse; they do
not judge: a label that cannot be parsed becomes a record with `problem` set, and wash.py decides
what to keep.
"""
import csv
import math
import os
import re
from dataclasses import dataclass

import numpy as np
import scipy.io

from agegender.errors import AgeGenderError
from agegender.labels import FEMALE, MALE

DATASETS = ("utkface", "wiki", "imdb", "csv")

UNPARSABLE_LABEL = "unparsable_label"


@dataclass(frozen=True)
class Record:
    path: str                   # where the image is read from
    key: str                    # dataset/relative path: names the image in reports, machine-independent
    age: int | None = None      # years; None when unknown
    gender: int | None = None   # labels.GENDER_NAMES index; None when unknown
    race: int = -1              # UTKFace's 0..4 (White, Black, Asian, Indian, Others); -1 when unknown
    face_box: tuple | None = None       # (x, y, w, h) in the image's pixels, when the source has one
    face_score: float = math.inf        # the source's detector confidence; -inf: no face found
    second_face_score: float = math.nan  # not NaN: the source saw a second face
    problem: str | None = None  # why the label is unusable, when it is


class SourceError(AgeGenderError):
    """A dataset that cannot be read at all (missing folder, unreadable metadata)."""


# age_gender_race_datetime.jpg.chip.jpg; race may be missing in a few real names, and a stray space or
# missing dot after the datetime must not lose a label that is plainly there.
UTKFACE_NAME = re.compile(r"^(\d{1,3})_([01])_(?:([0-4])_)?\d")


def read_utkface(folder):
    """Records for every file in a UTKFace folder, labels taken from the file names."""
    if not os.path.isdir(folder):
        raise SourceError(f"{folder}: not a folder (expected UTKFace images)")
    names = sorted(name for name in os.listdir(folder) if not name.startswith("."))
    if not names:
        raise SourceError(f"{folder}: the folder is empty")
    for name in names:
        path = os.path.join(folder, name)
        key = "utkface/" + name
        match = UTKFACE_NAME.match(name)
        if not match:
            yield Record(path, key, problem=UNPARSABLE_LABEL)
            continue
        age, gender, race = match.groups()
        yield Record(path, key, age=int(age), gender=int(gender),
                     race=int(race) if race is not None else -1)


def matlab_datenum_to_date(datenum):
    """numpy dates of Matlab serial date numbers (day 1 = 1 January of year 0)."""
    days_since_1970 = np.floor(np.asarray(datenum, dtype=np.float64)).astype(np.int64) - 719529
    return np.datetime64("1970-01-01", "D") + days_since_1970.astype("timedelta64[D]")


def read_imdb_wiki(folder, dataset, mat_path=None):
    """Records from `<dataset>.mat` (IMDB-WIKI's metadata) for the crops below `folder`.

    Age is the year the photo was taken minus the year of birth. IMDB-WIKI codes gender 1 = male,
    0 = female, NaN = unknown; it is converted to this project's coding here.
    """
    mat_path = mat_path or os.path.join(folder, f"{dataset}.mat")
    if not os.path.isfile(mat_path):
        raise SourceError(f"{mat_path}: metadata file not found (IMDB-WIKI keeps it beside the crops)")
    try:
        meta = scipy.io.loadmat(mat_path)
        table = meta[dataset][0, 0]
        full_paths = [str(cell[0]) for cell in table["full_path"][0]]
        birth_years = matlab_datenum_to_date(table["dob"][0]).astype("datetime64[Y]").astype(int) + 1970
        # photo_taken is uint16: subtract in signed integers or a birth after the photo wraps around.
        ages = table["photo_taken"][0].astype(np.int64) - birth_years
        genders = table["gender"][0].astype(np.float64)
        face_scores = table["face_score"][0].astype(np.float64)
        second_scores = table["second_face_score"][0].astype(np.float64)
        locations = table["face_location"][0]
    except (ValueError, KeyError, IndexError, TypeError, OSError, scipy.io.matlab.MatReadError) as error:
        raise SourceError(f"{mat_path}: not an IMDB-WIKI '{dataset}' metadata file ({error})") from None
    for i, relative in enumerate(full_paths):
        location = np.asarray(locations[i], dtype=np.float64).reshape(-1)
        box = None
        if location.size == 4 and np.all(np.isfinite(location)):
            x1, y1, x2, y2 = location.tolist()
            box = (x1, y1, x2 - x1, y2 - y1)
        gender = None if np.isnan(genders[i]) else (MALE if genders[i] == 1 else FEMALE)
        yield Record(os.path.join(folder, relative), f"{dataset}/{relative}", age=int(ages[i]),
                     gender=gender, face_box=box, face_score=float(face_scores[i]),
                     second_face_score=float(second_scores[i]))


GENDER_WORDS = {"0": MALE, "m": MALE, "male": MALE, "man": MALE,
                "1": FEMALE, "f": FEMALE, "female": FEMALE, "woman": FEMALE}


def read_csv(csv_path):
    """Records from a CSV with columns path,age,gender (race optional).

    Paths are relative to the CSV's folder. Gender is 0/1 in this project's coding (0 = male,
    1 = female) or a word (male/female, m/f); empty means unknown. Race is UTKFace's 0..4 (-1 or empty:
    unknown; wash.label_problem drops other numbers). The file is UTF-8, with or without
    the byte-order mark spreadsheets write.
    """
    if not os.path.isfile(csv_path):
        raise SourceError(f"{csv_path}: CSV file not found")
    try:
        yield from _read_csv_rows(csv_path)
    except UnicodeDecodeError:
        raise SourceError(f"{csv_path}: not UTF-8 text; save it as UTF-8 (in a spreadsheet: CSV UTF-8)") from None
    except csv.Error as error:
        raise SourceError(f"{csv_path}: not a readable CSV ({error})") from None


def _read_csv_rows(csv_path):
    folder = os.path.dirname(os.path.abspath(csv_path))
    with open(csv_path, newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        missing = {"path", "age", "gender"} - set(reader.fieldnames or ())
        if missing:
            raise SourceError(f"{csv_path}: missing column(s) {', '.join(sorted(missing))} "
                              "(expected a header path,age,gender[,race])")
        for row in reader:
            relative = (row["path"] or "").strip()
            key = "csv/" + relative
            try:
                age = int(float(row["age"]))
                gender_text = (row["gender"] or "").strip().lower()
                gender = GENDER_WORDS[gender_text] if gender_text else None
                race = int(row["race"]) if (row.get("race") or "").strip() else -1
            except (ValueError, OverflowError, KeyError, TypeError):  # OverflowError: an age of inf
                yield Record(os.path.join(folder, relative), key, problem=UNPARSABLE_LABEL)
                continue
            yield Record(os.path.join(folder, relative), key, age=age, gender=gender, race=race)


def read_source(dataset, src, mat_path=None):
    """Records of one dataset of DATASETS found at `src` (a folder, or the CSV file itself)."""
    if dataset == "utkface":
        return read_utkface(src)
    if dataset in ("wiki", "imdb"):
        return read_imdb_wiki(src, dataset, mat_path)
    if dataset == "csv":
        return read_csv(src)
    raise SourceError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
