"""Fast, exact resampling for paired per-item means.

Two facts make the workload of the benchmark (10,000 items x 10,000 resamples, x 4 benchmarks) cheap
without approximation:

* Bootstrapping items with replacement only changes *how many times* each item is drawn, and the
  statistics here are sums. Items with the same (mean_a, mean_b) pair are interchangeable, so drawing
  ``n`` items is exactly a multinomial draw over the distinct pairs. Seed-averaged 0/1 scores with ``k``
  seeds have at most ``(k+1)**2`` distinct pairs.
* A sign-flip permutation of paired differences only depends on how many items of each ``|d|`` get a
  plus sign: a binomial draw per distinct ``|d|``. Item means are averages over a few seeds, so every
  ``d`` is a multiple of ``1/S`` for a small integer ``S``; on that integer lattice the null distribution
  is a subset-sum distribution, enumerated exactly (ties included) by convolution, with FFTs at large n.

When values are (nearly) all distinct we fall back to index resampling in chunks, and the sign-flip test
to full enumeration (few items) or Monte Carlo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Above this many distinct (mean_a, mean_b) pairs per item, index gathering beats the multinomial.
_MAX_CATEGORIES_FOR_MULTINOMIAL = 400
# Sign-flip test. Largest lattice scale S inferred from the data: lcm(1..10) x 2 covers 1-10 seeds per side
# with 0 / 0.5 / 1 partial credit. An explicit hint may be larger.
_MAX_LATTICE_SCALE = 5040
_LATTICE_TOLERANCE = 1e-9  # |d - round(S d) / S| allowed when inferring S (float noise is ~1e-16)
_HINT_TOLERANCE = 1e-6  # the same, for an explicit lattice_scale (e.g. float32 scores)
# Largest exact lattice support (points 0..sum|S d|) we convolve (80 MB of float64), and largest convolution
# work, support x log2(distinct |d|), about 1 s of FFTs. 10,000 items x 10 seeds: 15,000 points, 8 values.
_MAX_LATTICE_SUPPORT = 10_000_000
_MAX_LATTICE_WORK = 20_000_000
_DIRECT_CONVOLUTION_WORK = 1_000_000  # np.convolve below this many multiply-adds, FFT above
# Without a lattice: largest number of grouped sign patterns (product of group sizes + 1) we enumerate.
_MAX_EXACT_ENUMERATION = 200_000
_FLOAT_TIE_TOLERANCE = 1e-10  # relative to sum|d|, for ties between float sums without a lattice
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



# ----------------------------------------------------------------------------------------------
# Sign-flip null of sum(d)


@dataclass(frozen=True)
class SignFlipTails:
    """Both tails of the sign-flip null of ``T = sum(d)`` at the observed ``t``: ``P(T <= t)``, ``P(T >= t)``."""

    less: float
    greater: float
    exact: bool
    method: str  # "exact-lattice", "exact-enumeration" or "monte-carlo"
    lattice_scale: int | None  # S with S * d_i integral for every i, or None when there is none
    n_resamples: int  # Monte Carlo draws; 0 when exact


def infer_lattice_scale(differences: np.ndarray, max_scale: int = _MAX_LATTICE_SCALE) -> int | None:
    """The smallest integer ``S <= max_scale`` with ``S * d_i`` integral for every ``d_i``, or None.

    Item means are averages of scores over a per-item number of seeds, so their differences lie on the
    lattice ``Z / S`` with ``S`` the lcm of the seed counts times the scores' own denominator (1 for 0/1
    scores, 2 for 0 / 0.5 / 1 partial credit). "Integral" allows float noise: ``|d - round(S d) / S|`` at
    most ``1e-9`` (relative to ``max|d|`` when that exceeds 1).
    """
    values = np.unique(np.abs(np.asarray(differences, float)))
    if values.size == 0 or values[-1] == 0:
        return 1
    if not np.isfinite(values[-1]):
        return None
    tolerance = _LATTICE_TOLERANCE * max(1.0, float(values[-1]))
    candidates = np.arange(1, max_scale + 1, dtype=float)
    # Check a few values against every candidate first: with continuous data no candidate survives them.
    for start in range(0, values.size, 16):
        block = values[start : start + 16]
        scaled = candidates[:, None] * block[None, :]
        fits = np.all(np.abs(scaled - np.round(scaled)) <= tolerance * candidates[:, None], axis=1)
        candidates = candidates[fits]
        if candidates.size == 0:
            return None
    return int(candidates[0])


def _fits_lattice(differences: np.ndarray, scale: int, tolerance: float) -> bool:
    scaled = differences * scale
    bound = tolerance * scale * max(1.0, float(np.max(np.abs(differences), initial=0.0)))
    return bool(np.all(np.abs(scaled - np.round(scaled)) <= bound))


def subset_sum_pmf(magnitudes: np.ndarray, counts: np.ndarray, *, method: str = "auto") -> np.ndarray:
    """Distribution of ``W = sum_v v * Binomial(c_v, 1/2)`` over ``0 .. sum_v v * c_v``, for integer ``v >= 1``.

    The sign-flip statistic on the lattice is ``T = 2 W - sum_v v * c_v``. Built by convolving one binomial
    polynomial per distinct magnitude, always the two shortest first (so many distinct magnitudes cost
    ``log`` rounds, not one pass over the full support each): directly while that is cheap (every entry to
    full relative accuracy), by FFT otherwise (absolute error ~1e-16; negative round-off is clipped to 0).
    ``method`` ("auto", "direct" or "fft") exists for tests.
    """
    import heapq

    from scipy.stats import binom

    if method not in ("auto", "direct", "fft"):
        raise ValueError(f"unknown convolution method {method!r}")
    heap: list[tuple[int, int, np.ndarray]] = [(1, -1, np.ones(1))]
    for index, (value, count) in enumerate(zip(np.asarray(magnitudes), np.asarray(counts))):
        value, count = int(value), int(count)
        kernel = np.zeros(value * count + 1)
        kernel[::value] = binom.pmf(np.arange(count + 1), count, 0.5)
        heap.append((kernel.size, index, kernel))
    heapq.heapify(heap)
    tiebreak = len(heap)
    while len(heap) > 1:
        (_, _, first), (_, _, second) = heapq.heappop(heap), heapq.heappop(heap)
        if method == "direct" or (method == "auto" and first.size * second.size <= _DIRECT_CONVOLUTION_WORK):
            merged = np.convolve(first, second)
        else:
            merged = np.clip(_fft_convolve(first, second), 0.0, None)
        heapq.heappush(heap, (merged.size, tiebreak, merged))
        tiebreak += 1
    return heap[0][2]


def _fft_convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Full linear convolution by real FFTs (scipy.fft: importing scipy.signal alone costs ~0.3 s)."""
    from scipy import fft

    length = a.size + b.size - 1
    size = fft.next_fast_len(length, real=True)
    return fft.irfft(fft.rfft(a, size) * fft.rfft(b, size), size)[:length]


