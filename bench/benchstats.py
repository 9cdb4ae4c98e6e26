"""Statistics the bench harnesses share: paired ratios and a
distribution-free interval for their median."""
import math
import statistics


def median_ci(xs, level=0.95):
    """A distribution-free confidence interval for the median of xs: the
    order statistics x(k) and x(n+1-k), k the largest for which
    P(Binomial(n, 1/2) < k) <= (1 - level) / 2.  None if n is too small."""
    xs, n = sorted(xs), len(xs)
    tail, k = 0.0, 0
    while True:
        tail += math.comb(n, k) / 2 ** n
        if tail > (1 - level) / 2:
            break
        k += 1
    return (xs[k - 1], xs[n - k]) if k >= 1 else None


def paired(fork, vanilla):
    """Per-repetition fork/vanilla ratios (the runs of one repetition ran
    back to back): (median, its 95 % interval or None, the ratios)."""
    ratios = [f / v for f, v in zip(fork, vanilla)]
    return statistics.median(ratios), median_ci(ratios), ratios
