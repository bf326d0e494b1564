"""Formal proofs (``lnsmadam.sim.formal``): the CI set, the mutation check, the tool.

Every test here runs SymbiYosys with the solvers from PyPI; a missing tool fails, never
skips. Job directories go to a temporary ``LNSMADAM_FORMAL_DIR``.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from amaranth.hdl import Mux, Signal
from click.testing import CliRunner

from lnsmadam.cli import main as cli_main
from lnsmadam.sim.formal import jobs as J
from lnsmadam.sim.formal.harness import Elaborated, Harness
from lnsmadam.sim.formal.mutants import Rewrite, set_to
from lnsmadam.sim.formal.sby import Job, run_job, tool_env

pytestmark = pytest.mark.formal


@pytest.fixture(autouse=True)
def formal_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LNSMADAM_FORMAL_DIR", str(tmp_path / "formal"))
    return tmp_path / "formal"


_CI = J.ci_jobs()


@pytest.mark.parametrize("job", _CI, ids=[j.id for j in _CI])
def test_ci_proof(job):
    result = run_job(job, timeout=900)
    assert result.ok, result.summary() + "\n" + result.log[-3000:]
    assert result.props, "a job without properties proves nothing"


def test_ci_covers_every_block():
    assert {j.block for j in _CI} == set(J.BLOCKS)
    assert any(j.mode == "prove" for j in _CI if j.block == "mac")


_MUTANTS = J.mutant_jobs()


@pytest.mark.parametrize("mutant", _MUTANTS, ids=[mu.id for mu in _MUTANTS])
def test_mutant_is_caught(mutant):
    result = run_job(mutant.job(), timeout=900)
    assert result.status == "FAIL", result.summary() + "\n" + result.log[-3000:]
    assert set(result.failed) & set(mutant.expect), result.summary()
    assert result.trace is not None and result.trace.exists()


def test_link_sizes_include_the_default_soc():
    from lnsmadam.golden.soc import SoCConfig

    soc = SoCConfig()
    assert J.link_sizes()["soc"] == (soc.identify_blob(), soc.regions(), soc.divisor)
    ids = {j.id for j in J.link_jobs()}
    for size in J.link_sizes():
        assert {f"link.write_{size}", f"link.response_{size}"} <= ids


def test_link_harness_names_its_bad_parameter():
    from lnsmadam.sim.formal.link_induct import LinkInductHarness

    with pytest.raises(ValueError, match="prop must be 'write' or 'response', got 'read'"):
        LinkInductHarness(prop="read")


def test_every_block_has_a_mutant():
    assert {mu.block for mu in _MUTANTS} == set(J.BLOCKS)


# -- the tool itself -------------------------------------------------------------------

class _Counter(Harness):
    """A counter that must stay below ``limit`` (it wraps at 10, so ``limit`` 10 holds
    and 9 does not)."""

    block = "toy"

    def __init__(self, limit, mutate=None):
        super().__init__(mutate)
        self.limit = limit

    def build(self, m, platform):
        c = Signal(4, name="count")
        go = self.free(1, "go")
        with m.If(go):
            m.d.sync += c.eq(Mux(c == 9, 0, c + 1))
        self.check(m, "below_limit", c < self.limit)


def test_failure_names_the_property_and_keeps_the_trace(tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    good = run_job(Job("toy", "good", lambda: _Counter(10), "prove", 2))
    assert good.ok and good.workdir is None
    bad = run_job(Job("toy", "bad", lambda: _Counter(9), "bmc", 12))
    assert bad.status == "FAIL" and bad.failed == ["toy.below_limit"]
    assert bad.trace.exists() and bad.workdir.exists()
    assert not os.listdir(cwd), "jobs must not run in the cwd"


def test_induction_failure_is_not_a_proof():
    # a depth too small for the basecase to see the wrap, and no invariant: UNKNOWN or
    # FAIL, never PASS
    result = run_job(Job("toy", "shallow", lambda: _Counter(9), "prove", 1))
    assert result.status in ("UNKNOWN", "FAIL") and not result.ok


def test_boolector_shim_is_made_by_the_tool(formal_dir):
    env = tool_env("boolector")
    shim = formal_dir / "bin" / "boolector"
    assert shim.exists() and os.access(shim, os.X_OK)
    out = subprocess.run(["boolector", "--version"], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip()
    result = run_job(Job("toy", "bool", lambda: _Counter(10), "prove", 2, "boolector"))
    assert result.ok, result.log[-2000:]


def test_probe_and_rewrite_name_what_is_missing():
    from lnsmadam.hw.shuffle import Shuffler

    el = Elaborated(Shuffler(5))
    with pytest.raises(LookupError, match="no signal 'nope'.*state"):
        el.probe("nope")
    with pytest.raises(LookupError, match="nope"):
        Rewrite(assign={"nope": set_to(0)})(el.fragment)


def test_job_parameters_are_checked():
    with pytest.raises(ValueError, match="mode must be one of"):
        Job("toy", "x", lambda: _Counter(10), mode="live")
    with pytest.raises(ValueError, match="depth must be in"):
        Job("toy", "x", lambda: _Counter(10), depth=0)


# -- the command ---------------------------------------------------------------------------

def test_cli_prove_lists_jobs():
    result = CliRunner().invoke(cli_main.cli, ["prove", "mac", "--lanes", "4", "--list"])
    assert result.exit_code == 0, result.output
    assert "mac.control_b8g8l4" in result.output and "prove" in result.output


def test_cli_prove_runs_and_counts():
    result = CliRunner().invoke(cli_main.cli, ["prove", "shuffle", "--n-max", "5"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "1 proved, 0 failed"


@pytest.mark.parametrize("args, message", [
    (["mac", "--lanes", "0"], "--lanes must be in [1, 256], got 0"),
    (["update", "--pipeline", "9"], "--pipeline must be in [0, 7], got 9"),
    (["trainer", "--sizes", "2-x"], "--sizes must be two or more positive layer widths"),
    (["shuffle", "--depth", "0"], "--depth must be in [1, 1000], got 0"),
])
def test_cli_prove_bad_options(args, message):
    proc = subprocess.run(["lnsmadam", "prove", *args, "--list"], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {message}")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_cli_prove_refusals_run_nothing(tmp_path):
    """A --match that selects no job is refused (exit 2, the ids listed) and leaves an
    existing --json alone; options of other blocks are refused; the softmax unit's own
    range of --n-out (1..4096) is the command's."""
    out = tmp_path / "p.json"
    out.write_text("earlier\n")
    r = CliRunner().invoke(cli_main.cli, ["prove", "update", "--match", "zzz", "--match", "yyy",
                                          "--json", str(out)])
    assert r.exit_code == 2
    assert r.output.startswith("error: --match zzz / yyy matches no job of update (ids: "
                               "update.control_p5lr1g10, ")
    assert out.read_text() == "earlier\n"
    r = CliRunner().invoke(cli_main.cli, ["prove", "trainer", "--window", "8", "--list"])
    assert r.exit_code == 2 and "--window has no effect for trainer" in r.output
    r = CliRunner().invoke(cli_main.cli, ["prove", "softmax", "--n-out", "4097", "--list"])
    assert r.exit_code == 2 and "--n-out must be in [1, 4096], got 4097" in r.output
    r = CliRunner().invoke(cli_main.cli, ["prove", "softmax", "--n-out", "1", "--list"])
    assert r.exit_code == 0 and "softmax.control_n1" in r.output
    r = CliRunner().invoke(cli_main.cli, ["prove", "mac", "--match", "control", "--timeout",
                                          "86400", "--list"])
    assert r.exit_code == 0 and r.output.startswith("mac.control_")
