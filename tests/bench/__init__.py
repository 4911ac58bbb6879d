"""Benchmarks (``make bench``), kept apart from the tests: figures are printed as ratios against a
baseline measured in the same run, because these machines are noisy."""
