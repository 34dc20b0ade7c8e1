"""Figures for the course: each function draws one kind of plot and returns its matplotlib Figure.

In lecture order: a timeline and digit grids (`00_why_deep_learning.ipynb`), activation curves
and decision boundaries (`02_activation_functions.ipynb`, then `06_backpropagation.ipynb` and
`08_regularization.ipynb`), network diagrams (`03_building_neural_networks.ipynb`), loss-surface
contours (`04_quantifying_loss.ipynb`), training curves (`08_regularization.ipynb`,
`09_capstone_digits.ipynb`), and confusion matrices (`09_capstone_digits.ipynb`).

Every function uses matplotlib's object-oriented API, never calls `plt.show()`, and writes with
font sizes readable on a projector. Functions that draw a single panel accept `ax=` to draw into
an existing Axes (then they return that Axes' figure). In a notebook, end the call with `;` or
assign the figure (``fig = plot_...(...)``) so it is displayed once.
"""

from __future__ import annotations

import functools
import math
import numbers
import textwrap
from collections.abc import Callable, Sequence
from itertools import pairwise

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import cycler
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import LinearSegmentedColormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from matplotlib.ticker import MaxNLocator

from dlhelpers import activations
from dlhelpers.validation import (
    as_float_array,
    as_label_array,
    check_number,
    check_same_shape,
    describe,
    is_torch,
)

# The course's one colour cycle: Petroff's ten colours, chosen to stay distinct under the
# common colour-vision deficiencies (M. A. Petroff 2021, arXiv:2107.02270; matplotlib's
# "petroff10" style): class 0 blue, class 1 orange, class 2 red, ...
CLASS_COLORS = ("#3f90da", "#ffa90e", "#bd1f01", "#94a4a2", "#832db6",
                "#a96b59", "#e76300", "#b9ac70", "#717581", "#92dadd")
HIGHLIGHT = CLASS_COLORS[2]  # a wrong prediction, the best epoch, the end of a descent path

# The course's one matplotlib style, for every figure of every notebook: text readable from
# the back of a room on a 1280x720 projector, figures that fit a slide, colour-blind-safe
# colours (CLASS_COLORS for lines and classes, viridis for values). Notebooks apply it once
# in their imports cell with `use_course_style()`; this module's functions draw with it too.
COURSE_STYLE = {
    "font.size": 14,
    "axes.titlesize": 16,
    "figure.titlesize": 16,
    "axes.labelsize": 14,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 12,
    "lines.linewidth": 2.5,
    "lines.markersize": 8,
    "axes.prop_cycle": cycler(color=CLASS_COLORS),
    "patch.facecolor": CLASS_COLORS[0],
    "image.cmap": "viridis",
    "figure.figsize": (6.4, 4.0),  # inches; at 100 dpi 640 x 400 pixels, half a slide
    "figure.dpi": 100,
    "savefig.bbox": "tight",
}
TITLE_SIZE = COURSE_STYLE["axes.titlesize"]
LABEL_SIZE = COURSE_STYLE["axes.labelsize"]
TICK_SIZE = COURSE_STYLE["xtick.labelsize"]
LEGEND_SIZE = COURSE_STYLE["legend.fontsize"]
LINE_WIDTH = COURSE_STYLE["lines.linewidth"]


def use_course_style() -> None:
    """Apply the course's matplotlib style (`COURSE_STYLE`) to every figure drawn after this.

    Called once in each notebook's imports cell, from `00_why_deep_learning.ipynb` on;
    matplotlib's own defaults come back with `plt.style.use("default")`.
    """
    plt.style.use(COURSE_STYLE)


def _in_course_style(plot: Callable) -> Callable:
    """`plot`, drawing in COURSE_STYLE whatever style the caller has set."""

    @functools.wraps(plot)
    def in_style(*args, **kwargs):
        with plt.style.context(COURSE_STYLE):
            return plot(*args, **kwargs)

    return in_style


