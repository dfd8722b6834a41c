"""Metrics on small hand-made predictions whose right answers can be counted by hand."""
import math

import numpy as np

from agegender import evaluate

TRUTH = [0, 0, 1, 2, 2, 2]
PREDICTED = [0, 1, 1, 2, 0, 2]


def test_confusion_matrix_counts_true_class_by_predicted_class():
    assert evaluate.confusion_matrix(TRUTH, PREDICTED, 3).tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_balanced_accuracy_averages_the_recall_of_the_classes_present():
    figures = evaluate.classification_metrics(TRUTH, PREDICTED, ["a", "b", "c", "never true"])
    assert figures["faces"] == 6 and math.isclose(figures["accuracy"], 4 / 6)
    assert figures["recall"] == {"a": 0.5, "b": 1.0, "c": 0.6667, "never true": 0.0}
    assert math.isclose(figures["balanced_accuracy"], (0.5 + 1 + 2 / 3) / 3)  # the absent class does not count
    assert np.array(figures["confusion_matrix"]).shape == (4, 4)
    no_faces = np.array([], np.int64)  # as a split without faces gives them
    empty = evaluate.classification_metrics(no_faces, no_faces, ["a", "b"])
    assert math.isnan(empty["accuracy"]) and math.isnan(empty["balanced_accuracy"])
    assert evaluate.classification_metrics([], [], ["a", "b"])["confusion_matrix"] == [[0, 0], [0, 0]]


def test_one_off_accuracy_counts_neighbouring_groups_as_right():
    assert evaluate.one_off_accuracy([0, 1, 2, 3], [1, 3, 2, 0]) == 0.5
    assert math.isnan(evaluate.one_off_accuracy([], []))


def test_breakdown_gives_each_groups_own_accuracy_and_skips_empty_groups():
    table = evaluate.breakdown(TRUTH, PREDICTED, groups=[0, 0, 0, 1, 1, 1], group_names={0: "x", 1: "y", 2: "z"})
    assert table == {"x": {"faces": 3, "accuracy": 2 / 3}, "y": {"faces": 3, "accuracy": 2 / 3}}


def test_exact_age_metrics_mae_cs5_signed_error_and_the_groups_the_years_fall_in():
    figures = evaluate.age_estimation_metrics([20, 40, 60, 5], [25, 40, 50, 12.5], age_edges=(30, 46, 60))
    assert figures["faces"] == 4
    assert math.isclose(figures["mae"], (5 + 0 + 10 + 7.5) / 4)
    assert figures["cs5"] == 0.5  # within 5 years: 20 -> 25 and 40 -> 40
    assert math.isclose(figures["mean_error"], (5 + 0 - 10 + 7.5) / 4)
    groups = figures["age_groups"]  # 60 is in 60+, 50 in 46-59: the one group missed
    assert groups["accuracy"] == 0.75 and groups["confusion_matrix"][3] == [0, 0, 1, 0]


def test_report_has_every_task_and_breakdowns_by_gender_age_group_and_race():
    truth = {"gender": [0, 1, 1, 0], "age_group": [0, 1, 3, 3], "exact_age": [20, 35, 70, 65]}
    predicted = {"gender": [0, 1, 0, 0], "age_group": [0, 2, 3, 1], "exact_age": [22, 35, 61, 64]}
    faces = {"gender": np.array(truth["gender"]), "age_group": np.array(truth["age_group"]), "race": np.array([0, 2, 2, 4]),
             "age": np.array([20, 35, 70, 65])}
    names = {"gender": ["male", "female"], "age_group": ["0-29", "30-45", "46-59", "60+"], "exact_age": None}
    figures = evaluate.report(names, truth, predicted, faces, (30, 46, 60))
    assert figures["gender"]["accuracy"] == 0.75
    assert figures["gender"]["by"]["race"] == {"White": {"faces": 1, "accuracy": 1.0},
                                               "Asian": {"faces": 2, "accuracy": 0.5},
                                               "Others": {"faces": 1, "accuracy": 1.0}}
    assert figures["gender"]["by"]["race, 18 and over"] == figures["gender"]["by"]["race"]
    faces["age"] = np.array([20, 35, 17, 65])  # the Asian face gender missed is a child's
    figures = evaluate.report(names, truth, predicted, faces, (30, 46, 60))
    assert figures["gender"]["by"]["race, 18 and over"] == {"White": {"faces": 1, "accuracy": 1.0},
                                                            "Asian": {"faces": 1, "accuracy": 1.0},
                                                            "Others": {"faces": 1, "accuracy": 1.0}}
    assert figures["gender"]["by"]["age, 18"] == {"under 18": {"faces": 1, "accuracy": 0.0},
                                                  "18 and over": {"faces": 3, "accuracy": 1.0}}
    assert figures["age_group"]["one_off_accuracy"] == 0.75 and figures["age_group"]["by"]["gender"]["female"]["faces"] == 2
    assert math.isclose(figures["exact_age"]["mae"], (2 + 0 + 9 + 1) / 4)
    assert evaluate.headline("age_group", figures["age_group"]).startswith("accuracy 0.5000, balanced accuracy")
    assert evaluate.headline("exact_age", figures["exact_age"]).startswith("MAE 3.00 years, CS(5) 0.7500")
    matrix, classes = evaluate.confusion_of(figures["exact_age"])  # years are drawn as their groups
    assert classes == names["age_group"] and np.sum(matrix) == 4
