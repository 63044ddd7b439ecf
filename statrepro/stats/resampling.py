"""Fast, exact resampling for paired per-item means.

Two facts make the workload of the benchmark (10,000 items x 10,000 resamples, x 4 benchmarks) cheap
without approximation:

* Bootstrapping items with replacement only changes *how many times* each item is drawn, and the
  statistics here are sums. Items with the same (mean_a, mean_b) pair are interchangeable, so drawing
  ``n`` items is exactly a multinomial draw over the distinct pairs. Seed-averaged 0/1 scores with ``k``
  seeds have at most ``(k+1)**2`` distinct pairs.
* A sign-flip permutation of paired differences only depends on how many items of each ``|d|`` get a
  plus sign: a binomial draw per distinct ``|d|``. With few distinct values the null distribution is
  enumerated exactly by convolution.

When values are (nearly) all distinct we fall back to index resampling in chunks.
"""

from __future__ import annotations

import numpy as np

# Above this many distinct (mean_a, mean_b) pairs per item, index gathering beats the multinomial.
_MAX_CATEGORIES_FOR_MULTINOMIAL = 400
# Largest exact null support (product of group sizes + 1) we are willing to enumerate.
_MAX_EXACT_SUPPORT = 200_000
_CHUNK_ELEMENTS = 4_000_000  # bounds memory of chunked draws (~32 MB of float64)
_DECIMALS = 12  # values equal to 12 decimals are treated as the same category


def _categories(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``values`` (rounded) and how often each occurs."""
    rounded = np.round(values, _DECIMALS)
    if rounded.shape[1] == 2:  # the common case; a complex view sorts much faster than unique(axis=0)
        unique, counts = np.unique(rounded[:, 0] + 1j * rounded[:, 1], return_counts=True)
        return np.column_stack([unique.real, unique.imag]), counts
    unique, counts = np.unique(rounded, axis=0, return_counts=True)
    return unique, counts


def multinomial_counts(n: int, probabilities: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` multinomial draws of ``n`` over ``probabilities``, as conditional binomials vectorised over draws."""
    k = len(probabilities)
    out = np.empty((size, k), dtype=np.int64)
    remaining = np.full(size, n, dtype=np.int64)
    tail = 1.0
    for j in range(k - 1):
        share = 0.0 if tail <= 0 else min(1.0, max(0.0, probabilities[j] / tail))
        out[:, j] = rng.binomial(remaining, share)
        remaining -= out[:, j]
        tail -= probabilities[j]
    out[:, k - 1] = remaining
    return out


def bootstrap_item_sums(columns: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Sums of each column over ``n`` items drawn with replacement, for ``n_resamples`` resamples.

    ``columns`` has shape (n_items, n_columns); the result has shape (n_resamples, n_columns).
    """
    n = columns.shape[0]
    unique, counts = _categories(columns)
    if len(unique) <= _MAX_CATEGORIES_FOR_MULTINOMIAL:
        draws = multinomial_counts(n, counts / n, n_resamples, rng)
        return draws @ unique
    sums = np.empty((n_resamples, columns.shape[1]))
    chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        index = rng.integers(0, n, size=(stop - start, n))
        for c in range(columns.shape[1]):
            sums[start:stop, c] = columns[:, c][index].sum(axis=1)
    return sums


def jackknife_item_sums(columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-item-out column sums, one row per *distinct* item, with the number of items it stands for."""
    unique, counts = _categories(columns)
    total = columns.sum(axis=0)
    return total - unique, counts


def _sign_groups(differences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct non-zero |d| values and their multiplicities."""
    magnitudes = np.round(np.abs(differences), _DECIMALS)
    magnitudes = magnitudes[magnitudes > 0]
    if magnitudes.size == 0:
        return np.empty(0), np.empty(0, dtype=np.int64)
    values, counts = np.unique(magnitudes, return_counts=True)
    return values, counts


def sign_flip_null(
    differences: np.ndarray, n_resamples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """The sign-flip null distribution of ``sum(d)``.

    Returns ``(support, weights, exact)``. When exact, ``weights`` are probabilities over ``support``;
    otherwise ``support`` holds ``n_resamples`` Monte Carlo draws and ``weights`` is None.
    """
    values, counts = _sign_groups(differences)
    if values.size == 0:
        return np.zeros(1), np.ones(1), True
    if float(np.prod(counts.astype(float) + 1)) <= _MAX_EXACT_SUPPORT:
        return (*_exact_sign_flip(values, counts), True)
    draws = np.empty(n_resamples)
    chunk = max(1, _CHUNK_ELEMENTS // values.size)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        plus = rng.binomial(counts, 0.5, size=(stop - start, values.size))
        draws[start:stop] = (2 * plus - counts) @ values
    return draws, None, False


def _exact_sign_flip(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact distribution of sum_v v * (2 * Binomial(m_v, 1/2) - m_v), by convolution."""
    from scipy.stats import binom

    support = np.zeros(1)
    weights = np.ones(1)
    for value, count in zip(values, counts):
        k = np.arange(count + 1)
        step_support = value * (2 * k - count)
        step_weights = binom.pmf(k, count, 0.5)
        support = (support[:, None] + step_support[None, :]).ravel()
        weights = (weights[:, None] * step_weights[None, :]).ravel()
        support, inverse = np.unique(np.round(support, _DECIMALS - 2), return_inverse=True)
        weights = np.bincount(inverse, weights=weights)
    return support, weights
