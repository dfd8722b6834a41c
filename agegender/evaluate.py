"""Metrics: accuracy, balanced accuracy, one-off accuracy, confusion matrices, per-group tables,
calibration (expected calibration error, temperature scaling), and for exact ages MAE, CS(5) and the
age interval (the central 80% of the exact-age head's distribution, and how many true ages it holds)."""
import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from agegender import labels


def confusion_matrix(truth, predicted, class_count):
    """counts[true class, predicted class]."""
    truth, predicted = np.asarray(truth, np.int64), np.asarray(predicted, np.int64)  # [] is float otherwise
    return np.bincount(truth * class_count + predicted,
                       minlength=class_count * class_count).reshape(class_count, class_count)


def classification_metrics(truth, predicted, class_names):
    """Accuracy, balanced accuracy (mean recall over the classes present) and the confusion matrix."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    matrix = confusion_matrix(truth, predicted, len(class_names))
    support = matrix.sum(axis=1)
    recall = np.divide(np.diag(matrix), support, out=np.zeros(len(class_names)), where=support > 0)
    return {
        "faces": int(len(truth)),
        "accuracy": float(np.mean(truth == predicted)) if len(truth) else float("nan"),
        "balanced_accuracy": float(recall[support > 0].mean()) if support.any() else float("nan"),
        "recall": dict(zip(class_names, recall.round(4).tolist())),
        "confusion_matrix": matrix.tolist(),
        "classes": list(class_names),
    }


def one_off_accuracy(truth, predicted):
    """Share of predictions in the right age group or a neighbouring one."""
    return float(np.mean(np.abs(np.asarray(truth) - np.asarray(predicted)) <= 1)) if len(truth) else float("nan")


def breakdown(truth, predicted, groups, group_names):
    """Accuracy within each group (gender, age group, race): {group name: {faces, accuracy}}."""
    truth, predicted, groups = (np.asarray(a) for a in (truth, predicted, groups))
    table = {}
    for group, name in group_names.items():
        inside = groups == group
        if inside.any():
            table[name] = {"faces": int(inside.sum()), "accuracy": float(np.mean(truth[inside] == predicted[inside]))}
    return table


def expected_calibration_error(probabilities, truth, bins=15):
    """How far confidence is from accuracy: the faces are binned by the probability of the predicted
    class, and the gaps |accuracy - mean confidence| of the bins are averaged, weighted by their faces."""
    probabilities, truth = np.asarray(probabilities, float), np.asarray(truth)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == truth
    bin_of_face = np.minimum((confidence * bins).astype(int), bins - 1)
    gap = 0.0
    for index in np.unique(bin_of_face):
        inside = bin_of_face == index
        gap += inside.sum() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(gap / max(1, len(truth)))


TEMPERATURE_PRECISION = 1e-5  # of the fitted log(T): a factor of T within 1e-5 of 1 is no change at all
LOG_TEMPERATURE_RANGE = (-3.0, 3.0)  # where the fit searches log(T): T from 0.05 to 20


def fit_temperature(logits, truth):
    """The T > 0 that makes softmax(logits / T) most likely on these faces (temperature scaling, Guo et
    al. 2017): one number per head, so the predicted class never changes, only how sure it looks."""
    logits, truth = np.asarray(logits, np.float64), np.asarray(truth)

    def negative_log_likelihood(log_temperature):
        return -log_softmax(logits / np.exp(log_temperature), axis=1)[np.arange(len(truth)), truth].mean()

    return float(np.exp(minimize_scalar(negative_log_likelihood, bounds=LOG_TEMPERATURE_RANGE, method="bounded",
                                     options={"xatol": TEMPERATURE_PRECISION}).x))


def at_range_end(temperature):
    """Whether a fitted T stopped at an end of the search range: the likelihood still rose beyond it (on
    faces that are all right, it does as T falls to 0), so T says how few the faces were, not how sure
    the head should be."""
    return min(abs(np.log(temperature) - end) for end in LOG_TEMPERATURE_RANGE) < 1e-3


def calibrated(logits, temperature):
    return softmax(np.asarray(logits, np.float64) / temperature, axis=1)


def log_probabilities(probabilities):
    """A head's logits up to a constant per face, from its softmax (a probability of 0 read as 1e-30)."""
    return np.log(np.maximum(probabilities, 1e-30))