def _axes(ax, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """A new figure with one Axes, or the figure of the given `ax`."""
    if ax is None:
        return plt.subplots(figsize=figsize, layout="constrained")
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {describe(ax)}")
    return ax.figure, ax


def _style(ax: Axes, title: str, xlabel: str = "", ylabel: str = "") -> None:
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    ax.set_ylabel(ylabel, fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)


def _check_callable(fn, name: str) -> None:
    if not callable(fn):
        raise TypeError(f"{name} must be a function, got {describe(fn)}")


def _as_numpy(value):
    """Predictions as a numpy array; a torch tensor is detached and moved to the CPU first."""
    if is_torch(value):
        return value.detach().cpu().numpy()
    return np.asarray(value)


# ---------------------------------------------------------------------------------------------
# 00: a timeline
# ---------------------------------------------------------------------------------------------


@_in_course_style
def plot_timeline(events, ax=None) -> Figure:
    """Events on a horizontal time axis, labels alternating above and below the line.

    Shape: `events` is a non-empty list of (year, text) pairs, in any order.

    >>> fig = plot_timeline([(1958, "perceptron"), (1986, "backpropagation")])
    """
    if isinstance(events, (str, bytes)) or not isinstance(events, Sequence) or not events:
        raise TypeError(f"events must be a non-empty list of (year, text) pairs, got "
                        f"{describe(events)}")
    for i, event in enumerate(events):
        if not (isinstance(event, Sequence) and len(event) == 2 and isinstance(event[1], str)):
            raise TypeError(f"events[{i}] must be a (year, text) pair, got {describe(event)}")
        check_number(event[0], f"the year of events[{i}]")
    events = sorted(events, key=lambda event: event[0])
    years = np.array([year for year, _ in events], dtype=np.float64)  # (E,)

    fig, ax = _axes(ax, (12, 4.5))
    span = max(years[-1] - years[0], 1.0)
    ax.hlines(0, years[0] - 0.06 * span, years[-1] + 0.06 * span, color="0.3", lw=3)
    heights = [1.0, -1.0, 2.0, -2.0]  # alternate sides; neighbours on a side at two heights
    for i, (year, text) in enumerate(events):
        height = heights[i % len(heights)]
        color = CLASS_COLORS[i % len(CLASS_COLORS)]
        ax.vlines(year, 0, height, color=color, lw=2)
        ax.plot(year, 0, "o", color=color, markersize=11, markeredgecolor="white", zorder=3)
        label = f"{year:g}\n" + textwrap.fill(text, 22)
        ax.text(year, height, label, ha="center", va="bottom" if height > 0 else "top",
                fontsize=LABEL_SIZE - 1, linespacing=1.2,
                bbox=dict(boxstyle="round,pad=0.35", fc="white", ec=color, lw=2))
    ax.set_xlim(years[0] - 0.12 * span, years[-1] + 0.12 * span)
    ax.set_ylim(-3.6, 3.6)
    ax.set_axis_off()
    return fig


# ---------------------------------------------------------------------------------------------
# 02: activation functions
# ---------------------------------------------------------------------------------------------


@_in_course_style
def plot_activation(fn: Callable, derivative: Callable | None = None, name: str | None = None,
                    z=None, ax=None) -> Figure:
    r"""The curve g(z) of an activation function and, if given, its derivative g'(z) (dashed).

    `fn` and `derivative` take an array of z values and return an array of the same shape.
    `z` defaults to 401 points in [-6, 6]; `name` defaults to ``fn.__name__``.

    Shape: z (P,); fn(z) and derivative(z) (P,).

    >>> fig = plot_activation(activations.sigmoid, activations.sigmoid_derivative)
    """
    _check_callable(fn, "fn")
    if derivative is not None:
        _check_callable(derivative, "derivative")
    if name is None:
        name = getattr(fn, "__name__", "g")
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {describe(name)}")
    z = np.linspace(-6.0, 6.0, 401) if z is None else as_float_array(z, "z", ndim=1)
    if z.size < 2:
        raise ValueError(f"z must hold at least 2 points to draw a curve, got shape {z.shape}")

    fig, ax = _axes(ax, (6.5, 4.5))
    ax.axhline(0, color="0.6", lw=1)
    ax.axvline(0, color="0.6", lw=1)
    g = as_float_array(fn(z), f"{name}(z)")
    check_same_shape(z, g, "z", f"{name}(z)")
    ax.plot(z, g, lw=LINE_WIDTH, color=CLASS_COLORS[0], label=f"{name}(z)")
    if derivative is not None:
        dg = as_float_array(derivative(z), f"{name}'(z)")
        check_same_shape(z, dg, "z", f"{name}'(z)")
        ax.plot(z, dg, "--", lw=LINE_WIDTH, color=CLASS_COLORS[1], label=f"{name}'(z)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=LEGEND_SIZE, loc="upper left")
    _style(ax, name, "z", "g(z) and g'(z)" if derivative is not None else "g(z)")
    return fig


@_in_course_style
def plot_activations() -> Figure:
    """Sigmoid, tanh and ReLU side by side, each with its derivative (dashed).

    >>> fig = plot_activations()
    """
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), layout="constrained")
    functions = [
        (activations.sigmoid, activations.sigmoid_derivative, "sigmoid"),
        (activations.tanh, activations.tanh_derivative, "tanh"),
        (activations.relu, activations.relu_derivative, "ReLU"),
    ]
    for ax, (fn, derivative, name) in zip(axes, functions, strict=True):
        plot_activation(fn, derivative, name, z=np.linspace(-5.0, 5.0, 401), ax=ax)
    return fig


