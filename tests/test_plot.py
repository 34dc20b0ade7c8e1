"""dlhelpers.plot: each function returns a Figure whose artists hold the data they should show.

The drawn data is read back from the figure (line data, contour regions, texts) and compared
with an independent computation (the activation functions, the predict function at probe
points, scikit-learn's confusion matrix, torch's parameter count). Float data: rtol=1e-12.
"""

import re
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Circle  # noqa: E402
from matplotlib.path import Path  # noqa: E402
from matplotlib.quiver import Quiver  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

from dlhelpers import activations, plot  # noqa: E402
from dlhelpers.train import History  # noqa: E402

RTOL = 1e-12


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def labelled_lines(ax):
    return {line.get_label(): line for line in ax.lines if not line.get_label().startswith("_")}


# ----- activations -------------------------------------------------------------------------------


def test_plot_activation_draws_the_function_and_its_derivative():
    z = np.linspace(-3, 3, 50)
    fig = plot.plot_activation(activations.tanh, activations.tanh_derivative, "tanh", z=z)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    lines = labelled_lines(fig.axes[0])
    assert sorted(lines) == ["tanh'(z)", "tanh(z)"]
    np.testing.assert_allclose(lines["tanh(z)"].get_xdata(), z, rtol=RTOL)
    np.testing.assert_allclose(lines["tanh(z)"].get_ydata(), np.tanh(z), rtol=RTOL)
    np.testing.assert_allclose(lines["tanh'(z)"].get_ydata(), 1 - np.tanh(z) ** 2, rtol=RTOL)
    assert fig.axes[0].get_title() == "tanh"


def test_plot_activation_without_derivative_into_given_axes():
    fig, ax = plt.subplots()
    assert plot.plot_activation(activations.relu, ax=ax) is fig
    assert list(labelled_lines(ax)) == ["relu(z)"]  # name from fn.__name__


def test_plot_activation_rejects_bad_input():
    with pytest.raises(TypeError, match="fn must be a function"):
        plot.plot_activation(3.0)
    with pytest.raises(TypeError, match="derivative must be a function"):
        plot.plot_activation(np.tanh, derivative="no")
    with pytest.raises(ValueError, match="z must have 1 dimension"):
        plot.plot_activation(np.tanh, z=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"square\(z\) must have the same shape as z \(401,\)"):
        plot.plot_activation(lambda z: z[:10], name="square")
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        plot.plot_activation(np.tanh, ax="left")


def test_plot_activations_shows_sigmoid_tanh_relu_with_derivatives():
    fig = plot.plot_activations()
    assert [ax.get_title() for ax in fig.axes] == ["sigmoid", "tanh", "ReLU"]
    pairs = [(activations.sigmoid, activations.sigmoid_derivative),
             (activations.tanh, activations.tanh_derivative),
             (activations.relu, activations.relu_derivative)]
    for ax, (fn, derivative) in zip(fig.axes, pairs, strict=True):
        curve, slope = labelled_lines(ax).values()
        z = curve.get_xdata()
        np.testing.assert_allclose(curve.get_ydata(), fn(z), rtol=RTOL)
        np.testing.assert_allclose(slope.get_ydata(), derivative(z), rtol=RTOL)


# ----- decision boundaries -----------------------------------------------------------------------


def region_of(ax, point) -> tuple[ContourSet, int]:
    """The filled contour set and the index of its level band that contains `point`."""
    (filled,) = [c for c in ax.collections if isinstance(c, ContourSet) and c.filled]
    hits = [
        i for i, path in enumerate(filled.get_paths())
        # even-odd rule: inside an odd number of a band's polygons (holes count once more)
        if sum(Path(polygon).contains_point(point) for polygon in path.to_polygons()) % 2
    ]
    assert len(hits) == 1, f"{point} lies in bands {hits}"
    return filled, hits[0]


