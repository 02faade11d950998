"""Readers and checks of user arguments shared across the package: numbers, and options given per modality."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def is_int(x) -> bool:
    """Whether ``x`` is an integer (``bool`` excluded)."""
    return isinstance(x, int | np.integer) and not isinstance(x, bool | np.bool_)


def is_real(x) -> bool:
    """Whether ``x`` is a real number (``bool`` excluded)."""
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool | np.bool_)


def check_positive_int(value, name: str) -> int:
    """``value`` as an ``int`` if it is a positive integer; an error naming ``name`` otherwise."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_positive_real(value, name: str) -> None:
    """``value`` must be a finite number > 0."""
    if not is_real(value) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")


def check_unit_interval(value, name: str) -> None:
    """``value`` must be a number in [0, 1) (a dropout rate, a probability of hiding)."""
    if not is_real(value) or not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}.")


def per_modality_option(value, modalities: Sequence[str], arg: str, what: str) -> dict:
    """An option given once for all modalities (a string or ``None``) or as ``{modality: value}``, as a mapping over
    ``modalities`` (``None`` where a mapping leaves one out); ``what`` describes the value in the error.
    """
    modalities = list(modalities)
    if value is None or isinstance(value, str):
        return dict.fromkeys(modalities, value)
    if not isinstance(value, Mapping):
        raise ValueError(f"`{arg}` takes {what} or a mapping {{modality: value}}, got {value!r}.")
    unknown = [m for m in value if m not in modalities]
    if unknown:
        raise ValueError(
            f"`{arg}` names modalities that are not registered: {unknown}; the modalities are {modalities}."
        )
    return {m: value.get(m) for m in modalities}