# ---------------------------------------------------------------------------------------------
# 01, 02: decision boundaries
# ---------------------------------------------------------------------------------------------

_OUTPUT_KINDS = ("auto", "probability", "score", "label")


@_in_course_style
def plot_decision_boundary(predict: Callable, X, y, ax=None, resolution: int = 200,
                           title: str | None = None, output: str = "auto",
                           colorbar: bool = True) -> Figure:
    r"""The regions a classifier assigns to each class, with the data points on top.

    `predict` is called once with a float64 numpy array of grid points, shape (M, 2), and may
    return a numpy array or a torch tensor (wrap a torch model in a lambda that converts the
    grid with ``torch.from_numpy``). Its output is read as `output` says:

    - ``"probability"``: (M,) or (M, 1) values in [0, 1], the probability of class 1;
    - ``"score"``: (M,) or (M, 1) real scores (logits), class 1 where the score is > 0; shown
      through the sigmoid :math:`\sigma(z)`, so the boundary is at :math:`\sigma(z) = 0.5`;
    - ``"label"``: (M,) integer class labels;
    - (M, C) with C >= 2 is always per-class scores or probabilities: the class is the argmax;
    - ``"auto"`` (default): integers are labels, floats in [0, 1] probabilities, other floats
      scores.

    Two classes read from probabilities or scores are shaded by the probability of class 1,
    with the boundary at 0.5 drawn in black, and a colorbar reads the shade (``colorbar=False``
    leaves it out, e.g. in all but the last of a row of panels).

    Shape: X (N, 2), y (N,) integer labels; the grid has resolution x resolution points.

    >>> X = np.array([[0.0, 0.0], [1.0, 1.0]]); y = np.array([0, 1])
    >>> fig = plot_decision_boundary(lambda P: P.sum(axis=1) - 1.0, X, y)
    """
    _check_callable(predict, "predict")
    X = as_float_array(X, "X", ndim=2)
    if X.shape[1] != 2:
        raise ValueError(f"X must have 2 features (columns) to be drawn in the plane, "
                         f"got shape {X.shape}")
    y = as_label_array(y, "y")
    if y.min() < 0:
        raise ValueError(f"y must hold class labels >= 0, got {y.min()}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have one label per row of X ({X.shape[0]}), got {y.shape[0]}")
    check_number(resolution, "resolution", low=2, high=2000, integer=True)
    if output not in _OUTPUT_KINDS:
        raise ValueError(f"output must be one of {_OUTPUT_KINDS}, got {output!r}")

    low, high = X.min(axis=0), X.max(axis=0)  # (2,), (2,)
    pad = np.maximum(0.1 * (high - low), 0.5)
    x1 = np.linspace(low[0] - pad[0], high[0] + pad[0], resolution)
    x2 = np.linspace(low[1] - pad[1], high[1] + pad[1], resolution)
    grid1, grid2 = np.meshgrid(x1, x2)  # (R, R) each
    points = np.column_stack([grid1.ravel(), grid2.ravel()])  # (R*R, 2)
    kind, values = _read_predictions(_as_numpy(predict(points)), points.shape[0], output)
    n_classes = int(max(y.max() + 1, values.max() + 1 if kind == "label" else 2))
    if kind == "probability" and n_classes > 2:
        raise ValueError(f"predict returns one number per point (two classes), but y has "
                         f"labels up to {y.max()}: return (M, C) class scores instead")
    values = values.reshape(grid1.shape)  # (R*R,) -> (R, R)

    fig, ax = _axes(ax, (6.5, 5.5))
    if kind == "probability":
        light = [_lighten(CLASS_COLORS[0]), (1.0, 1.0, 1.0), _lighten(CLASS_COLORS[1])]
        cmap = LinearSegmentedColormap.from_list("two_classes", light)
        filled = ax.contourf(grid1, grid2, values, levels=np.linspace(0, 1, 11), cmap=cmap)
        ax.contour(grid1, grid2, values, levels=[0.5], colors="black", linewidths=2)
        if colorbar:
            bar = fig.colorbar(filled, ax=ax, shrink=0.85, ticks=[0, 0.5, 1])
            bar.set_label("P(class 1)", fontsize=LABEL_SIZE)
            bar.ax.tick_params(labelsize=TICK_SIZE)
    else:
        boundaries = np.arange(n_classes + 1) - 0.5  # class k fills (k - 0.5, k + 0.5)
        colors = [_lighten(CLASS_COLORS[k % len(CLASS_COLORS)]) for k in range(n_classes)]
        ax.contourf(grid1, grid2, values, levels=boundaries, colors=colors)
        ax.contour(grid1, grid2, values, levels=boundaries[1:-1], colors="black",
                   linewidths=1.5)
    size = 45 if X.shape[0] <= 300 else 18
    for k in np.unique(y):
        members = X[y == k]  # (N_k, 2)
        ax.scatter(members[:, 0], members[:, 1], s=size, color=CLASS_COLORS[k % 10],
                   edgecolors="black", linewidths=0.6, label=f"class {k}", zorder=3)
    ax.set_xlim(x1[0], x1[-1])
    ax.set_ylim(x2[0], x2[-1])
    ax.legend(fontsize=LEGEND_SIZE, loc="upper right", framealpha=0.9)
    _style(ax, "Decision boundary" if title is None else title, "$x_1$", "$x_2$")
    return fig