# The age interval shown with an exact age: the central 80% of the exact-age head's distribution, each
# tail cut off holding at most 10% of it. A tail of exactly 10% (up to rounding: ROUNDING) is cut, so
# that a uniform distribution over 20..29 gives 21..28 from both ends alike.
AGE_INTERVAL_TAIL = 0.1
AGE_INTERVAL_COVERAGE = 1 - 2 * AGE_INTERVAL_TAIL  # nominal: the share of true ages it should hold
ROUNDING = 1e-9


def central_years(distribution):
    """(low, high) years [n], both included, of exact-age distributions [n, 101] (year k at column k): the
    years below `low` hold at most 10% of the distribution, and so do those above `high`, each tail as
    long as it can be; so low <= high, and a point mass at 34 gives (34, 34), at 0 (0, 0), at 100
    (100, 100)."""
    years_below = np.cumsum(distribution, axis=1)             # [:, k]: the mass of years 0..k
    years_above = np.cumsum(distribution[:, ::-1], axis=1)    # [:, k]: the mass of years 100-k..100
    low = np.sum(years_below <= AGE_INTERVAL_TAIL + ROUNDING, axis=1)
    high = distribution.shape[1] - 1 - np.sum(years_above <= AGE_INTERVAL_TAIL + ROUNDING, axis=1)
    return low, high


def age_interval(probabilities, temperature=1.0):
    """The age intervals (central_years) of the exact-age head's softmax [n, 101], made sharper
    (temperature < 1) or flatter first."""
    return central_years(calibrated(log_probabilities(probabilities), temperature))


def interval_coverage(truth_years, low, high):
    """Share of faces whose true age lies in their interval [low, high], both ends included."""
    truth_years = np.asarray(truth_years)
    return float(np.mean((low <= truth_years) & (truth_years <= high))) if len(truth_years) else float("nan")


# The interval's temperatures tried: log(T) over LOG_TEMPERATURE_RANGE in steps of 0.01, from the lowest
# up. Coverage is a step function of T, not always rising with it (a face's interval may narrow at one
# end as it widens at the other; on models/improved's valid split it fell 63 times between steps, by up
# to 0.4 points, and beyond T = e it falls as every interval nears 10..90), so the steps are tried in
# turn rather than bisected; and the same answers always give the same step, so that a model calibrated
# again keeps its model.json as it is.
INTERVAL_LOG_TEMPERATURES = np.linspace(*LOG_TEMPERATURE_RANGE, 601)


def fit_interval_temperature(probabilities, truth_years):
    """The smallest T (of INTERVAL_LOG_TEMPERATURES) whose age intervals hold AGE_INTERVAL_COVERAGE of
    these faces' true ages, or where none does the T whose intervals hold most. Fitted on coverage, not
    likelihood, since the interval is what is shown: on models/improved's valid split the likeliest T
    (fit_temperature: 0.89) left intervals holding 84% of the ages. Only the interval reads it: the
    expected age (the age shown) stays as the head gives it."""
    logits = log_probabilities(probabilities)
    coverages = []
    for log_temperature in INTERVAL_LOG_TEMPERATURES:
        coverages.append(interval_coverage(truth_years, *central_years(calibrated(logits, np.exp(log_temperature)))))
        if coverages[-1] >= AGE_INTERVAL_COVERAGE:
            return float(np.exp(log_temperature))
    return float(np.exp(INTERVAL_LOG_TEMPERATURES[np.argmax(coverages)]))


def interval_figures(truth_years, low, high):
    """The age interval's coverage of labelled faces, its nominal coverage, and its mean width in years."""
    return {"coverage": interval_coverage(truth_years, low, high), "nominal_coverage": AGE_INTERVAL_COVERAGE,
            "mean_width_years": float(np.mean(high - low)) if len(low) else float("nan")}