def toy_data(n_classes=2):
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(60, 2))
    y = np.arange(60) % n_classes
    return X, y


PROBES = np.array([[-1.5, -1.2], [1.7, 0.2], [0.3, -1.6], [-0.4, 1.5], [1.1, 1.4]])


def linear_score(P):
    return 1.5 * P[:, 0] - 2.0 * P[:, 1] + 0.3


def test_decision_boundary_bands_match_probabilities_at_probe_points():
    X, y = toy_data()
    seen = []

    def predict(P):
        seen.append(P.shape)
        return activations.sigmoid(linear_score(P)).reshape(-1, 1)  # (M, 1) probabilities

    fig = plot.plot_decision_boundary(predict, X, y, resolution=120, title="a line")
    ax = fig.axes[0]
    assert seen == [(120 * 120, 2)] and ax.get_title() == "a line"
    for probe in PROBES:
        filled, band = region_of(ax, probe)
        p = activations.sigmoid(linear_score(probe[None, :]))[0]
        assert filled.levels[band] - 0.02 <= p <= filled.levels[band + 1] + 0.02
    (line,) = [c for c in ax.collections if isinstance(c, ContourSet) and not c.filled]
    assert list(line.levels) == [0.5]


def test_decision_boundary_shading_has_a_colorbar_for_the_probability_only():
    X, y = toy_data()
    fig = plot.plot_decision_boundary(linear_score, X, y, resolution=40)
    ax, bar_ax = fig.axes
    assert bar_ax.get_ylabel() == "P(class 1)"
    assert [t.get_text() for t in bar_ax.get_yticklabels()] == ["0.0", "0.5", "1.0"]
    assert len(plot.plot_decision_boundary(linear_score, X, y, colorbar=False).axes) == 1
    labels = lambda P: (linear_score(P) > 0).astype(int)  # noqa: E731
    assert len(plot.plot_decision_boundary(labels, X, y, resolution=40).axes) == 1  # a legend


def test_decision_boundary_scores_are_shown_through_the_sigmoid():
    X, y = toy_data()
    fig = plot.plot_decision_boundary(linear_score, X, y, resolution=120)  # scores beyond [0, 1]
    for probe in PROBES:
        filled, band = region_of(fig.axes[0], probe)
        p = activations.sigmoid(linear_score(probe[None, :]))[0]
        assert filled.levels[band] - 0.02 <= p <= filled.levels[band + 1] + 0.02


def test_decision_boundary_labels_and_class_probabilities_give_one_band_per_class():
    X, y = toy_data(n_classes=3)

    def scores(P):  # (M, 3): class 0 left, class 1 upper right, class 2 lower right
        return np.stack([-P[:, 0], P[:, 0] + P[:, 1], P[:, 0] - P[:, 1]], axis=1)

    def labels(P):
        return scores(P).argmax(axis=1)  # (M,) int64

    for predict in (scores, labels):
        fig = plot.plot_decision_boundary(predict, X, y, resolution=150)
        for probe in PROBES:
            expected = labels(probe[None, :])[0]
            assert region_of(fig.axes[0], probe)[1] == expected
        plt.close(fig)


def test_decision_boundary_accepts_a_torch_model_and_draws_every_point_by_class():
    X, y = toy_data()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1),
                                torch.nn.Sigmoid()).double()
    fig = plot.plot_decision_boundary(lambda P: model(torch.from_numpy(P)), X, y, resolution=80)
    ax = fig.axes[0]
    for probe in PROBES:
        filled, band = region_of(ax, probe)
        with torch.no_grad():
            p = model(torch.from_numpy(probe[None, :])).item()
        assert filled.levels[band] - 0.02 <= p <= filled.levels[band + 1] + 0.02
    points = [c for c in ax.collections if not isinstance(c, ContourSet)]
    assert [c.get_label() for c in points] == ["class 0", "class 1"]
    for k, collection in enumerate(points):
        np.testing.assert_allclose(collection.get_offsets(), X[y == k], rtol=RTOL)


