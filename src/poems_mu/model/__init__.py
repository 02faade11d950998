"""The POEMS model class: setup, training, getters, results on the MuData, imputation, saving and loading."""

from ._poems import POEMS

__all__ = ["POEMS"]