def age_estimation_metrics(truth_years, predicted_years, age_edges):
    """MAE, CS(5) (share within 5 years), mean signed error, and the age groups the years fall in."""
    truth_years, predicted_years = np.asarray(truth_years, float), np.asarray(predicted_years, float)
    errors = predicted_years - truth_years
    groups = classification_metrics(labels.age_group(truth_years, age_edges),
                                    labels.age_group(predicted_years, age_edges), labels.age_group_names(age_edges))
    return {"faces": int(len(errors)), "mae": float(np.mean(np.abs(errors))) if len(errors) else float("nan"),
            "cs5": float(np.mean(np.abs(errors) <= 5)) if len(errors) else float("nan"),
            "mean_error": float(np.mean(errors)) if len(errors) else float("nan"), "age_groups": groups}


# Gender is much harder to read in children's faces, and UTKFace's races hold unequal shares of children
# (over a quarter of its Asian faces, a twentieth of its Black ones): children against adults, and the races
# compared among adults only, show how much of a gap between races is that.
ADULT_AGE = 18
ADULT_RACE = "race, 18 and over"
CHILD_OR_ADULT = "age, 18"


def report(class_names, truth, predicted, faces, age_edges, probabilities=None):
    """All figures for a model's predictions on labelled faces.

    class_names, truth, predicted: per task ("gender", "age_group", "exact_age": years); faces: the labels of
    the faces ({"gender", "age_group", "race"} arrays, and "age" for the races among adults) for
    breakdowns by gender, age group and race, so that differences between groups of people are shown,
    not averaged away. With the probabilities per task, the classification heads also report their
    expected calibration error.
    """
    group_names = {"gender": dict(enumerate(labels.GENDER_NAMES)),
                   "age_group": dict(enumerate(labels.age_group_names(age_edges))),
                   "race": dict(enumerate(labels.RACE_NAMES))}
    if "age" in faces:
        adult = np.asarray(faces["age"]) >= ADULT_AGE
        faces = {**faces, CHILD_OR_ADULT: adult.astype(int)}
        group_names[CHILD_OR_ADULT] = {0: f"under {ADULT_AGE}", 1: f"{ADULT_AGE} and over"}
        if "race" in faces:
            faces[ADULT_RACE] = np.where(adult, faces["race"], -1)
            group_names[ADULT_RACE] = group_names["race"]
    figures = {}
    for task, names in class_names.items():
        if task == "exact_age":
            figures[task] = age_estimation_metrics(truth[task], predicted[task], age_edges)
            continue
        figures[task] = classification_metrics(truth[task], predicted[task], names)
        if task == "age_group":
            figures[task]["one_off_accuracy"] = one_off_accuracy(truth[task], predicted[task])
        if probabilities is not None:
            figures[task]["expected_calibration_error"] = expected_calibration_error(probabilities[task], truth[task])
        figures[task]["by"] = {group: breakdown(truth[task], predicted[task], faces[group], names_of_group)
                               for group, names_of_group in group_names.items()
                               if group in faces and names_of_group}
    return figures


def headline(task, figures):
    """One line of a task's main figures, for titles and printouts."""
    if task == "exact_age":
        interval = figures.get("age_interval")
        return (f"MAE {figures['mae']:.2f} years, CS(5) {figures['cs5']:.4f}, "
                f"age groups from it {figures['age_groups']['accuracy']:.4f}" +
                (f", {interval['nominal_coverage']:.0%} age interval holds {interval['coverage']:.1%} of true "
                 f"ages (mean width {interval['mean_width_years']:.1f} years)" if interval else ""))
    line = f"accuracy {figures['accuracy']:.4f}, balanced accuracy {figures['balanced_accuracy']:.4f}"
    line += f", one-off {figures['one_off_accuracy']:.4f}" if "one_off_accuracy" in figures else ""
    return line + (f", ECE {figures['expected_calibration_error']:.3f}"
                   if "expected_calibration_error" in figures else "")


def confusion_of(figures):
    """(matrix, class names) to draw for a task: exact ages are drawn as the age groups they fall in."""
    figures = figures.get("age_groups", figures)
    return figures["confusion_matrix"], figures["classes"]
