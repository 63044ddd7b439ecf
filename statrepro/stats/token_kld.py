"""Token-level KL divergence of a candidate's next-token distributions from a reference's (``statrepro kld``).

Arrays in, frozen results out; no I/O. Both sides are teacher-forced on the same token ids; at every position
each gives a next-token distribution, as logits over one vocabulary. The figures are the ones llama.cpp's
``llama-perplexity --kl-divergence`` prints, with its definitions, so the two can be read side by side:

* KLD per token: KL(ref || cand) = sum_v p_ref(v) (log p_ref(v) - log p_cand(v)), over the whole vocabulary
  (llama.cpp skips reference log-probabilities below -16 and stores the reference's in 16 bits; here every
  term is exact in float64). Its mean, with llama.cpp's standard error sqrt((E[x^2] - E[x]^2) / (n - 1)),
  which treats tokens as independent; and the 90/95/99/99.9th percentiles, interpolated linearly between
  order statistics at fraction * (n - 1), as llama.cpp does.
* Same top p: the share of tokens whose most likely next token is the same on both sides; the most likely
  token is the first of the maximal logits (llama.cpp's argmax), so a tie broken the same way is the same top.
  SE sqrt(p (1 - p) / (n - 1)).
* RMS Δp: Δp = p_cand(actual next token) - p_ref(actual next token); sqrt(mean Δp^2), with SE
  0.5 / RMS * SE(Δp^2).
* ln(PPL(cand)/PPL(ref)): mean NLL of the actual next tokens, candidate minus reference, SE
  sqrt(SE_c^2 + SE_r^2 - 2 cov) with cov = (E[ab] - E[a]E[b]) / (n - 1).

Tokens of one text are not independent (a text the candidate finds hard moves all of them), so llama.cpp's
standard errors are too narrow for a claim about texts. The interval statrepro reads (``kld_ci``) treats texts
as clusters: the mean KLD over tokens is a ratio estimator, sum over texts of their KLD sums / total tokens,
with its linearised variance J / (J - 1) * sum_j (S_j - mean * n_j)^2 / N^2 over the J texts (normal
interval, clipped at 0). tests/stats/test_token_kld.py proves its coverage by simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .results import ResultMixin

PERCENTILES = (0.90, 0.95, 0.99, 0.999)
REST_FLOOR = 1e-12  # the least probability a top-k bound gives the candidate's tokens outside the shared ones


@dataclass(frozen=True)
class TokenFigures:
    """Per-token figures of one text (or many, concatenated): arrays of equal length."""

    kld: np.ndarray
    same_top: np.ndarray  # bool
    nll_ref: np.ndarray  # -log p_ref(actual next token)
    nll_cand: np.ndarray

    @classmethod
    def concatenate(cls, parts: list[TokenFigures]) -> TokenFigures:
        return cls(*(np.concatenate([getattr(part, name) for part in parts]) for name in ("kld", "same_top", "nll_ref", "nll_cand")))


def token_figures(logits_ref: np.ndarray, logits_cand: np.ndarray, targets: np.ndarray) -> TokenFigures:
    """The per-token figures of positions whose next-token logits (finite) are the rows of ``logits_ref`` and
    ``logits_cand`` (shape (n, vocab)); ``targets`` are the actual next tokens (n,). Identical logits give a
    KLD of exactly 0."""
    logits_ref, logits_cand = np.asarray(logits_ref), np.asarray(logits_cand)
    targets = np.asarray(targets, dtype=np.int64)
    if logits_ref.shape != logits_cand.shape or logits_ref.ndim != 2 or targets.shape != (logits_ref.shape[0],):
        raise ValueError(f"need (n, vocab) logits of equal shape and n targets, got {logits_ref.shape}, {logits_cand.shape}, {targets.shape}")
    x_ref, x_cand = logits_ref.astype(np.float64), logits_cand.astype(np.float64)
    # With log p = x - logsumexp(x): KL = sum p_ref (x_ref - x_cand) - lse_ref + lse_cand, as sum p_ref = 1. One
    # exp per side over the vocabulary, and identical logits cancel term by term to exactly 0.
    top_ref, top_cand = x_ref.max(axis=-1, keepdims=True), x_cand.max(axis=-1, keepdims=True)
    p_ref = np.exp(x_ref - top_ref)
    z_ref = p_ref.sum(axis=-1, keepdims=True)
    p_ref /= z_ref
    lse_ref = (top_ref + np.log(z_ref))[:, 0]
    lse_cand = (top_cand + np.log(np.exp(x_cand - top_cand).sum(axis=-1, keepdims=True)))[:, 0]
    kld = np.einsum("ij,ij->i", p_ref, x_ref - x_cand) - lse_ref + lse_cand
    rows = np.arange(targets.size)
    return TokenFigures(
        kld=np.maximum(kld, 0.0),  # rounding may leave a true 0 a hair below it
        same_top=np.argmax(logits_ref, axis=-1) == np.argmax(logits_cand, axis=-1),
        nll_ref=lse_ref - x_ref[rows, targets],
        nll_cand=lse_cand - x_cand[rows, targets],
    )


def topk_token_figures(tops_ref: list[dict[str, float]], tops_cand: list[dict[str, float]], targets: list[str],
                       target_ref: np.ndarray, target_cand: np.ndarray) -> TokenFigures:
    """The per-token figures where each side gives only its top-k log-probabilities (an HTTP endpoint's prompt
    logprobs): ``tops_*`` per position (token -> log-probability), the actual next token and its log-probability
    on each side.

    The KLD is then a lower bound: the KL of both distributions coarse-grained to the tokens whose probability both
    sides state (both top-k lists, plus the actual next token) and one bin for the rest, which by the log-sum
    inequality never exceeds the full KL (and equals it when k covers the vocabulary). Per-token lower bounds
    bound the mean and every percentile from below. Same top and the NLLs are exact.
    """
    target_ref, target_cand = np.asarray(target_ref, dtype=np.float64), np.asarray(target_cand, dtype=np.float64)
    kld = np.empty(len(targets))
    for index, (top_ref, top_cand, target) in enumerate(zip(tops_ref, tops_cand, targets)):
        known_ref = dict(top_ref) | {target: float(target_ref[index])}
        known_cand = dict(top_cand) | {target: float(target_cand[index])}
        shared = sorted(set(known_ref) & set(known_cand))
        p = np.exp([known_ref[token] for token in shared])
        q = np.exp([known_cand[token] for token in shared])
        # The returned log-probabilities are rounded: a rest may come out a hair below 0, or 0 where it is not.
        rest_p, rest_q = max(1.0 - p.sum(), 0.0), max(1.0 - q.sum(), REST_FLOOR)
        terms = np.sum(p * (np.log(p) - np.log(q)))
        if rest_p > 0:
            terms += rest_p * (np.log(rest_p) - np.log(rest_q))
        kld[index] = max(terms, 0.0)
    same_top = np.array([max(a, key=a.get) == max(b, key=b.get) for a, b in zip(tops_ref, tops_cand)], dtype=bool)
    return TokenFigures(kld=kld, same_top=same_top, nll_ref=-target_ref, nll_cand=-target_cand)


def _mean_and_se(values: np.ndarray) -> tuple[float, float]:
    """llama.cpp's mean and its uncertainty: sqrt((E[x^2] - E[x]^2) / (n - 1)), 0 for 10 values or fewer."""
    n = values.size
    mean = float(values.mean())
    spread = float(np.mean(values * values)) - mean * mean
    return mean, float(np.sqrt(spread / (n - 1))) if spread > 0 and n > 10 else 0.0


