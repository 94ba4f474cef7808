"""tools/same_training.py's comparison: bit for bit by default, within a tolerance when asked."""

import importlib.util
from pathlib import Path

import pytest
import torch

_spec = importlib.util.spec_from_file_location("same_training", Path(__file__).parents[1] / "tools" / "same_training.py")
same_training = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(same_training)
close = same_training.close


def test_without_a_tolerance_only_equal_values_are_the_same():
    a = torch.tensor([1.0, 2.0, 3.0])
    assert close(a, a.clone(), 0.0)
    assert not close(a, a + 1e-7, 0.0)
    assert close(0.5, 0.5, 0.0) and not close(0.5, 0.5 + 1e-12, 0.0)


def test_a_tolerance_is_relative_to_the_tensor_not_to_each_entry():
    a = torch.tensor([1.0, 1e-9, -2.0])
    b = a.clone()
    b[1] = 2e-9  # twice the entry, yet 1e-9 of the tensor's size
    assert close(a, b, 1e-6) and close(b, a, 1e-6)
    assert not close(a, a * 1.01, 1e-6)
    assert close(torch.zeros(3), torch.zeros(3), 1e-6)
    assert not close(torch.zeros(3), torch.full((3,), 1e-3), 1e-6)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (torch.ones(3), torch.ones(3, dtype=torch.float64)),  # torch.equal alone calls these equal
        (torch.ones(3), torch.ones(4)),
        (torch.tensor([1.0, float("nan")]), torch.tensor([1.0, 0.0])),
        (torch.tensor([1, 2]), torch.tensor([1, 3])),
    ],
)
def test_dtype_shape_nan_places_and_integers_must_match(a, b):
    assert not close(a, b, 1e-3)


def test_numbers_within_the_tolerance_and_nan_alike():
    assert close(1.0, 1.0 + 1e-9, 1e-6) and close(1, 1.0 + 1e-9, 1e-6)
    assert close(0.0, 1e-9, 1e-6)  # a rate near 0 is not compared relatively to 0
    assert not close(1.0, 1.1, 1e-6)
    assert close(float("nan"), float("nan"), 1e-6) and not close(float("nan"), 1.0, 1e-6)
    assert close(torch.tensor([float("nan"), 1.0]), torch.tensor([float("nan"), 1.0 + 1e-9]), 1e-6)


def test_renamed_prefixes_read_the_old_names_as_the_new_ones():
    tensors = {"attention.w.weight": 1, "attention_x": 2, "head.weight": 3}
    assert same_training.renamed(tensors, [("attention.", "pooling.attention.")]) == {
        "pooling.attention.w.weight": 1,
        "attention_x": 2,
        "head.weight": 3,
    }
    assert same_training.renamed(tensors, []) == tensors