def _lighten(color, amount: float = 0.55) -> tuple[float, float, float]:
    """`color` mixed with white: region fills pale, points in full color."""
    r, g, b = to_rgb(color)
    return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)


def _read_predictions(raw: np.ndarray, m: int, output: str) -> tuple[str, np.ndarray]:
    """("probability", P(class 1) (M,)) or ("label", class (M,)) from predict's output."""
    expected = f"({m},), ({m}, 1) or ({m}, C)"
    if raw.ndim not in (1, 2) or raw.shape[0] != m:
        raise ValueError(f"predict must return one prediction per grid point, shape "
                         f"{expected}, got shape {raw.shape}")
    if raw.ndim == 2 and raw.shape[1] >= 2:  # (M, C) per-class scores
        return "label", as_float_array(raw, "predict's output").argmax(axis=1)  # (M,)
    if output == "auto" and raw.dtype.kind in "iub":
        output = "label"
    elif output == "auto":
        values = as_float_array(raw, "predict's output")
        output = "probability" if values.min() >= 0 and values.max() <= 1 else "score"
    if output == "label":
        labels = as_label_array(raw.reshape(-1), "predict's output")
        if labels.min() < 0:
            raise ValueError(f"predict's output must be class labels >= 0, got {labels.min()}")
        return "label", labels
    values = as_float_array(raw, "predict's output").reshape(-1)  # (M, 1) -> (M,)
    if output == "score":
        return "probability", activations.sigmoid(values)
    if values.min() < 0 or values.max() > 1:
        raise ValueError(f"predict's output must be probabilities in [0, 1] for "
                         f"output='probability', got values from {values.min():.4g} to "
                         f"{values.max():.4g}")
    return "probability", values


# ---------------------------------------------------------------------------------------------
# 03: network diagrams
# ---------------------------------------------------------------------------------------------

MAX_DRAWN_NEURONS = 10
_LAYER_COLORS = {"input": "#a6cee3", "hidden": "#b2df8a", "output": "#fdbf6f"}