def test_decision_boundary_rejects_bad_input():
    X, y = toy_data()
    with pytest.raises(TypeError, match="predict must be a function"):
        plot.plot_decision_boundary(None, X, y)
    with pytest.raises(ValueError, match=r"X must have 2 features.*\(60, 3\)"):
        plot.plot_decision_boundary(linear_score, np.zeros((60, 3)), y)
    with pytest.raises(ValueError, match="one label per row of X"):
        plot.plot_decision_boundary(linear_score, X, y[:-1])
    with pytest.raises(ValueError, match=r"one prediction per grid point.*\(400, 2, 1\)"):
        plot.plot_decision_boundary(lambda P: P[:, :, None], X, y, resolution=20)
    with pytest.raises(ValueError, match=r"one prediction per grid point.*\(399,\)"):
        plot.plot_decision_boundary(lambda P: P[1:, 0], X, y, resolution=20)
    with pytest.raises(ValueError, match="must be finite"):
        plot.plot_decision_boundary(lambda P: P[:, 0] * np.nan, X, y, resolution=20)
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        plot.plot_decision_boundary(linear_score, X, y, resolution=20, output="probability")
    with pytest.raises(ValueError, match="output must be one of"):
        plot.plot_decision_boundary(linear_score, X, y, output="logits")
    with pytest.raises(ValueError, match="two classes"):
        plot.plot_decision_boundary(linear_score, X, np.arange(60) % 3, resolution=20)
    with pytest.raises(ValueError, match="resolution must be >= 2"):
        plot.plot_decision_boundary(linear_score, X, y, resolution=1)


# ----- network diagrams --------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[2, 1], [2, 16, 16, 1], [64, 32, 10]])
def test_plot_network_draws_capped_layers_and_counts_parameters(sizes):
    fig = plot.plot_network(sizes)
    ax = fig.axes[0]
    circles = [p for p in ax.patches if isinstance(p, Circle)]
    cap = plot.MAX_DRAWN_NEURONS
    assert len(circles) == sum(n if n <= cap else cap - 2 for n in sizes)
    layers = [torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:], strict=False)]
    n_parameters = sum(p.numel() for layer in layers for p in layer.parameters())
    assert f"{n_parameters:,} parameters" in ax.get_title()
    texts = [t.get_text() for t in ax.texts]
    assert texts[0] == f"input\n{sizes[0]} neuron{'s' * (sizes[0] > 1)}"
    assert texts[-1].startswith(f"output\n{sizes[-1]} neuron")
    assert len(texts) == len(sizes)


def test_plot_network_rejects_bad_sizes():
    with pytest.raises(ValueError, match="at least an input and an output"):
        plot.plot_network([3])
    with pytest.raises(ValueError, match=r"layer_sizes\[1\] must be >= 1"):
        plot.plot_network([3, 0, 1])
    with pytest.raises(TypeError, match=r"layer_sizes\[0\] must be an integer"):
        plot.plot_network([2.5, 1])
    with pytest.raises(TypeError, match="layer_sizes must be a list"):
        plot.plot_network("2-1")


# ----- loss surfaces -----------------------------------------------------------------------------


def bowl(w1, w2):
    return w1**2 + 4 * w2**2


