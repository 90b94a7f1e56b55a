"""Paired ratios for the compare.py scripts (echo/, dgram/): on a noisy box the
per-repetition ratio of two servers run minutes apart is steadier than the
ratio of their medians, and its interval says whether a bound is met beyond
the noise (only if the whole interval is under it).

Repetitions are paired by their key (which run, which repetition), never by
position: a failed repetition, or a log holding more of one server than of
another, would shift every pair after it. A failed repetition (its `failed`
field says why) pairs with nothing."""
import math
import statistics


def median_interval(values, confidence=0.95):
    """`(low, high, coverage)`: the distribution-free interval of the median
    of `values` by order statistics, [X(k), X(n+1-k)] for the largest k with
    P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2, and the probability that
    it holds the true median. Fewer than 6 values reach no 95% interval: then
    the range, with its own coverage (75% for 3 values, 93.75% for 5). (A
    bootstrap of so few values gave the range too, labelled 95%.)"""
    ordered = sorted(values)
    n = len(ordered)
    below = [math.comb(n, j) / 2 ** n for j in range(n + 1)]  # P(Binomial(n, 1/2) = j)
    k = 1
    while k < n // 2 and sum(below[:k + 1]) <= (1 - confidence) / 2:
        k += 1
    coverage = 1 - 2 * sum(below[:k])
    return ordered[k - 1], ordered[n - k], coverage


def pair_runs(a_runs, b_runs):
    """The repetitions both servers completed, matched by `key`: `[(a, b)]`."""
    completed = {run["key"]: run for run in b_runs if not run.get("failed")}
    return [(run, completed[run["key"]]) for run in a_runs if not run.get("failed") and run["key"] in completed]


def paired_row(pairs, figure):
    """`(median, low, high, coverage, ratios)` of the ratios a/b of `figure`,
    pair by pair (see `pair_runs` and `median_interval`)."""
    ratios = [a[figure] / b[figure] for a, b in pairs]
    low, high, coverage = median_interval(ratios)
    return statistics.median(ratios), low, high, coverage, ratios


def interval_text(low, high, coverage):
    """An interval as the tables print it: `1.07–1.17x (96%)`."""
    return f"{low:.2f}–{high:.2f}x ({coverage:.0%})"