@_in_course_style
def plot_network(layer_sizes, ax=None) -> Figure:
    r"""A fully connected network drawn from its layer sizes, with its parameter count.

    A layer of more than MAX_DRAWN_NEURONS neurons shows its first and last few with a
    vertical ellipsis between. The parameter count is
    :math:`\sum_{l} (n_{l-1} + 1)\, n_l` (weights and biases).

    Shape: `layer_sizes` lists the input size, the hidden sizes, then the output size.

    >>> fig = plot_network([2, 16, 16, 1])
    """
    if isinstance(layer_sizes, (str, bytes)) or not isinstance(layer_sizes, Sequence):
        raise TypeError(f"layer_sizes must be a list of integers, got {describe(layer_sizes)}")
    if len(layer_sizes) < 2:
        raise ValueError(f"layer_sizes must list at least an input and an output size, "
                         f"got {list(layer_sizes)}")
    for i, size in enumerate(layer_sizes):
        check_number(size, f"layer_sizes[{i}]", low=1, integer=True)
    sizes = [int(size) for size in layer_sizes]
    n_parameters = sum((n_in + 1) * n_out for n_in, n_out in pairwise(sizes))

    slots = [_drawn_slots(size) for size in sizes]  # per layer: neuron indices, None = "..."
    gap, radius = 3.5, 0.32  # between layers and neurons: 1 unit; a neuron's radius
    tallest = max(len(layer_slots) for layer_slots in slots)
    width, height = gap * (len(sizes) - 1) + 3.0, tallest + 1.7
    fig, ax = _axes(ax, (0.55 * width + 0.5, 0.55 * height + 0.6))
    centers = []  # per layer: (x, y) of each drawn neuron
    for layer, layer_slots in enumerate(slots):
        x, top = gap * layer, (len(layer_slots) - 1) / 2
        centers.append([(x, top - i) for i, slot in enumerate(layer_slots) if slot is not None])
        for i, slot in enumerate(layer_slots):
            if slot is None:  # three dots stand for the neurons not drawn
                ax.plot([x] * 3, top - i + np.array([-0.25, 0.0, 0.25]), "o", color="0.3",
                        markersize=3.5)
    edges = [[a, b] for left, right in pairwise(centers) for a in left for b in right]
    ax.add_collection(LineCollection(edges, colors="0.55", linewidths=0.8, alpha=0.6, zorder=1))

    bottom = -(tallest - 1) / 2
    for layer, (size, layer_centers) in enumerate(zip(sizes, centers, strict=True)):
        kind = "input" if layer == 0 else "output" if layer == len(sizes) - 1 else "hidden"
        for center in layer_centers:
            ax.add_patch(Circle(center, radius, fc=_LAYER_COLORS[kind], ec="black", lw=1.2,
                                zorder=2))
        name = f"hidden {layer}" if kind == "hidden" else kind
        ax.text(gap * layer, bottom - 0.8, f"{name}\n{size} neuron{'s' * (size != 1)}",
                ha="center", va="top", fontsize=LABEL_SIZE)
    ax.set_aspect("equal")
    ax.set_xlim(-1.5, width - 1.5)
    ax.set_ylim(bottom - 2.1, -bottom + 0.6)
    ax.set_axis_off()
    ax.set_title(f"Network {'-'.join(map(str, sizes))}: {n_parameters:,} parameters",
                 fontsize=TITLE_SIZE)
    return fig


def _drawn_slots(size: int) -> list[int | None]:
    """The neurons drawn for a layer: all, or the first and last few around None (the dots)."""
    if size <= MAX_DRAWN_NEURONS:
        return list(range(size))
    half = (MAX_DRAWN_NEURONS - 2) // 2
    return [*range(half), None, *range(size - half, size)]


# ---------------------------------------------------------------------------------------------
# 05: loss surfaces and descent paths
# ---------------------------------------------------------------------------------------------