def test_plot_loss_surface_draws_contours_and_the_path():
    path = [np.array([2.0, 1.5])]
    for _ in range(8):
        w = path[-1]
        path.append(w - 0.1 * np.array([2 * w[0], 8 * w[1]]))  # gradient descent on the bowl
    path = np.array(path)
    fig = plot.plot_loss_surface(bowl, path=path, levels=20)
    ax, colorbar = fig.axes
    assert colorbar.get_ylabel() == "$J(w_1, w_2)$"
    for probe in path[:3]:
        filled, band = region_of(ax, probe)
        assert filled.levels[band] - 1e-2 <= bowl(*probe) <= filled.levels[band + 1] + 1e-2
    (arrows,) = [c for c in ax.collections if isinstance(c, Quiver)]
    np.testing.assert_allclose(arrows.U, np.diff(path[:, 0]), rtol=RTOL)
    np.testing.assert_allclose(arrows.V, np.diff(path[:, 1]), rtol=RTOL)
    lines = labelled_lines(ax)
    np.testing.assert_allclose(np.ravel([lines["start"].get_data()]), path[0], rtol=RTOL)
    end = lines["end (after 8 steps)"]
    np.testing.assert_allclose(np.ravel([end.get_data()]), path[-1], rtol=RTOL)
    x0, x1 = ax.get_xlim()
    assert x0 < path[:, 0].min() and x1 > path[:, 0].max()


def test_plot_loss_surface_limits_levels_and_axes():
    fig, ax = plt.subplots()
    levels = np.logspace(-2, 2, 9)
    assert plot.plot_loss_surface(bowl, xlim=(-1, 2), ylim=(-0.5, 0.5), levels=levels,
                                  ax=ax) is fig
    assert ax.get_xlim() == (-1, 2) and ax.get_ylim() == (-0.5, 0.5)
    (filled,) = [c for c in ax.collections if isinstance(c, ContourSet) and c.filled]
    np.testing.assert_allclose(filled.levels, levels, rtol=RTOL)


def test_plot_loss_surface_rejects_bad_input():
    with pytest.raises(ValueError, match=r"path must have shape \(T, 2\)"):
        plot.plot_loss_surface(bowl, path=np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"must return J of shape \(200, 200\)"):
        plot.plot_loss_surface(lambda w1, w2: float(np.sum(w1)))
    with pytest.raises(ValueError, match="low < high"):
        plot.plot_loss_surface(bowl, xlim=(2, -2))
    with pytest.raises(TypeError, match="ylim must be a \\(low, high\\) pair"):
        plot.plot_loss_surface(bowl, ylim=3)
    with pytest.raises(ValueError, match="levels must be at least 2 increasing"):
        plot.plot_loss_surface(bowl, levels=[3.0, 1.0])
    with pytest.raises(TypeError, match="loss_fn must be a function"):
        plot.plot_loss_surface("bowl")


# ----- training curves ---------------------------------------------------------------------------


def test_plot_training_curves_draws_loss_and_accuracy_and_marks_the_best_epoch():
    history = History(epochs=[3, 4, 5, 6], train_loss=[0.9, 0.6, 0.4, 0.3],
                      val_loss=[1.0, 0.7, 0.65, 0.8], train_acc=[0.5, 0.7, 0.8, 0.9],
                      val_acc=[0.45, 0.6, 0.7, 0.68])
    fig = plot.plot_training_curves(history)
    loss_ax, acc_ax = fig.axes
    loss, acc = labelled_lines(loss_ax), labelled_lines(acc_ax)
    np.testing.assert_allclose(loss["training"].get_ydata(), history.train_loss, rtol=RTOL)
    np.testing.assert_allclose(loss["validation"].get_ydata(), history.val_loss, rtol=RTOL)
    np.testing.assert_allclose(acc["training"].get_ydata(), history.train_acc, rtol=RTOL)
    np.testing.assert_allclose(acc["validation"].get_ydata(), history.val_acc, rtol=RTOL)
    np.testing.assert_array_equal(loss["training"].get_xdata(), history.epochs)
    best = int(np.argmin(history.val_loss))
    star = loss[f"best validation (epoch {history.epochs[best]})"]
    np.testing.assert_allclose(np.ravel([star.get_data()]),
                               [history.epochs[best], history.val_loss[best]], rtol=RTOL)


