"""The one place jaxpde touches a private diffrax name.

diffrax hands a solver's ``init``/``step`` its terms wrapped in ``diffrax._term.WrapTerm``,
which carries the direction of time (``-1`` for a reverse-time solve, integrated in negated
time). diffrax has no public way to unwrap it, so a solver that needs the user's own term (the
ETDRK solvers need the `SemiLinearTerm`'s split into linear and nonlinear parts) imports the
private class. It is imported here and nowhere else, and a diffrax release that renames or
reshapes it fails with an error that says so, at import, rather than deep inside a solve.
"""

from __future__ import annotations

from typing import Any

import diffrax

__all__ = ["unwrap_term"]

try:
    from diffrax._term import WrapTerm as _WrapTerm
except ImportError as error:  # pragma: no cover - depends on the installed diffrax
    raise ImportError(
        f"jaxpde.numerics: diffrax {getattr(diffrax, '__version__', '?')} no longer provides the private "
        "`diffrax._term.WrapTerm` that the ETDRK solvers unwrap to reach their SemiLinearTerm; "
        "install a diffrax within the bounds in jaxpde's pyproject.toml, or update "
        "jaxpde/numerics/_compat.py."
    ) from error

if not all(name in getattr(_WrapTerm, "__dataclass_fields__", {}) for name in ("term", "direction")):  # pragma: no cover
    raise ImportError(
        f"jaxpde.numerics: diffrax {getattr(diffrax, '__version__', '?')}'s `WrapTerm` no longer has the "
        "fields `term` and `direction` that jaxpde/numerics/_compat.py unwraps; update that module."
    )


def unwrap_term(terms: Any) -> tuple[Any, Any]:
    """The user's term inside diffrax's wrappers, and the product of their time directions."""
    direction = 1
    while isinstance(terms, _WrapTerm):
        direction = direction * terms.direction
        terms = terms.term
    return terms, direction
