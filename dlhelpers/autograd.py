r"""A scalar reverse-mode automatic differentiation engine, and a drawing of its graph.

Introduced in `06_backpropagation.ipynb`. Every `Value` remembers the values it was computed from
and the operation that combined them. `backward()` then applies the chain rule from the output
back to every input, reusing each gradient computed for a later node:

.. math:: \frac{\partial J}{\partial w_1} = \frac{\partial J}{\partial \hat{y}}
          \frac{\partial \hat{y}}{\partial z_1} \frac{\partial z_1}{\partial w_1}

In the spirit of karpathy/micrograd's `engine.py`: each operation computes its result and, right
beside it, its local derivative. Gradients accumulate with `+=`, so a value used several times
receives the contribution of every use (d(x * x)/dx = x + x). PyTorch's `torch.autograd` does
the same for tensors.
"""

from __future__ import annotations

import math
import sys

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import BoxStyle, FancyArrowPatch

from dlhelpers import activations
from dlhelpers.validation import check_number, describe

# math.exp overflows float64 above log(largest float) ~ 709.78.
_MAX_EXP_ARGUMENT = math.log(sys.float_info.max)


class Value:
    r"""A number that remembers how it was computed, so that gradients can flow back to it.

    ``.data`` is the number (a float). ``.grad`` is :math:`\partial J / \partial` (this value)
    after ``J.backward()``, 0.0 before. ``.label`` names the value in `draw_graph`.

    Shape: a scalar. Combine Values with ``+ - * /`` (with plain numbers on either side),
    ``** number``, unary ``-``, and the methods ``exp log tanh sigmoid relu``.

    >>> x = Value(3.0, label="x")
    >>> y = x * x + 1
    >>> y.backward()
    >>> y.data, x.grad
    (10.0, 6.0)
    """

    def __init__(self, data, label: str = "", *, _children: tuple[Value, ...] = (), _op: str = ""):
        check_number(data, "data")
        if not isinstance(label, str):
            raise TypeError(f"label must be a string, got {describe(label)}")
        self.data = float(data)
        self.grad = 0.0
        self.label = label
        self._prev = _children  # the Values this one was computed from (an input has none)
        self._op = _op  # the operation that computed it, shown by draw_graph
        self._backward = lambda: None  # adds this node's share of the gradient to its children

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{label})"

    # ----- arithmetic: forward result, then the local derivative beside it ------------------

    def __add__(self, other) -> Value:
        other = _as_value(other, "+")
        out = _result(self.data + other.data, (self, other), "+")

        def _backward():  # d(a + b)/da = 1, d(a + b)/db = 1
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __sub__(self, other) -> Value:
        other = _as_value(other, "-")
        out = _result(self.data - other.data, (self, other), "-")

        def _backward():  # d(a - b)/da = 1, d(a - b)/db = -1
            self.grad += out.grad
            other.grad -= out.grad

        out._backward = _backward
        return out

    def __mul__(self, other) -> Value:
        other = _as_value(other, "*")
        out = _result(self.data * other.data, (self, other), "*")

        def _backward():  # d(a b)/da = b, d(a b)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __truediv__(self, other) -> Value:
        other = _as_value(other, "/")
        if other.data == 0:
            raise ValueError(f"division by zero: {self.data!r} / {other!r}")
        out = _result(self.data / other.data, (self, other), "/")

        def _backward():  # d(a / b)/da = 1 / b, d(a / b)/db = -a / b^2 = -(a / b) / b
            self.grad += out.grad / other.data
            other.grad += -out.data / other.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, exponent) -> Value:
        if isinstance(exponent, Value):
            raise TypeError(
                "exponent must be a plain number, got a Value: Value ** Value is not "
                "supported; write a ** b as (b * a.log()).exp()"
            )
        check_number(exponent, "exponent")
        if self.data < 0 and not float(exponent).is_integer():
            raise ValueError(
                f"a negative number to a fractional power is not real: "
                f"{self.data!r} ** {exponent!r} (from {self!r})"
            )
        if self.data == 0 and exponent < 1:
            raise ValueError(
                f"0 ** {exponent!r} has no finite derivative: the slope n * x ** (n - 1) "
                f"is infinite or undefined at x = 0 for n < 1 (from {self!r})"
            )
        try:
            data = self.data**exponent
        except OverflowError:  # float ** float raises instead of returning inf
            data = math.inf
        out = _result(data, (self,), f"**{exponent!r}")

        def _backward():  # d(a^n)/da = n a^(n - 1)
            self.grad += exponent * self.data ** (exponent - 1) * out.grad

        out._backward = _backward
        return out

    def __neg__(self) -> Value:
        out = _result(-self.data, (self,), "neg")

        def _backward():  # d(-a)/da = -1
            self.grad -= out.grad

        out._backward = _backward
        return out

    # A plain number on the left: 2 * x calls x.__rmul__(2).
    def __radd__(self, other) -> Value:
        return _as_value(other, "+") + self

    def __rsub__(self, other) -> Value:
        return _as_value(other, "-") - self

    def __rmul__(self, other) -> Value:
        return _as_value(other, "*") * self

    def __rtruediv__(self, other) -> Value:
        return _as_value(other, "/") / self

    # ----- functions of one value --------------------------------------------------------------

    def exp(self) -> Value:
        r""":math:`e^{a}`, whose derivative is itself."""
        data = math.exp(self.data) if self.data <= _MAX_EXP_ARGUMENT else math.inf
        out = _result(data, (self,), "exp")

        def _backward():  # d(e^a)/da = e^a
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self) -> Value:
        r"""Natural logarithm :math:`\log a`, defined for a > 0."""
        if self.data <= 0:
            raise ValueError(f"log needs a positive number, got {self!r}")
        out = _result(math.log(self.data), (self,), "log")

        def _backward():  # d(log a)/da = 1 / a
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    def tanh(self) -> Value:
        r""":math:`\tanh(a) = (e^{a} - e^{-a}) / (e^{a} + e^{-a})`."""
        out = _result(math.tanh(self.data), (self,), "tanh")

        def _backward():  # d(tanh a)/da = 1 - tanh^2(a)
            self.grad += (1.0 - out.data**2) * out.grad

        out._backward = _backward
        return out

    def sigmoid(self) -> Value:
        r""":math:`\sigma(a) = 1 / (1 + e^{-a})`, computed stably by `activations.sigmoid`."""
        out = _result(float(activations.sigmoid(self.data)), (self,), "sigmoid")

        def _backward():  # d(sigma(a))/da = sigma(a) (1 - sigma(a))
            self.grad += out.data * (1.0 - out.data) * out.grad

        out._backward = _backward
        return out

    def relu(self) -> Value:
        r""":math:`\max(0, a)`; its derivative at a = 0 is taken as 0, as in PyTorch."""
        out = _result(max(0.0, self.data), (self,), "relu")

        def _backward():  # d(relu a)/da = 1 if a > 0 else 0
            self.grad += (1.0 if self.data > 0 else 0.0) * out.grad

        out._backward = _backward
        return out

    # ----- the backward pass ---------------------------------------------------------------------

    def backward(self) -> None:
        r"""Add :math:`\partial\,\mathrm{self} / \partial v` to ``v.grad`` for every input v.

        Nodes are visited from the output back to the inputs (reverse topological order), so a
        node's gradient is complete, summed over all its uses, before it is passed on.
        Intermediate results start from 0 on every call; the inputs' ``.grad`` accumulate over
        calls, as in PyTorch: set them back to 0.0 between gradient steps.
        """
        order = _topological_order(self)
        for node in order:
            if node._prev:
                node.grad = 0.0
        self.grad += 1.0  # d self / d self
        for node in reversed(order):
            try:
                node._backward()
                overflowed = not all(math.isfinite(child.grad) for child in node._prev)
            except OverflowError:  # float ** float raises instead of returning inf
                overflowed = True
            if overflowed:
                inputs = ", ".join(repr(child.data) for child in node._prev)
                raise ValueError(
                    f"the gradient through {node._op} of ({inputs}) overflows: it is beyond "
                    "float64's range (e.g. dividing by a number very close to 0)"
                )