def test_plot_training_curves_without_validation_or_accuracy():
    history = SimpleNamespace(train_loss=[3.0, 2.0, 1.5], val_loss=[], train_acc=[], val_acc=[])
    fig = plot.plot_training_curves(history)
    (ax,) = fig.axes
    assert list(labelled_lines(ax)) == ["training"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3])


def test_plot_training_curves_rejects_bad_histories():
    with pytest.raises(ValueError, match="train_loss is empty"):
        plot.plot_training_curves(History())
    with pytest.raises(ValueError, match=r"history.val_loss must have one entry per epoch.*\(3\)"):
        plot.plot_training_curves(SimpleNamespace(train_loss=[1, 2, 3], val_loss=[1, 2],
                                                  train_acc=[], val_acc=[]))
    with pytest.raises(TypeError, match="history must have a .val_acc list"):
        plot.plot_training_curves(SimpleNamespace(train_loss=[1.0], val_loss=[], train_acc=[]))
    with pytest.raises(ValueError, match="must be finite"):
        plot.plot_training_curves(SimpleNamespace(train_loss=[1.0, np.nan], val_loss=[],
                                                  train_acc=[], val_acc=[]))


# ----- digits ------------------------------------------------------------------------------------


def test_plot_digits_shows_each_image_with_label_and_prediction():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 17, size=(13, 64)).astype(float)
    labels = np.arange(13) % 10
    predictions = labels.copy()
    predictions[[2, 9]] = [5, 0]
    fig = plot.plot_digits(images, labels, predictions, n_cols=5)
    assert len(fig.axes) == 13  # a 3 x 5 grid without its two unused cells
    for i, ax in enumerate(fig.axes):
        np.testing.assert_array_equal(ax.images[0].get_array(), images[i].reshape(8, 8))
        title = ax.title
        assert title.get_text() == f"true {labels[i]}\npred {predictions[i]}"
        is_red = title.get_color() == plot.HIGHLIGHT
        assert is_red == (i in (2, 9))
    assert fig._suptitle.get_text() == "2 of 13 predictions wrong (red)"


def test_plot_digits_accepts_8x8_images_without_titles():
    fig = plot.plot_digits(np.zeros((4, 8, 8)))
    assert len(fig.axes) == 4
    assert all(ax.get_title() == "" for ax in fig.axes)


def test_plot_digits_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(N, 64\) or \(N, 8, 8\), got \(3, 63\)"):
        plot.plot_digits(np.zeros((3, 63)))
    with pytest.raises(ValueError, match=r"labels must have one entry per image \(3\), got 2"):
        plot.plot_digits(np.zeros((3, 64)), labels=[1, 2])
    with pytest.raises(TypeError, match="predictions must hold integer class labels"):
        plot.plot_digits(np.zeros((3, 64)), predictions=[0.5, 1.0, 2.0])
    with pytest.raises(ValueError, match="at most"):
        plot.plot_digits(np.zeros((plot.MAX_DIGITS + 1, 64)))
    with pytest.raises(ValueError, match="n_cols must be >= 1"):
        plot.plot_digits(np.zeros((3, 64)), n_cols=0)


# ----- confusion matrix --------------------------------------------------------------------------


def test_plot_confusion_matrix_annotates_the_counts_of_sklearn():
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 4, size=200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 4, size=200))
    fig = plot.plot_confusion_matrix(y_true, y_pred, n_classes=5)  # class 4 never occurs
    ax = fig.axes[0]
    expected = confusion_matrix(y_true, y_pred, labels=np.arange(5))
    counts = np.zeros((5, 5), dtype=int)
    for text in ax.texts:
        col, row = text.get_position()
        counts[int(row), int(col)] = int(text.get_text())
    assert len(ax.texts) == 25
    np.testing.assert_array_equal(counts, expected)
    np.testing.assert_array_equal(ax.images[0].get_array(), expected)
    accuracy = float(re.search(r"accuracy ([\d.]+)%", ax.get_title()).group(1))
    assert accuracy == pytest.approx(100 * np.mean(y_true == y_pred), abs=0.05)