@_in_course_style
def plot_loss_surface(loss_fn: Callable, path=None, xlim=None, ylim=None, levels=30, ax=None,
                      title: str | None = None) -> Figure:
    r"""Contours of a loss :math:`J(w_1, w_2)` and, if given, the path gradient descent took.

    `loss_fn(W1, W2)` receives two (200, 200) grids and must return J on the grid, elementwise
    (write it with numpy operations). `path` holds the visited points, one row per step: arrows
    join them, the start is a blue circle, the end a red star. `xlim`/`ylim` default to the
    path's range with a margin, or (-3, 3) without a path. `levels` is a number of contour
    levels or a sorted list of J values (e.g. ``np.logspace(...)`` for losses that vary a lot).

    Shape: path (T, 2).

    >>> fig = plot_loss_surface(lambda w1, w2: w1**2 + 3 * w2**2,
    ...                         path=np.array([[2.0, 1.0], [1.0, 0.4], [0.5, 0.1]]))
    """
    _check_callable(loss_fn, "loss_fn")
    if path is not None:
        path = as_float_array(path, "path", ndim=2)
        if path.shape[1] != 2:
            raise ValueError(f"path must have shape (T, 2), one (w1, w2) row per step, "
                             f"got {path.shape}")
    xlim = _limits(xlim, "xlim", None if path is None else path[:, 0])
    ylim = _limits(ylim, "ylim", None if path is None else path[:, 1])
    if isinstance(levels, numbers.Number):
        check_number(levels, "levels", low=2, integer=True)
    else:
        levels = as_float_array(levels, "levels", ndim=1)
        if levels.size < 2 or np.any(np.diff(levels) <= 0):
            raise ValueError(f"levels must be at least 2 increasing values, got {levels}")

    w1, w2 = np.meshgrid(np.linspace(*xlim, 200), np.linspace(*ylim, 200))  # (200, 200) each
    J = as_float_array(loss_fn(w1, w2), "loss_fn(w1, w2)")
    if J.shape != w1.shape:
        raise ValueError(f"loss_fn(w1, w2) must return J of shape {w1.shape} like the grids, "
                         f"got shape {J.shape}: write it with elementwise numpy operations")

    fig, ax = _axes(ax, (7.0, 5.5))
    filled = ax.contourf(w1, w2, J, levels=levels, cmap="viridis")
    ax.contour(w1, w2, J, levels=filled.levels, colors="white", linewidths=0.5, alpha=0.5)
    colorbar = fig.colorbar(filled, ax=ax)
    colorbar.set_label("$J(w_1, w_2)$", fontsize=LABEL_SIZE)
    colorbar.ax.tick_params(labelsize=TICK_SIZE)
    if path is not None:
        steps = np.diff(path, axis=0)  # (T-1, 2)
        ax.plot(path[:, 0], path[:, 1], "-", color="white", lw=1.5, alpha=0.8)
        ax.quiver(path[:-1, 0], path[:-1, 1], steps[:, 0], steps[:, 1], angles="xy",
                  scale_units="xy", scale=1, color=CLASS_COLORS[1], width=0.006, zorder=3)
        ax.plot(*path[0], "o", color=CLASS_COLORS[0], markersize=13, markeredgecolor="white",
                label="start", zorder=4)
        ax.plot(*path[-1], "*", color=HIGHLIGHT, markersize=20, markeredgecolor="white",
                label=f"end (after {len(path) - 1} steps)", zorder=4)
        ax.legend(fontsize=LEGEND_SIZE, loc="upper right", framealpha=0.9)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    _style(ax, "Loss surface" if title is None else title, "$w_1$", "$w_2$")
    return fig


def _limits(limits, name: str, coordinates) -> tuple[float, float]:
    """(low, high) as given, or around the path's `coordinates`, or (-3, 3)."""
    if limits is None:
        if coordinates is None:
            return (-3.0, 3.0)
        low, high = coordinates.min(), coordinates.max()
        margin = max(0.25 * (high - low), 0.5)
        return (float(low - margin), float(high + margin))
    if isinstance(limits, (str, bytes)) or not isinstance(limits, Sequence) or len(limits) != 2:
        raise TypeError(f"{name} must be a (low, high) pair of numbers, got {describe(limits)}")
    low = check_number(limits[0], f"{name}[0]")
    high = check_number(limits[1], f"{name}[1]")
    if not low < high:
        raise ValueError(f"{name} must be (low, high) with low < high, got {tuple(limits)}")
    return (float(low), float(high))


# ---------------------------------------------------------------------------------------------
# 07, 08: training curves
# ---------------------------------------------------------------------------------------------


