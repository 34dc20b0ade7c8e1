"""Reproducible randomness: one `set_seed` for notebooks, `as_rng` for functions that take `rng=`.

Introduced in `00_why_deep_learning.ipynb`. Functions in `dlhelpers` never draw from numpy's hidden
global random state; they take `rng=` (a seed or a `numpy.random.Generator`) instead.
"""

from __future__ import annotations

import numbers
import random

import numpy as np
import torch


def set_seed(seed: int) -> None:
    """Seed Python's `random`, numpy's legacy global generator and torch in one call.

    Call it once at the top of a notebook so that re-running gives the same outputs.

    >>> set_seed(0)
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__} {seed!r}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def as_rng(rng) -> np.random.Generator:
    """Turn `rng` (None, an integer seed, or a Generator) into a `numpy.random.Generator`.

    None gives a fresh, unseeded generator; pass a seed for reproducible results.
    """
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng must be a non-negative integer seed, got {rng}")
        return np.random.default_rng(int(rng))
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(
        f"rng must be None, an integer seed or a numpy.random.Generator, "
        f"got {type(rng).__name__} {rng!r}"
    )