def test_plot_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="one label per entry of y_true"):
        plot.plot_confusion_matrix([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match=r"labels in \[0, 1\]"):
        plot.plot_confusion_matrix([0, 1, 2], [0, 1, 1], n_classes=2)
    with pytest.raises(TypeError, match="y_pred must hold integer class labels"):
        plot.plot_confusion_matrix([0, 1], [0.2, 0.9])
    with pytest.raises(ValueError, match="y_true must be 1-D"):
        plot.plot_confusion_matrix([[0, 1]], [[0, 1]])


# ----- timeline ----------------------------------------------------------------------------------


def test_plot_timeline_draws_one_label_per_event_in_year_order():
    events = [(1986, "Backpropagation"), (1958, "Perceptron"), (2012, "AlexNet")]
    fig = plot.plot_timeline(events)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["1958\nPerceptron", "1986\nBackpropagation", "2012\nAlexNet"]
    xs = [t.get_position()[0] for t in fig.axes[0].texts]
    assert xs == [1958, 1986, 2012]


def test_plot_timeline_rejects_bad_events():
    with pytest.raises(TypeError, match="non-empty list of \\(year, text\\) pairs"):
        plot.plot_timeline([])
    with pytest.raises(TypeError, match=r"events\[1\] must be a \(year, text\) pair"):
        plot.plot_timeline([(1958, "Perceptron"), (1986,)])
    with pytest.raises(TypeError, match=r"the year of events\[0\] must be a number"):
        plot.plot_timeline([("1958", "Perceptron")])


# ----- the course's style ------------------------------------------------------------------------


@pytest.fixture
def default_style():
    with plt.style.context("default"):
        yield


def test_course_palette_is_petroffs_colour_blind_safe_cycle():
    if "petroff10" not in plt.style.available:  # matplotlib < 3.10 does not ship it
        pytest.skip("this matplotlib has no petroff10 style to compare with")
    expected = plt.style.library["petroff10"]["axes.prop_cycle"].by_key()["color"]
    assert list(plot.CLASS_COLORS) == expected
    assert plot.COURSE_STYLE["axes.prop_cycle"].by_key()["color"] == expected


def test_use_course_style_sets_projector_size_text_and_the_palette(default_style):
    assert plt.rcParams["font.size"] == 10  # matplotlib's default, too small on a projector
    plot.use_course_style()
    assert plt.rcParams["font.size"] == 14
    assert plt.rcParams["xtick.labelsize"] == plot.TICK_SIZE == 12
    fig, ax = plt.subplots()
    (line,) = ax.plot([0, 1], [0, 1])
    assert line.get_color() == plot.CLASS_COLORS[0]
    assert line.get_linewidth() == plot.LINE_WIDTH
    assert tuple(fig.get_size_inches()) == plot.COURSE_STYLE["figure.figsize"]


FIGURES = {
    "activations": lambda: plot.plot_activations(),
    "loss surface": lambda: plot.plot_loss_surface(
        lambda a, b: a**2 + b**2, path=np.array([[1.0, 1.0], [0.5, 0.5]])
    ),
    "confusion matrix": lambda: plot.plot_confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2]),
    "network": lambda: plot.plot_network([2, 3, 1]),
    "timeline": lambda: plot.plot_timeline([(1958, "perceptron"), (1986, "backprop")]),
}


@pytest.mark.parametrize("make", FIGURES.values(), ids=FIGURES.keys())
def test_plot_functions_draw_in_the_course_style_whatever_the_callers_style(make, default_style):
    fig = make()
    fig.canvas.draw()
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text()]
    assert texts
    for text in texts:  # nothing smaller than the tick labels: readable on a projector
        assert text.get_fontsize() >= plot.TICK_SIZE, text.get_text()
    assert plt.rcParams["font.size"] == 10  # the caller's style is left as it was