def _as_value(other, op: str) -> Value:
    """`other` itself if it is a Value, else a constant Value holding the number `other`."""
    if isinstance(other, Value):
        return other
    return Value(check_number(other, f"the other operand of {op}"))


def _result(data: float, children: tuple[Value, ...], op: str) -> Value:
    """The Value computed by `op` from `children`; raises ValueError if it overflowed."""
    if not math.isfinite(data):
        inputs = ", ".join(repr(child.data) for child in children)
        raise ValueError(f"{op} of ({inputs}) overflows: the result is beyond float64's range")
    return Value(data, _children=children, _op=op)


def _topological_order(root: Value) -> list[Value]:
    """Every Value `root` depends on, each listed after all the Values it was computed from.

    A depth-first search with an explicit stack (no recursion limit for long chains).
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
        elif node not in visited:
            visited.add(node)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node._prev))
    return order


# ----- drawing the computation graph ------------------------------------------------------------

MAX_DRAWN_NODES = 150
_FONT_SIZE = 13
_GAP = 0.45  # inches between a box and the next column: room for an arrow
_ROW_GAP = 0.35  # inches between two boxes of a column
_COLORS = {"input": "#dbe9f6", "hidden": "#f0f0f0", "output": "#fde2c4", "op": "#ffffff"}
_EDGE_COLOR = "#2b2b2b"
_BEND = 0.8  # how far apart two arrows between the same two nodes (x * x) are bent
_ARC_HEIGHT = 0.75  # rows: how high an arrow that skips columns arcs above the straight line
_OP_SYMBOLS = {"*": "×", "-": "−", "neg": "−x"}  # as printed in a maths text


def draw_graph(value: Value, ax=None) -> Figure:
    """Draw the computation graph that produced `value`, inputs on the left, `value` on the right.

    Every Value is a box with its label, data and grad (4 significant digits); every operation
    is a circle between its inputs and its result; arrows follow the forward pass (gradients
    flow back against them). Every use of a Value is an arrow of its own: `x * x` draws two
    arrows from x into the ×, bent apart, and an arrow that skips over a column (x into a
    later +) arcs above the chain instead of running through it; a Value's grad is the sum over
    its arrows (`06_backpropagation.ipynb`). Inputs are blue, the output orange. Without `ax`,
    the figure is sized to the graph; with `ax`, the graph is fitted into it.

    Shape: `value` is a scalar `Value`; graphs of up to MAX_DRAWN_NODES Values can be drawn.

    >>> x = Value(2.0, label="x")
    >>> y = (x * x).tanh()
    >>> y.backward()
    >>> fig = draw_graph(y)
    """
    if not isinstance(value, Value):
        raise TypeError(f"value must be a Value, got {describe(value)}")
    nodes = _topological_order(value)
    if len(nodes) > MAX_DRAWN_NODES:
        raise ValueError(
            f"value's graph has {len(nodes)} Values; draw_graph draws at most "
            f"{MAX_DRAWN_NODES}: draw a smaller expression"
        )
    own_figure = ax is None
    if own_figure:
        fig, ax = plt.subplots()
    fig = ax.figure
    ax.set_axis_off()

    parents: dict[Value, list[Value]] = {node: [] for node in nodes}
    for node in nodes:
        for child in dict.fromkeys(node._prev):  # for the layout, x * x uses x once
            parents[child].append(node)
    column = _columns(nodes, parents)
    row = _rows(nodes, column, parents)
    boxes = {node: _value_text(ax, node, value) for node in nodes}
    ops = {node: _op_text(ax, node) for node in nodes if node._prev}

    # Each column as wide as its widest box (in inches), with room for arrows in between.
    placed = [(column[node], text) for node, text in boxes.items()]
    placed += [(column[node] - 1, text) for node, text in ops.items()]
    widths = [0.0] * (max(column.values()) + 1)
    heights = []
    for col, text in placed:
        width, height = _size_inches(text, fig)
        widths[col] = max(widths[col], width)
        heights.append(height)
    centers = [sum(widths[:col]) + _GAP * col + widths[col] / 2 for col in range(len(widths))]
    row_height = max(heights) + _ROW_GAP
    for node, text in boxes.items():
        text.set_position((centers[column[node]], row[node] * row_height))
    for node, text in ops.items():
        text.set_position((centers[column[node] - 1], row[node] * row_height))

    margin = 0.1
    width = sum(widths) + _GAP * (len(widths) - 1) + 2 * margin
    top, bottom = max(row.values()) * row_height, min(row.values()) * row_height
    skips = any(column[node] - 1 - column[child] > 1 for node in ops for child in node._prev)
    top += row_height * _ARC_HEIGHT if skips else 0.0  # room for the arcs above the top row
    ax.set_xlim(-margin, width - margin)
    ax.set_ylim(bottom - row_height / 2, top + row_height / 2)
    if own_figure:  # one data unit is one inch
        fig.set_size_inches(width, top - bottom + row_height)
        ax.set_position([0, 0, 1, 1])

    for node, op_text in ops.items():
        for child in dict.fromkeys(node._prev):  # one arrow per use: x * x gets two
            uses = sum(1 for c in node._prev if c is child)
            skip = column[node] - 1 - column[child] > 1  # passes other columns on its way
            for k in range(uses):
                bend = _BEND * (k - (uses - 1) / 2)  # 0 for one use, -+0.4 for x * x
                _arrow(ax, boxes[child], op_text, bend, row_height * _ARC_HEIGHT if skip else 0)
        _arrow(ax, op_text, boxes[node])  # operation -> its result
    return fig


def _columns(nodes: list[Value], parents: dict[Value, list[Value]]) -> dict[Value, int]:
    """Values in even columns, each operation in the odd column just left of its result.

    A result sits one step right of its rightmost input; an input sits just left of its first
    use (so a constant added at the end is drawn there, not far left).
    """
    column: dict[Value, int] = {}
    for node in nodes:  # inputs before results
        column[node] = 2 + max(column[child] for child in node._prev) if node._prev else 0
    for node in nodes:
        if not node._prev and parents[node]:
            column[node] = min(column[parent] for parent in parents[node]) - 2
    return column


def _rows(
    nodes: list[Value], column: dict[Value, int], parents: dict[Value, list[Value]]
) -> dict[Value, float]:
    """A vertical position per Value: evenly spaced in its column, ordered to avoid crossings.

    The barycenter heuristic: sort each column by the mean row of the node's inputs (sweeping
    right) or of its uses (sweeping left), a few times.
    """
    by_column: dict[int, list[Value]] = {}
    for node in nodes:
        by_column.setdefault(column[node], []).append(node)
    row: dict[Value, float] = {}

    def place(members: list[Value]) -> None:
        row.update({node: (len(members) - 1) / 2 - i for i, node in enumerate(members)})

    def mean_row(neighbours: list[Value], node: Value) -> float:
        return sum(row[n] for n in neighbours) / len(neighbours) if neighbours else row[node]

    for members in by_column.values():
        place(members)
    for _ in range(3):
        for col in sorted(by_column):
            place(sorted(by_column[col], key=lambda n: -mean_row(list(n._prev), n)))
        for col in sorted(by_column, reverse=True):
            place(sorted(by_column[col], key=lambda n: -mean_row(parents[n], n)))
        for col in by_column:
            by_column[col].sort(key=lambda n: -row[n])
    return row


def _value_text(ax, node: Value, output: Value):
    lines = [node.label] if node.label else []
    lines += [f"data {node.data:.4g}", f"grad {node.grad:.4g}"]
    kind = "output" if node is output else "hidden" if node._prev else "input"
    return ax.text(
        0, 0, "\n".join(lines), ha="center", va="center", fontsize=_FONT_SIZE,
        bbox=dict(boxstyle="round,pad=0.45", fc=_COLORS[kind], ec=_EDGE_COLOR, lw=1.5),
    )


def _op_text(ax, node: Value):
    return ax.text(
        0, 0, _OP_SYMBOLS.get(node._op, node._op), ha="center", va="center",
        fontsize=_FONT_SIZE, fontweight="bold",
        bbox=dict(boxstyle="circle,pad=0.3", fc=_COLORS["op"], ec=_EDGE_COLOR, lw=1.5),
    )


def _box_pixels(text) -> tuple[float, float, float, float]:
    """(center x, center y, half width, half height) in pixels of the box drawn around text."""
    extent = text.get_window_extent()
    boxstyle = text.get_bbox_patch().get_boxstyle()
    pad = boxstyle.pad * text.get_fontsize() * text.figure.dpi / 72  # pad in font-size units
    half_width, half_height = extent.width / 2 + pad, extent.height / 2 + pad
    if isinstance(boxstyle, BoxStyle.Circle):  # a circle around the padded box
        half_width = half_height = max(half_width, half_height)
    return (extent.x0 + extent.x1) / 2, (extent.y0 + extent.y1) / 2, half_width, half_height


def _size_inches(text, fig) -> tuple[float, float]:
    _, _, half_width, half_height = _box_pixels(text)
    return 2 * half_width / fig.dpi, 2 * half_height / fig.dpi


def _arrow(ax, source, target, bend: float = 0.0, arc_height: float = 0.0) -> None:
    """An arrow from `source`'s box to `target`'s box, each cut at its outline.

    Leaves a box from the middle of its right side; reaches a box at the middle of its left
    side, or a circle at the point facing the arrow. `bend` curves it (matplotlib's arc3
    `rad`: the middle moves sideways by bend times the arrow's length); `arc_height` (data
    units) instead lifts its middle that far above the straight line, over the boxes between.
    """
    sx, sy, s_half_width, _ = _box_pixels(source)
    tx, ty, t_half_width, _ = _box_pixels(target)
    to_data = ax.transData.inverted()
    start = to_data.transform((sx + s_half_width, sy))
    if isinstance(target.get_bbox_patch().get_boxstyle(), BoxStyle.Circle):
        end, shrink = to_data.transform((tx, ty)), t_half_width * 72 / target.figure.dpi
    else:
        end, shrink = to_data.transform((tx - t_half_width, ty)), 0.0
    if arc_height:  # arc3 puts its control point rad * length off the middle (rad < 0: up)
        height = ax.transData.transform((0, arc_height))[1] - ax.transData.transform((0, 0))[1]
        length = math.hypot(tx - sx, ty - sy)  # pixels, as arc3's
        bend -= 2 * height / length  # the curve's middle is half way to the control point
    ax.add_patch(FancyArrowPatch(
        tuple(start), tuple(end), arrowstyle="-|>", mutation_scale=16, lw=1.4,
        color=_EDGE_COLOR, shrinkA=1, shrinkB=shrink + 1, zorder=1,
        connectionstyle=f"arc3,rad={bend:.6g}",
    ))
