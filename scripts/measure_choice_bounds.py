"""Coverage of the one-sided upper bound of a mean choice KL (stats.choices.mean_interval), by simulation.

Per-item KL values are drawn from a known distribution (exponential, or a heavy-tailed lognormal where a few items
carry most of the KL); the bound should lie above the true mean in 1 - alpha of the samples. A coverage below that
means the KL gate (--kl-margin) passes too easily at a true mean equal to its margin (by 1 - coverage).

Run: python scripts/measure_choice_bounds.py [--sims 1000]   (docs/methodology.md, section 14, quotes its output)
"""

from __future__ import annotations

import argparse

import numpy as np

from statrepro.stats.choices import mean_interval

CASES = [(50, "exponential"), (150, "exponential"), (50, "lognormal"), (150, "lognormal"), (500, "lognormal")]
TRUE_MEAN = {"exponential": 0.05, "lognormal": float(np.exp(-4 + 1.5**2 / 2))}


def coverage(n_items: int, shape: str, sims: int, alpha: float, resamples: int) -> float:
    data, bootstrap = np.random.default_rng(2), np.random.default_rng(3)
    covered = 0
    for _ in range(sims):
        values = data.exponential(0.05, size=n_items) if shape == "exponential" else data.lognormal(-4, 1.5, size=n_items)
        bound = mean_interval(values, alpha=alpha, beyond_alpha=alpha, n_resamples=resamples, rng=bootstrap)
        covered += bound.upper >= TRUE_MEAN[shape]
    return covered / sims


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=1000)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    print(f"coverage of the one-sided {1 - args.alpha:.0%} upper bound ({args.sims} simulations, MC error ~"
          f"{np.sqrt(args.alpha * (1 - args.alpha) / args.sims):.3f})")
    for n_items, shape in CASES:
        print(f"{shape:12s} {n_items:4d} items: {coverage(n_items, shape, args.sims, args.alpha, args.resamples):.3f}")


if __name__ == "__main__":
    main()