def sign_flip_tails(
    differences: np.ndarray,
    n_resamples: int,
    rng: np.random.Generator,
    *,
    lattice_scale: int | None = None,
    convolution: str = "auto",
) -> SignFlipTails:
    """``P(T <= t)`` and ``P(T >= t)`` for ``T = sum_i s_i |d_i|`` with fair signs ``s_i``, ``t = sum(d)``.

    1. **Exact on the integer lattice** when one exists (``lattice_scale``, else inferred by
       :func:`infer_lattice_scale`) and its convolution is small enough (``_MAX_LATTICE_SUPPORT`` points,
       ``_MAX_LATTICE_WORK``): every quantity is an integer, so ties are exact.
    2. **Exact enumeration** of the grouped sign patterns when no lattice fits but
       ``prod(c_v + 1) <= _MAX_EXACT_ENUMERATION`` (few items; continuous scores).
    3. **Monte Carlo** otherwise: ``n_resamples`` draws of the per-magnitude binomials, compared with ``t``
       computed from the same (integer, or rounded) magnitudes by the same arithmetic.
    """
    d = np.asarray(differences, float).ravel()
    if not np.all(np.isfinite(d)):
        raise ValueError("sign-flip test: the differences must be finite (drop missing items first)")
    if lattice_scale is not None:
        scale = int(lattice_scale)
        if scale < 1 or scale != lattice_scale:
            raise ValueError(f"lattice_scale must be a positive integer, got {lattice_scale!r}")
        if not _fits_lattice(d, scale, _HINT_TOLERANCE):
            raise ValueError(f"the differences are not multiples of 1/{scale} (lattice_scale={scale})")
    else:
        scale = infer_lattice_scale(d)
    if scale is not None:
        signed = np.round(d * scale).astype(np.int64)
        observed = int(signed.sum())
        magnitudes, counts = np.unique(np.abs(signed[signed != 0]), return_counts=True)
        if magnitudes.size == 0:
            return SignFlipTails(1.0, 1.0, True, "exact-lattice", scale, 0)
        total = int(np.sum(magnitudes * counts))
        if _convolution_feasible(total, magnitudes.size):
            pmf = subset_sum_pmf(magnitudes, counts, method=convolution)
            w = (observed + total) // 2  # T = 2 W - total, and T has the parity of total
            floor = 0.5 ** int(counts.sum())  # the observed sign pattern itself lies in both tails
            less = max(floor, min(1.0, float(pmf[: w + 1].sum())))
            greater = max(floor, min(1.0, float(pmf[w:].sum())))
            return SignFlipTails(less, greater, True, "exact-lattice", scale, 0)
        values, observed_value, gamma = magnitudes.astype(float), float(observed), 0.0
        positives = _positives(signed[signed != 0], magnitudes)
    else:
        rounded = np.round(d, _DECIMALS)
        nonzero = rounded[rounded != 0]
        if nonzero.size == 0:
            return SignFlipTails(1.0, 1.0, True, "exact-enumeration", None, 0)
        values, counts = np.unique(np.abs(nonzero), return_counts=True)
        positives = _positives(nonzero, values)
        gamma = _FLOAT_TIE_TOLERANCE * float(np.sum(values * counts))
        observed_value = None
    if float(np.prod(counts.astype(float) + 1)) <= _MAX_EXACT_ENUMERATION:
        support, weights, at = _enumerate(values, counts, positives)
        t = support[at]
        less = float(weights[support <= t + gamma].sum())
        greater = float(weights[support >= t - gamma].sum())
        return SignFlipTails(less, greater, True, "exact-enumeration", scale, 0)
    draws = np.empty(n_resamples)
    chunk = max(1, _CHUNK_ELEMENTS // values.size)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        plus = rng.binomial(counts, 0.5, size=(stop - start, values.size))
        draws[start:stop] = (2 * plus - counts) @ values
    t = float((2 * positives - counts) @ values) if observed_value is None else observed_value
    less = (np.sum(draws <= t + gamma) + 1) / (n_resamples + 1)
    greater = (np.sum(draws >= t - gamma) + 1) / (n_resamples + 1)
    return SignFlipTails(float(less), float(greater), False, "monte-carlo", scale, n_resamples)


def _convolution_feasible(total: int, distinct: int) -> bool:
    """Whether the lattice null (``total + 1`` points, ``distinct`` magnitudes) is cheap enough to convolve."""
    work = (total + 1) * max(1, math.ceil(math.log2(max(distinct, 1))))
    return total + 1 <= _MAX_LATTICE_SUPPORT and work <= _MAX_LATTICE_WORK


def _positives(signed: np.ndarray, magnitudes: np.ndarray) -> np.ndarray:
    """How many of the items of each distinct magnitude have a positive difference."""
    index = np.searchsorted(magnitudes, np.abs(signed))
    return np.bincount(index[signed > 0], minlength=magnitudes.size)


def _enumerate(values: np.ndarray, counts: np.ndarray, positives: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Every grouped sign pattern's ``T`` and probability, and the index of the observed pattern.

    Not merged or rounded: the observed ``T`` is one of the entries, computed by the same additions.
    """
    from scipy.stats import binom

    support = np.zeros(1)
    weights = np.ones(1)
    at = 0
    for value, count, plus in zip(values, counts, positives):
        k = np.arange(count + 1)
        support = (support[:, None] + value * (2 * k - count)[None, :]).ravel()
        weights = (weights[:, None] * binom.pmf(k, count, 0.5)[None, :]).ravel()
        at = at * (count + 1) + int(plus)
    return support, weights, at


def sign_flip_null(
    differences: np.ndarray, n_resamples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """The sign-flip null distribution of ``sum(d)`` as ``(support, weights, exact)``, for inspection.

    On the integer lattice the support is ``(2 w - total) / S`` with exact weights; otherwise ``support``
    holds ``n_resamples`` Monte Carlo draws and ``weights`` is None. p-values use :func:`sign_flip_tails`,
    which compares on the integer scale.
    """
    d = np.asarray(differences, float).ravel()
    scale = infer_lattice_scale(d)
    if scale is not None:
        magnitudes, counts = np.unique(np.abs(np.round(d * scale).astype(np.int64)), return_counts=True)
        counts, magnitudes = counts[magnitudes > 0], magnitudes[magnitudes > 0]
        total = int(np.sum(magnitudes * counts))
        if _convolution_feasible(total, magnitudes.size):
            pmf = subset_sum_pmf(magnitudes, counts)
            return (2 * np.arange(total + 1) - total) / scale, pmf, True
    rounded = np.round(np.abs(d), _DECIMALS)
    values, counts = np.unique(rounded[rounded > 0], return_counts=True)
    if values.size == 0:
        return np.zeros(1), np.ones(1), True
    plus = rng.binomial(counts, 0.5, size=(n_resamples, values.size))
    return (2 * plus - counts) @ values, None, False