@_in_course_style
def plot_training_curves(history) -> Figure:
    """Loss per epoch (train and validation) and, when measured, accuracy per epoch.

    `history` is a `dlhelpers.train.History` or any object with lists ``.train_loss``,
    ``.val_loss``, ``.train_acc``, ``.val_acc`` (the last three may be empty) and optionally
    ``.epochs``. The epoch with the lowest validation loss is marked: the one early stopping
    keeps. Without accuracies (a regression loss) only the loss panel is drawn.

    Shape: every non-empty list has one entry per epoch.

    >>> from types import SimpleNamespace
    >>> h = SimpleNamespace(train_loss=[0.9, 0.5], val_loss=[1.0, 0.7], train_acc=[], val_acc=[])
    >>> fig = plot_training_curves(h)
    """
    curves = {}
    for name in ("train_loss", "val_loss", "train_acc", "val_acc"):
        if not hasattr(history, name):
            raise TypeError(f"history must have a .{name} list (a dlhelpers.train.History), "
                            f"got {describe(history)}")
        values = list(getattr(history, name))
        curves[name] = as_float_array(values, f"history.{name}", ndim=1) if values else None
    if curves["train_loss"] is None:
        raise ValueError("history.train_loss is empty: train for at least one epoch first")
    n = curves["train_loss"].size
    for name, values in curves.items():
        if values is not None and values.size != n:
            raise ValueError(f"history.{name} must have one entry per epoch like "
                             f"history.train_loss ({n}), got {values.size}")
    epochs = np.arange(1, n + 1)
    if len(getattr(history, "epochs", [])) == n:  # resumed training starts after epoch 1
        epochs = np.asarray(history.epochs)

    has_accuracy = curves["train_acc"] is not None or curves["val_acc"] is not None
    fig, axes = plt.subplots(1, 2 if has_accuracy else 1, figsize=(13 if has_accuracy else 7, 4.8),
                             layout="constrained", squeeze=False)
    panels = [("loss", "Loss")] + ([("acc", "Accuracy")] if has_accuracy else [])
    marker = "o" if n <= 30 else None
    for ax, (suffix, title) in zip(axes[0], panels, strict=True):
        for split, color, style in (("train", CLASS_COLORS[0], "-"),
                                    ("val", CLASS_COLORS[1], "--")):
            values = curves[f"{split}_{suffix}"]
            if values is not None:
                label = "training" if split == "train" else "validation"
                ax.plot(epochs, values, style, color=color, lw=LINE_WIDTH, marker=marker,
                        markersize=5, label=label)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _style(ax, title, "epoch", title.lower())
    if curves["val_loss"] is not None:
        best = int(np.argmin(curves["val_loss"]))
        axes[0, 0].plot(epochs[best], curves["val_loss"][best], "*", color=HIGHLIGHT,
                        markersize=18, label=f"best validation (epoch {epochs[best]})", zorder=3)
    for ax in axes[0]:
        ax.legend(fontsize=LEGEND_SIZE)
    return fig


# ---------------------------------------------------------------------------------------------
# 09: handwritten digits
# ---------------------------------------------------------------------------------------------

MAX_DIGITS = 200


