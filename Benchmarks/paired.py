"""Paired ratios for the compare.py scripts (echo/, dgram/): on a noisy box the
per-repetition ratio of two servers run minutes apart is steadier than the
ratio of their medians, and its bootstrap interval says whether a bound is met
beyond the noise (only if the whole interval is under it)."""
import random
import statistics


def median_interval(values, resamples=10000):
    """The 95% bootstrap interval (percentile method, fixed seed) of the median
    of `values`."""
    generator = random.Random(1)
    medians = sorted(statistics.median(generator.choices(values, k=len(values))) for _ in range(resamples))
    return medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]


def paired_row(a_figures, b_figures):
    """`(median, low, high, ratios)` of the ratios a/b, repetition by repetition."""
    ratios = [a / b for a, b in zip(a_figures, b_figures)]
    low, high = median_interval(ratios)
    return statistics.median(ratios), low, high, ratios
