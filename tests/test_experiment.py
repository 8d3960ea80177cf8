"""The shared Config checks of `jaxpde.experiment` name the key, the expectation and the value."""

from dataclasses import dataclass

import pytest

from jaxpde.experiment import check_batch_size, check_open_interval, check_positive_integers, check_positive_numbers


@dataclass(frozen=True)
class _Config:
    steps: object = 10
    rate: object = 1e-3
    decay: object = 0.9
    batch_size: int = 8
    n_train: int = 16


@pytest.mark.parametrize("value", [0, -1, 2.0, True, "3"])
def test_positive_integers(value):
    check_positive_integers(_Config(), "steps")
    with pytest.raises(ValueError, match=rf"`steps` must be a positive integer, got {value!r}"):
        check_positive_integers(_Config(steps=value), "steps")
    with pytest.raises(ValueError, match=r"`steps` must be an integer >= 20, got 10"):
        check_positive_integers(_Config(), "steps", minimum=20)


@pytest.mark.parametrize("value", [0.0, -1e-3, float("nan"), float("inf"), True, "1"])
def test_positive_numbers(value):
    check_positive_numbers(_Config(), "rate")
    with pytest.raises(ValueError, match=r"`rate` must be positive and finite"):
        check_positive_numbers(_Config(rate=value), "rate")
    check_positive_numbers(_Config(rate=0.0), "rate", allow_zero=True)


def test_open_interval_and_batch_size():
    check_open_interval(_Config(), "decay", 0, 1)
    check_open_interval(_Config(decay=1), "decay", 0, 1, closed_high=True)
    for bad in (0, 1, float("nan"), None):
        with pytest.raises(ValueError, match=r"`decay` must lie in \(0, 1\)"):
            check_open_interval(_Config(decay=bad), "decay", 0, 1)
    check_batch_size(_Config())
    with pytest.raises(ValueError, match=r"`batch_size` \(32\) must not exceed `n_train` \(16\)"):
        check_batch_size(_Config(batch_size=32))
