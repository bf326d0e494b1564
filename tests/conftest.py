"""Shared fixtures."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def bench_module():
    """``bench_module("area")`` imports ``bench/area.py`` (bench/ is not a package)."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"lnsmadam_bench_{name}",
                                                      BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod        # dataclasses look their module up there
        spec.loader.exec_module(mod)
        return mod
    return load


@pytest.fixture
def stop_at():
    """``stop_at(dev, n)``: a ``session.train`` progress callback that sends STOP (without
    waiting) once ``n`` samples were reported."""
    def make(dev, target):
        done = [0]

        def progress(n):
            done[0] += n
            if done[0] >= target and not dev.stop_requested:
                dev.stop(wait=False)
        return progress
    return make
