"""Packaging, command line and data-set tests."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from lnsmadam.cli import main as cli_main
from lnsmadam.golden.data import DigitsSplit, load_digits_split

ROOT = Path(__file__).resolve().parents[1]
PARTS = ["golden", "hw", "sim", "boards", "host", "cli", "sweep"]


# --- packaging ---------------------------------------------------------------------

@pytest.mark.parametrize("part", PARTS)
def test_part_imports_under_lnsmadam(part):
    module = importlib.import_module(f"lnsmadam.{part}")
    assert module.__doc__ and module.__doc__.strip()
    assert Path(module.__file__).resolve().parent.name == part


def test_lnsmadam_is_a_namespace_package():
    import lnsmadam

    assert getattr(lnsmadam, "__file__", None) is None


def test_version_from_metadata():
    assert importlib.metadata.version("lnsmadam") == "0.1.0"


def test_every_subpackage_is_declared_in_pyproject():
    """A package directory missing from pyproject would be left out of a regular install."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir = config["package-dir"]
    assert sorted(package_dir) == sorted(f"lnsmadam.{p}" for p in PARTS)
    on_disk = set()
    for name, directory in package_dir.items():
        for init in (ROOT / directory).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / directory)
            on_disk.add(".".join([name, *rel.parts]))
    assert sorted(config["packages"]) == sorted(on_disk)


def test_package_data_ships_beside_its_module():
    """Non-Python files a module reads from its own folder are declared for its package."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, files in data["package-data"].items():
        folder = ROOT / data["package-dir"][package]
        assert all((folder / f).exists() for f in files), package
    from lnsmadam.sim.twin import HARNESS
    assert "twin_main.cpp" in data["package-data"]["lnsmadam.sim"] and HARNESS.exists()


def test_no_bare_part_imports():
    """Every import of project code goes through ``lnsmadam.<part>`` (or is relative)."""
    import re

    bare = re.compile(rf"^\s*(import|from)\s+({'|'.join(PARTS)})(\s|\.|$)", re.M)
    offenders = [
        str(path.relative_to(ROOT))
        for top in [*PARTS, "tests", "bench"]
        for path in (ROOT / top).rglob("*.py")
        if bare.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


# --- command line ------------------------------------------------------------------

def test_cli_help_lists_train():
    result = CliRunner().invoke(cli_main.cli, ["--help"])
    assert result.exit_code == 0, result.output
    assert "train" in result.output


def test_cli_version():
    result = CliRunner().invoke(cli_main.cli, ["--version"])
    assert result.exit_code == 0, result.output
    assert "0.1.0" in result.output


def test_console_script_help_lists_train(tmp_path):
    script = Path(sysconfig.get_path("scripts")) / "lnsmadam"
    assert script.exists(), f"console script not installed at {script}"
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "train" in out.stdout


def test_train_placeholder_rejects_unknown_backend():
    result = CliRunner().invoke(cli_main.cli, ["train", "--backend", "nope"])
    assert result.exit_code == 2
    assert "golden" in result.output


def test_main_reports_value_error_on_one_line(monkeypatch, capsys):
    @click.command("explode")
    def explode():
        raise ValueError("seed must be\na non-negative integer, got -1")

    monkeypatch.delenv("LNSMADAM_DEBUG", raising=False)
    monkeypatch.setitem(cli_main.cli.commands, "explode", explode)
    with pytest.raises(SystemExit) as excinfo:
        cli_main.main(["explode"])
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: seed must be a non-negative integer, got -1\n"


# --- data set ----------------------------------------------------------------------

def test_digits_split_shapes_and_dtypes():
    d = load_digits_split(0)
    assert isinstance(d, DigitsSplit)
    assert d.seed == 0
    assert d.x_train.shape == (1437, 64) and d.x_test.shape == (360, 64)
    assert d.y_train.shape == (1437,) and d.y_test.shape == (360,)
    assert d.pixels_train.shape == (1437, 64) and d.pixels_test.shape == (360, 64)
    assert d.x_train.dtype == np.float32 and d.x_test.dtype == np.float32
    assert d.pixels_train.dtype == np.uint8 and d.pixels_test.dtype == np.uint8


def test_digits_split_encoding():
    d = load_digits_split(0)
    for x, p in [(d.x_train, d.pixels_train), (d.x_test, d.pixels_test)]:
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert p.max() <= 16
        np.testing.assert_array_equal(x * np.float32(16), p.astype(np.float32))
    assert d.x_train.max() == 1.0  # the full range is used


def test_digits_split_is_stratified():
    d = load_digits_split(0)
    train_counts = np.bincount(d.y_train, minlength=10)
    test_counts = np.bincount(d.y_test, minlength=10)
    assert (train_counts > 0).all() and (test_counts > 0).all()
    assert len(train_counts) == len(test_counts) == 10
    # stratified: each class's share of the test set is its share of the whole, +-1 sample
    total = train_counts + test_counts
    assert np.all(np.abs(test_counts - total * 360 / 1797) <= 1)


def test_digits_split_deterministic_and_seed_dependent():
    a = load_digits_split(3)
    assert load_digits_split(3) is a  # cached
    from lnsmadam.golden import data

    fresh = data._load_split.__wrapped__(3)  # bypass the cache
    for name in ["x_train", "y_train", "x_test", "y_test", "pixels_train", "pixels_test"]:
        np.testing.assert_array_equal(getattr(a, name), getattr(fresh, name))
    b = load_digits_split(4)
    assert not np.array_equal(a.y_test, b.y_test)
    # the two splits partition the same 1797 samples
    all_a = np.concatenate([a.pixels_train, a.pixels_test])
    all_b = np.concatenate([b.pixels_train, b.pixels_test])
    assert sorted(map(bytes, all_a)) == sorted(map(bytes, all_b))


def test_digits_split_is_read_only():
    d = load_digits_split(0)
    with pytest.raises(ValueError):
        d.x_train[0, 0] = 5.0


@pytest.mark.parametrize("seed", [-1, 1.5, "0", None, True])
def test_digits_split_bad_seed(seed):
    with pytest.raises(ValueError, match="seed"):
        load_digits_split(seed)


def test_digits_split_accepts_numpy_integer_seed():
    assert load_digits_split(np.int64(0)) is load_digits_split(0)
