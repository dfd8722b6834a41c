"""The single definition of the label coding: gender numbers and age groups.

The two public sources disagree on gender (UTKFace: 0 = male, 1 = female; IMDB-WIKI: 1 = male,
0 = female). Everything this project writes uses UTKFace's coding; readers convert at the edge.
"""
import numpy as np

GENDER_NAMES = ("male", "female")  # index = the gender number in every store and model
MALE, FEMALE = 0, 1

RACE_NAMES = ("White", "Black", "Asian", "Indian", "Others")  # UTKFace's coding; -1 = unknown

MAX_AGE = 100  # ages outside 0..MAX_AGE are dropped as implausible labels

# Age-group presets: the lower edge of every group but the first. Groups are [edge_i, edge_i+1).
AGE_GROUP_PRESETS = {
    3: (30, 60),                                  # young / middle / old
    4: (30, 46, 60),                              # the original project: 0-29, 30-45, 46-59, 60+
    5: (20, 30, 45, 60),
    8: (4, 8, 15, 25, 38, 48, 60),                # Adience's eight groups, made contiguous
    10: (10, 20, 30, 40, 50, 60, 70, 80, 90),     # decades
    12: (3, 7, 13, 18, 25, 30, 35, 40, 50, 60, 70),
}
DEFAULT_AGE_EDGES = AGE_GROUP_PRESETS[4]


def parse_age_edges(text):
    """'4' picks a preset; '30,46,60' gives the edges themselves ('18,': one edge, two groups).
    Raises ValueError when invalid."""
    text = str(text).strip()
    usage = (f"age groups are a count, one of {', '.join(map(str, sorted(AGE_GROUP_PRESETS)))}, or ascending "
             "lower edges such as 30,46,60 (one edge: 18,)")
    if "," not in text:
        if text.isdigit() and int(text) in AGE_GROUP_PRESETS:
            return AGE_GROUP_PRESETS[int(text)]
        raise ValueError(f"{text!r}: {'no preset of that many groups; ' if text.isdigit() else ''}{usage}")
    try:
        edges = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"{text!r}: {usage}") from None
    if not are_age_edges(edges):
        raise ValueError(f"age edges must be strictly ascending within 1..{MAX_AGE}; got {text!r}")
    return edges


def are_age_edges(edges):
    """Whether `edges` (a list or tuple) are age groups' lower edges: whole years, strictly ascending,
    within 1..MAX_AGE."""
    return (bool(edges) and all(isinstance(edge, int) and not isinstance(edge, bool) for edge in edges)
            and list(edges) == sorted(set(edges)) and edges[0] > 0 and edges[-1] <= MAX_AGE)


def age_group(age, edges=DEFAULT_AGE_EDGES):
    """Group index of an age (scalar or array) for the given edges."""
    return np.searchsorted(np.asarray(edges), age, side="right")


def age_group_names(edges=DEFAULT_AGE_EDGES):
    """Human names of the groups, e.g. ('0-29', '30-45', '46-59', '60+')."""
    lows = (0,) + tuple(edges)
    return tuple(f"{low}-{high - 1}" for low, high in zip(lows, edges)) + (f"{edges[-1]}+",)