@_in_course_style
def plot_digits(images, labels=None, predictions=None, n_cols: int = 10) -> Figure:
    """A grid of 8x8 digit images; titles show the label and the prediction, errors in red.

    Shape: images (N, 64) or (N, 8, 8) with N <= MAX_DIGITS; labels and predictions (N,).

    >>> fig = plot_digits(np.zeros((3, 64)), labels=[0, 1, 2], predictions=[0, 1, 7])
    """
    images = as_float_array(images, "images", ndim=(2, 3))
    if images.shape[1:] not in ((64,), (8, 8)):
        raise ValueError(f"images must have shape (N, 64) or (N, 8, 8), got {images.shape}")
    images = images.reshape(-1, 8, 8)  # (N, 64) -> (N, 8, 8)
    n = images.shape[0]
    if n > MAX_DIGITS:
        raise ValueError(f"images holds {n} digits; plot_digits draws at most {MAX_DIGITS}: "
                         f"pass a slice such as images[:50]")
    labels = None if labels is None else _labels_for(labels, "labels", n)
    predictions = None if predictions is None else _labels_for(predictions, "predictions", n)
    check_number(n_cols, "n_cols", low=1, integer=True)

    cols = min(n_cols, n)
    rows = math.ceil(n / cols)
    title_lines = (labels is not None) + (predictions is not None)
    row_height = 1.15 + 0.35 * title_lines  # inches: the image, then its title
    fig, axes = plt.subplots(rows, cols, figsize=(1.25 * cols, row_height * rows + 0.4),
                             squeeze=False)
    low, high = images.min(), images.max()
    wrong = 0
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            fig.delaxes(ax)
            continue
        ax.imshow(images[i], cmap="gray_r", vmin=low, vmax=max(high, low + 1e-12))
        ax.set_xticks([])
        ax.set_yticks([])
        lines = [] if labels is None else [f"true {labels[i]}"]
        lines += [] if predictions is None else [f"pred {predictions[i]}"]
        is_wrong = labels is not None and predictions is not None and labels[i] != predictions[i]
        wrong += is_wrong
        color = HIGHLIGHT if is_wrong else "black"
        if lines:
            ax.set_title("\n".join(lines), fontsize=LABEL_SIZE - 2, color=color,
                         fontweight="bold" if is_wrong else "normal")
        for spine in ax.spines.values():
            spine.set_color(color if is_wrong else "0.8")
            spine.set_linewidth(3 if is_wrong else 1)
    if labels is not None and predictions is not None:
        fig.suptitle(f"{wrong} of {n} predictions wrong (red)", fontsize=TITLE_SIZE)
    fig.set_layout_engine("constrained")
    return fig


def _labels_for(values, name: str, n: int) -> np.ndarray:
    values = as_label_array(values, name)
    if values.shape[0] != n:
        raise ValueError(f"{name} must have one entry per image ({n}), got {values.shape[0]}")
    return values


@_in_course_style
def plot_confusion_matrix(y_true, y_pred, n_classes: int | None = None, ax=None) -> Figure:
    r"""Counts of (true class, predicted class) pairs, each cell annotated, with the accuracy.

    Row i, column j counts the samples of class i predicted as class j (scikit-learn's
    `confusion_matrix`); correct predictions lie on the diagonal.
    `n_classes` defaults to the largest label seen plus one.

    .. math:: C_{ij} = \#\{k : y^{(k)} = i,\ \hat{y}^{(k)} = j\}

    Shape: y_true (N,), y_pred (N,) integer labels in [0, n_classes).

    >>> fig = plot_confusion_matrix([0, 1, 1], [0, 1, 0])
    """
    y_true = as_label_array(y_true, "y_true")
    y_pred = as_label_array(y_pred, "y_pred")
    if y_pred.shape != y_true.shape:
        raise ValueError(f"y_pred must have one label per entry of y_true ({y_true.shape[0]}), "
                         f"got {y_pred.shape[0]}")
    if n_classes is None:
        n_classes = int(max(y_true.max(), y_pred.max())) + 1
    check_number(n_classes, "n_classes", low=1, integer=True)
    as_label_array(y_true, "y_true", n_classes=n_classes)
    as_label_array(y_pred, "y_pred", n_classes=n_classes)
    from sklearn.metrics import confusion_matrix  # imported when used: it takes ~1 s

    counts = confusion_matrix(y_true, y_pred, labels=np.arange(n_classes))  # (C, C)

    side = max(5.0, 0.65 * n_classes + 2.0)
    fig, ax = _axes(ax, (side + 1.0, side))
    image = ax.imshow(counts, cmap="Blues")
    fontsize = LABEL_SIZE if n_classes <= 10 else max(6, 140 // n_classes)
    for i in range(n_classes):
        for j in range(n_classes):
            dark = counts[i, j] > counts.max() / 2
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=fontsize,
                    color="white" if dark else "black")
    fig.colorbar(image, ax=ax, shrink=0.8).ax.tick_params(labelsize=TICK_SIZE)
    ax.set_xticks(range(n_classes))
    ax.set_yticks(range(n_classes))
    accuracy = np.trace(counts) / counts.sum()
    _style(ax, f"Confusion matrix (accuracy {accuracy:.1%})", "predicted class", "true class")
    ax.tick_params(labelsize=fontsize)
    return fig