@dataclass(frozen=True)
class TokenKLD(ResultMixin):
    """A candidate's next-token distributions against a reference's, over the same teacher-forced tokens."""

    n_tokens: int
    n_texts: int
    mean_kld: float
    kld_se: float  # llama.cpp's, tokens as independent
    kld_ci: tuple[float, float]  # texts as clusters, at ``confidence``
    kld_percentiles: dict[str, float]  # "90", "95", "99", "99.9" -> KLD
    median_kld: float
    max_kld: float
    same_top: float
    same_top_se: float
    rms_dp: float
    rms_dp_se: float
    ln_ppl_ratio: float
    ln_ppl_ratio_se: float
    ppl_ref: float
    ppl_cand: float
    confidence: float

    def summary(self) -> str:
        low, high = self.kld_ci
        pct = ", ".join(f"{key}% {value:.4g}" for key, value in self.kld_percentiles.items())
        return (
            f"{self.n_tokens} tokens of {self.n_texts} texts: mean KLD {self.mean_kld:.6f} ± {self.kld_se:.6f} "
            f"({self.confidence:.0%} CI over texts [{low:.6f}, {high:.6f}]); KLD {pct}; "
            f"same top p {100 * self.same_top:.3f} ± {100 * self.same_top_se:.3f} %; "
            f"RMS Δp {100 * self.rms_dp:.3f} ± {100 * self.rms_dp_se:.3f} %; "
            f"ln(PPL(cand)/PPL(ref)) {self.ln_ppl_ratio:.6f} ± {self.ln_ppl_ratio_se:.6f}"
        )


