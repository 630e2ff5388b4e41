"""Benchmarks behind `narhub bench`: each module exposes ``run(*, duration_s) -> dict``."""
