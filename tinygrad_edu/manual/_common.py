"""Small numerical helpers shared by the hand-derived tutorial networks (private)."""

from __future__ import annotations

import numpy as np

__all__ = ["stable_sigmoid", "softplus", "generator"]


def stable_sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) without overflow warnings for large |z|; keeps z's float dtype."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def softplus(z: np.ndarray) -> np.ndarray:
    """log(1 + exp(z)) without overflow."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def generator(rng: np.random.Generator | int, caller: str) -> np.random.Generator:
    """``rng`` itself, or a Generator seeded with the int ``rng``; anything else is refused.

    numpy's global random state is never used: a reproducible run needs an explicit Generator or seed.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"{caller}: rng must be a np.random.Generator or an int seed, got {type(rng).__name__}; "
                    "pass rng=np.random.default_rng(0), for example.")