def clustered_mean_ci(values: np.ndarray, text_lengths: np.ndarray, confidence: float) -> tuple[float, float]:
    """The normal interval of the mean over tokens with texts as clusters (the module docstring), clipped at 0
    for a non-negative quantity; NaN bounds for fewer than two texts."""
    values = np.asarray(values, dtype=np.float64)
    lengths = np.asarray(text_lengths, dtype=np.int64)
    if lengths.sum() != values.size or (lengths < 1).any():
        raise ValueError(f"text lengths sum to {lengths.sum()}, not to the {values.size} values, or one is < 1")
    mean = float(values.mean())
    if lengths.size < 2:
        return float("nan"), float("nan")
    sums = np.add.reduceat(values, np.concatenate([[0], np.cumsum(lengths)[:-1]]))
    residuals = sums - mean * lengths
    se = float(np.sqrt(lengths.size / (lengths.size - 1) * np.sum(residuals**2))) / values.size
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    low = mean - z * se
    return (max(low, 0.0) if (values >= 0).all() else low), mean + z * se


def summarize_token_kld(figures: TokenFigures, text_lengths: np.ndarray, *, confidence: float = 0.95) -> TokenKLD:
    """The llama.cpp figures of ``figures`` (tokens of texts of ``text_lengths``, in order) and the interval
    over texts of the mean KLD."""
    n = int(figures.kld.size)
    if n < 2:
        raise ValueError(f"need at least 2 scored tokens, got {n}")
    kld = np.asarray(figures.kld, dtype=np.float64)
    mean_kld, kld_se = _mean_and_se(kld)
    # numpy's linear quantile is llama.cpp's percentile: interpolation at fraction * (n - 1).
    percentiles = {f"{100 * q:g}": float(np.quantile(kld, q)) for q in PERCENTILES}
    same_top = float(np.mean(figures.same_top))
    p_ref, p_cand = np.exp(-figures.nll_ref), np.exp(-figures.nll_cand)
    mse, mse_se = _mean_and_se((p_cand - p_ref) ** 2)
    rms = float(np.sqrt(mse))
    nll_ref, nll_cand = np.asarray(figures.nll_ref, dtype=np.float64), np.asarray(figures.nll_cand, dtype=np.float64)
    # llama.cpp's sqrt(SE_c^2 + SE_r^2 - 2 cov) is the SE of the per-token difference; taken so, A/A gives 0 exactly.
    ln_ppl_ratio, ln_ppl_ratio_se = _mean_and_se(nll_cand - nll_ref)
    return TokenKLD(
        n_tokens=n,
        n_texts=int(np.asarray(text_lengths).size),
        mean_kld=mean_kld,
        kld_se=kld_se,
        kld_ci=clustered_mean_ci(kld, text_lengths, confidence),
        kld_percentiles=percentiles,
        median_kld=float(np.median(kld)),
        max_kld=float(kld.max()),
        same_top=same_top,
        same_top_se=float(np.sqrt(same_top * (1 - same_top) / (n - 1))),
        rms_dp=rms,
        rms_dp_se=0.5 / rms * mse_se if rms > 0 else 0.0,
        ln_ppl_ratio=ln_ppl_ratio,
        ln_ppl_ratio_se=ln_ppl_ratio_se,
        ppl_ref=float(np.exp(nll_ref.mean())),
        ppl_cand=float(np.exp(nll_cand.mean())),
        confidence=confidence,
    )
