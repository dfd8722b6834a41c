"""The split on small made-up datasets: duplicate groups, whole groups per split, strata in proportion."""
import math

import numpy as np

from agegender import wash
from agegender.sources import Record


def test_faces_sharing_a_byte_or_a_pixel_digest_form_one_group_transitively():
    pairs = [(b"bytes A", b"pixels X"),
             (b"bytes B", b"pixels Y"),
             (b"bytes C", b"pixels X"),   # same pixels as face 0 (a re-encoded copy)
             (b"bytes D", b"pixels Z"),
             (b"bytes B", b"pixels W"),   # same file as face 1
             (b"bytes E", b"pixels W")]   # same pixels as face 4, so linked to face 1 through it
    assert wash.group_duplicates(pairs).tolist() == [0, 1, 0, 2, 1, 1]  # numbered by first face
    assert wash.group_duplicates([(b"a", b"x"), (b"b", b"y")]).tolist() == [0, 1]


def made_up_faces(count=2000, seed=0):
    """Group ids (some groups of 2-4 copies) and strata (6 of very different sizes) for `count` faces."""
    rng = np.random.default_rng(seed)
    sizes = rng.choice([1, 1, 1, 1, 2, 3, 4], size=count)
    group_ids = np.repeat(np.arange(count), sizes)[:count]
    strata = rng.choice(6, size=group_ids.max() + 1, p=[0.4, 0.25, 0.15, 0.1, 0.07, 0.03])[group_ids]
    return group_ids, strata


def test_split_keeps_groups_whole_and_each_stratum_in_proportion():
    group_ids, strata = made_up_faces()
    fractions = (0.85, 0.05, 0.10)
    splits = wash.assign_splits(group_ids, strata, fractions, seed=0)
    for group in np.unique(group_ids):
        assert len(set(splits[group_ids == group])) == 1
    for stratum in np.unique(strata):
        inside = splits[strata == stratum]
        for split, fraction in enumerate(fractions):
            assert abs(np.sum(inside == split) - fraction * len(inside)) <= 4, (stratum, split)  # one group


def test_split_depends_only_on_the_data_and_the_seed():
    group_ids, strata = made_up_faces()
    first = wash.assign_splits(group_ids, strata, (0.85, 0.05, 0.10), seed=0)
    assert np.array_equal(first, wash.assign_splits(group_ids, strata, (0.85, 0.05, 0.10), seed=0))
    other = wash.assign_splits(group_ids, strata, (0.85, 0.05, 0.10), seed=1)
    assert not np.array_equal(first, other)
    assert np.abs(np.bincount(first) - np.bincount(other)).max() <= 4 * 6  # the same shares, of other faces
    assert set(wash.assign_splits(group_ids, strata, (1, 0, 0), seed=0)) == {0}


def test_labels_that_cannot_be_used_are_named():
    options = wash.WashOptions()
    good = Record("a.jpg", "x/a.jpg", age=30, gender=0)
    assert wash.label_problem(good, options) is None
    cases = {"unparsable_label": Record("a", "a", problem="unparsable_label"),
             "age_out_of_range": Record("a", "a", age=101, gender=0),
             "unknown_gender": Record("a", "a", age=30),
             "race_out_of_range": Record("a", "a", age=30, gender=0, race=5),
             "no_face": Record("a", "a", age=30, gender=1, face_score=-math.inf),
             "low_face_score": Record("a", "a", age=30, gender=1, face_score=0.5),
             "second_face": Record("a", "a", age=30, gender=1, second_face_score=2.0)}
    for problem, record in cases.items():
        assert wash.label_problem(record, options) == problem
    assert wash.label_problem(Record("a", "a", age=30, gender=0, race=-1), options) is None  # unknown race
    assert wash.label_problem(Record("a", "a", age=30, gender=0, race=4), options) is None
    assert wash.label_problem(cases["second_face"], wash.WashOptions(keep_second_face=True)) is None
    assert wash.label_problem(cases["low_face_score"], wash.WashOptions(min_face_score=0.2)) is None
