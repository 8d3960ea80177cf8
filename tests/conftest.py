"""Shared test fixtures.

Tests run in float32 by default, like users on accelerators. A test that needs float64 takes the
`x64` fixture, which turns it on for that test alone.
"""

import jax
import pytest


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield
