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


def distributions(*rows):
    """Exact-age distributions [n, 101] from rows of {year: weight}, each normalised."""
    probabilities = np.zeros((len(rows), 101))
    for row, weights in zip(probabilities, rows):
        for year, weight in weights.items():
            row[year] = weight
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def normal(centre, sd):
    years = np.arange(101)
    return dict(zip(years, np.exp(-0.5 * ((years - centre) / sd) ** 2)))


def test_the_age_interval_cuts_at_most_a_tenth_of_the_distribution_at_each_end():
    low, high = evaluate.age_interval(distributions({34: 1}, {0: 1}, {100: 1}, dict.fromkeys(range(20, 30), 1)))
    # A point mass is its own interval, at the ends of the years too; of ten equal years 20..29, the
    # first and the last are a tenth each: cut, leaving exactly 80%.
    assert list(zip(low, high)) == [(34, 34), (0, 0), (100, 100), (21, 28)]
    # 15% on 10, 85% on 90: neither is a tail of at most a tenth, so both stay.
    assert [int(year) for year in np.ravel(evaluate.age_interval(distributions({10: 0.15, 90: 0.85})))] == [10, 90]
    assert evaluate.interval_coverage([34, 1, 100, 20, 21, 28, 29], [34, 0, 100, 21, 21, 21, 21],
                                      [34, 0, 100, 28, 28, 28, 28]) == 4 / 7  # 1 outside (0, 0), 20 and 29 outside
    figures = evaluate.interval_figures([30, 50], np.array([28, 40]), np.array([41, 44]))
    assert figures == {"coverage": 0.5, "nominal_coverage": 0.8, "mean_width_years": 8.5}
    exact = {**evaluate.age_estimation_metrics([30, 50], [31, 45], (30, 46, 60)), "age_interval": figures}
    assert evaluate.headline("exact_age", exact).endswith(
        ", 80% age interval holds 50.0% of true ages (mean width 8.5 years)")


def test_a_temperature_sharpens_or_flattens_the_distribution_the_interval_is_read_from():
    wide = distributions(normal(40, 6))
    # normal(40, 6) ** (1 / 0.25) is normal(40, 3): a quarter of the temperature halves its spread.
    assert evaluate.age_interval(wide, 0.25) == evaluate.age_interval(distributions(normal(40, 3)))
    (low, high), (sharp_low, sharp_high), (flat_low, flat_high) = (
        (int(a[0]), int(b[0])) for a, b in (evaluate.age_interval(wide, t) for t in (1.0, 0.25, 4.0)))
    assert (low, high) == (32, 48)  # years 0..31 hold 7.8% of it, with 32 10.6%: 32 stays (so does 48)
    assert low < sharp_low <= 40 <= sharp_high < high and flat_low < low and high < flat_high


def test_the_interval_temperature_fit_reaches_the_nominal_coverage_of_true_ages():
    """Faces whose true ages spread twice as far around the head's best guess as the head says (2 to 4
    years): its intervals hold far fewer than 80% of them, until the fitted temperature (about 4, which
    doubles the head's spread) widens them; on other faces drawn alike they then hold 80% too."""
    generator = np.random.default_rng(0)

    def faces(count):
        centres, spreads = generator.uniform(15, 85, count), generator.uniform(2, 4, count)
        truth = np.rint(centres + generator.normal(0, 2 * spreads)).astype(int)
        return distributions(*(normal(centre, spread) for centre, spread in zip(centres, spreads))), truth

    probabilities, truth = faces(1000)
    assert evaluate.interval_coverage(truth, *evaluate.age_interval(probabilities)) < 0.6
    temperature = evaluate.fit_interval_temperature(probabilities, truth)
    assert 3.2 < temperature < 5
    assert 0.8 <= evaluate.interval_coverage(truth, *evaluate.age_interval(probabilities, temperature)) < 0.81
    # The smallest temperature that does: one grid step lower falls short.
    step = np.exp(evaluate.INTERVAL_LOG_TEMPERATURES[1] - evaluate.INTERVAL_LOG_TEMPERATURES[0])
    assert evaluate.interval_coverage(truth, *evaluate.age_interval(probabilities, temperature / step)) < 0.8
    fresh_probabilities, fresh_truth = faces(1000)
    coverage = evaluate.interval_coverage(fresh_truth, *evaluate.age_interval(fresh_probabilities, temperature))
    assert abs(coverage - 0.8) < 0.03, coverage
