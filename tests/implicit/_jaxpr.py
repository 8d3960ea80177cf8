"""Largest array a traced computation creates: evidence that no dense Jacobian is built."""

import math

import jax


def _subjaxprs(value):
    if isinstance(value, jax.extend.core.ClosedJaxpr):
        yield value.jaxpr
    elif isinstance(value, jax.extend.core.Jaxpr):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _subjaxprs(item)


def largest_intermediate(fn, *args) -> int:
    """The number of elements of the largest array in ``jax.make_jaxpr(fn)(*args)``, nested
    jaxprs (loops, conds, custom rules) included."""
    largest = 0
    stack = [jax.make_jaxpr(fn)(*args).jaxpr]
    while stack:
        jaxpr = stack.pop()
        for eqn in jaxpr.eqns:
            for var in eqn.outvars:
                shape = getattr(var.aval, "shape", ())
                largest = max(largest, math.prod(shape))
            for value in eqn.params.values():
                stack.extend(_subjaxprs(value))
    return largest
