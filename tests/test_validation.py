"""The shared input checks: ndarray subclasses, integer labels from floats, torch tensors.

Oracles: numpy's own ndarray (a masked array's data, np.matrix as a 2-D array), exact integer
bounds of int64 (2**63), and the error message each public entry point promises.
"""

import numpy as np
import pytest
import torch

from dlhelpers.activations import sigmoid
from dlhelpers.data import batches
from dlhelpers.nn import Dense
from dlhelpers.validation import as_float_array, as_label_array, is_torch, reject_torch

# ---------------------------------------------------------------------------------------------
# as_float_array: the fast path is for plain float64 ndarrays only
# ---------------------------------------------------------------------------------------------


def test_a_plain_float64_array_is_returned_as_is():
    x = np.array([1.0, 2.0])
    assert as_float_array(x, "x") is x  # the hot path: no copy, no conversion


def test_a_masked_entry_is_an_error_naming_the_argument():
    z = np.ma.masked_array([1.0, np.nan], mask=[0, 1])
    with pytest.raises(ValueError, match=r"z must not have masked entries, got 1 masked .*"
                                         r"z\.filled"):
        sigmoid(z)  # used to return [0.731, nan]
    with pytest.raises(ValueError, match="x must not have masked entries"):
        as_float_array(np.ma.masked_array([1.0, 2.0], mask=[0, 1]), "x")  # even a finite one


def test_array_subclasses_become_plain_arrays_and_are_checked():
    unmasked = np.ma.masked_array([1.0, 2.0], mask=[0, 0])
    result = as_float_array(unmasked, "x")
    assert type(result) is np.ndarray
    np.testing.assert_array_equal(result, [1.0, 2.0])
    np.testing.assert_allclose(sigmoid(unmasked), 1 / (1 + np.exp(-np.array([1.0, 2.0]))))
    with pytest.raises(ValueError, match="x must be finite, got NaN"):
        as_float_array(np.ma.masked_array([1.0, np.nan], mask=[0, 0]), "x")
    with pytest.warns(PendingDeprecationWarning):
        matrix = np.matrix([[1.0, 2.0]])
    result = as_float_array(matrix, "x", ndim=2)
    assert type(result) is np.ndarray and result.shape == (1, 2)
    with pytest.raises(ValueError, match="x must be finite"):
        as_float_array(np.ma.masked_array([np.inf], mask=[0]), "x")


# ---------------------------------------------------------------------------------------------
# as_label_array
# ---------------------------------------------------------------------------------------------


def test_whole_floats_become_int64_labels():
    labels = as_label_array(np.array([0.0, 2.0, -0.0]), "y")
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, [0, 2, 0])
    # int64's extremes: -2**63 is a float64 exactly and converts exactly.
    np.testing.assert_array_equal(as_label_array(np.array([-(2.0**63)]), "y"), [-(2**63)])


@pytest.mark.parametrize(
    ("labels", "error", "words"),
    [
        ([[0], [1, 2]], TypeError, r"y must be an array of integer class labels .*same length"),
        (None, TypeError, "y must be an array of integer class labels, got NoneType None"),
        ("01", TypeError, "y must be an array of integer class labels, got str"),
        (np.array([1e30]), ValueError, r"y must hold class labels within int64's range, "
                                       r"got values from 1e\+30"),
        (np.array([2.0**63]), ValueError, "within int64's range"),  # one past int64's maximum
        (np.array([-1e300, 0.0]), ValueError, "within int64's range"),
        (np.array([2**63], dtype=np.uint64), ValueError, "within int64's range"),
        (np.array([0.0, np.nan]), ValueError, "y must hold finite class labels, got NaN"),
        (np.array([np.inf]), ValueError, "y must hold finite class labels, got inf"),
        (np.array([0.0, 1.5]), TypeError, "integer class labels, got dtype float64 with the "
                                          "non-integer value 1.5"),
        (np.array([True, False]), TypeError, "y must hold integer class labels, got dtype bool"),
    ],
)
def test_bad_labels_raise_a_clear_error_without_a_numpy_warning(labels, error, words):
    # pytest turns RuntimeWarnings ("invalid value encountered in cast") into failures.
    with pytest.raises(error, match=words):
        as_label_array(labels, "y")


# ---------------------------------------------------------------------------------------------
# Torch tensors: one detection, one message with the conversion
# ---------------------------------------------------------------------------------------------


def test_is_torch_finds_tensors_and_parameters_only():
    assert is_torch(torch.zeros(2)) and is_torch(torch.nn.Parameter(torch.zeros(2)))
    assert not is_torch(np.zeros(2)) and not is_torch([0.0]) and not is_torch(None)
    reject_torch(np.zeros(2), "x")  # no error for numpy


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda t: as_float_array(t, "z"), "z"),
        (lambda t: sigmoid(t), "z"),
        (lambda t: as_label_array(t.long(), "y"), "y"),
        (lambda t: batches(np.zeros((2, 2)), t, 1), "y"),
    ],
    ids=["as_float_array", "sigmoid", "as_label_array", "batches"],
)
def test_a_torch_tensor_gets_the_same_message_with_the_conversion(call, name):
    words = rf"{name} must be a numpy array, got a torch Tensor; convert it with " \
            rf"{name}\.detach\(\)\.numpy\(\)"
    with pytest.raises(TypeError, match=words):
        call(torch.zeros(2))


def test_a_negative_seed_for_a_layer_names_rng():
    with pytest.raises(ValueError, match="rng must be a non-negative integer seed, got -1"):
        Dense(2, 3, rng=-1)
