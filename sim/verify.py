"""Check one block's Verilog against the golden model with its cocotb bench, on Icarus and/or
Verilator: what ``lnsmadam verify`` runs and what the pytest regression (``tests/test_sim_*``)
calls, for exactly the configuration given.

The bench of a block is chosen by its kind and fed from its description, the ``parameters``
and ``timing`` that ``lnsmadam generate`` writes to ``<name>.json`` (:mod:`lnsmadam.hw.blocks`),
so a block can be verified from a :class:`~lnsmadam.hw.blocks.Block`
(:func:`verify_block`) or from the two files ``generate`` wrote (:func:`verify_files`).
Stimulus (see each ``sim/cocotb_*.py``): every corner of the configuration plus seeded random
vectors, at full rate (latency and throughput checked cycle by cycle) and, for the streaming
blocks, with random gaps and backpressure; every output is compared bit for bit.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from .runner import (SIMULATORS, Design, SimulationError, default_build_root, export_verilog,
                     run_cocotb, waves_enabled)

__all__ = ["BENCHES", "Result", "bench_params", "verify_block", "verify_files", "summary"]

#: block kind -> cocotb test module
BENCHES = {"mac": "lnsmadam.sim.cocotb_mac", "int8-mac": "lnsmadam.sim.cocotb_mac",
           "fp8-mac": "lnsmadam.sim.cocotb_fpmac", "fp32-mac": "lnsmadam.sim.cocotb_fpmac",
           "mul": "lnsmadam.sim.cocotb_mul", "convert": "lnsmadam.sim.cocotb_convert",
           "update": "lnsmadam.sim.cocotb_update"}


@dataclass
class Result:
    """One simulator's verdict on one block."""

    sim: str
    passed: bool
    tests: int              # cocotb tests run
    failed: int
    seconds: float
    test_dir: Path | None
    waves: Path | None
    message: str = ""

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        text = (f"{self.sim:>9}: {verdict}, {self.tests - self.failed}/{self.tests} cocotb "
                f"tests passed in {self.seconds:.1f} s")
        if self.waves is not None:
            text += f"; waveform {self.waves} (GTKWave or Surfer)"
        return text


def bench_params(kind: str, parameters: dict, latency: int, *, seed: int = 1,
                 n_random: int | None = None, n_weights: int = 128, n_steps: int = 80,
                 valid_prob: float = 0.7, ready_prob: float = 0.5) -> tuple[str, dict]:
    """``(cocotb module, params)`` of the bench for a block described by ``kind``,
    ``parameters`` (its manifest's) and ``latency``; the rest sizes the stimulus
    (``n_random`` random vectors, default 250 / 400 / 300 for MACs / mul / converters;
    ``n_weights`` x ``n_steps`` updates for the update engine)."""
    if kind not in BENCHES:
        raise ValueError(f"kind must be one of {', '.join(BENCHES)}, got {kind!r}")
    p = parameters
    stream = {"valid_prob": valid_prob, "ready_prob": ready_prob}
    common = {"latency": latency, "seed": seed}
    if kind == "mac":
        out = {"kind": "lns", **{k: p[k] for k in ("bits", "frac_bits", "lut_frac", "window",
                                                   "acc_bits", "saturate", "lanes",
                                                   "mid_bits", "pipeline", "out_pipeline")},
               "n_random": n_random or 250, **stream}
    elif kind == "int8-mac":
        out = {"kind": "int8", **{k: p[k] for k in ("lanes", "acc_bits", "saturate",
                                                    "pipeline")},
               "n_random": n_random or 250, **stream}
    elif kind == "fp8-mac":
        out = {"kind": "fp8", "a_fmt": p["a_format"], "b_fmt": p["b_format"],
               **{k: p[k] for k in ("lanes", "window", "acc_bits", "saturate", "pipeline")},
               "n_random": n_random or 250, **stream}
    elif kind == "fp32-mac":
        out = {"kind": "fp32", "lanes": p["lanes"], "pipeline": p["pipeline"],
               "n_random": n_random or 250, **stream}
    elif kind == "mul":
        out = {k: p[k] for k in ("bits", "frac_bits", "underflow", "shift")}
        out["n_random"] = n_random or 400
    elif kind == "convert" and p["direction"] == "to-linear":
        out = {"kind": "to_linear", **{k: p[k] for k in ("frac_bits", "lut_frac", "q_lo",
                                                         "window", "p_bits")},
               "n_random": n_random or 300}
    elif kind == "convert":
        out = {"kind": "from_linear", "acc_width": p["acc_bits"],
               **{k: p[k] for k in ("frac_bits", "mid_bits", "lsb_q")},
               "n_random": n_random or 300}
    else:
        out = {k: p[k] for k in ("config", "pipeline", "bias_bits")}
        out.update(n_weights=n_weights, n_steps=n_steps, **stream)
    return BENCHES[kind], {**out, **common}


def _run(design: Design, kind: str, parameters: dict, latency: int, sims, test_name, build_root,
         waves, stimulus) -> list[Result]:
    from cocotb_tools.check_results import get_results

    module, params = bench_params(kind, parameters, latency, **stimulus)
    waves = waves_enabled() if waves is None else bool(waves)
    results = []
    for sim in sims:
        if sim not in SIMULATORS:
            raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}, got {sim!r}")
        t0 = time.monotonic()
        try:
            test_dir = run_cocotb(design, module, sim=sim, params=params, test_name=test_name,
                                  build_root=build_root, waves=waves)
        except SimulationError as exc:
            results.append(Result(sim, False, 0, 0, time.monotonic() - t0, None, None,
                                  str(exc)))
            continue
        n, failed = get_results(test_dir / "results.xml")
        wave = (test_dir / (f"{design.toplevel}.fst" if sim == "icarus" else "dump.vcd")
                if waves else None)
        results.append(Result(sim, failed == 0 and n > 0, n, failed,
                              time.monotonic() - t0, test_dir, wave))
    return results


def verify_block(block, sims=SIMULATORS, *, test_name: str | None = None, build_root=None,
                 waves: bool | None = None, check: bool = False, **stimulus) -> list[Result]:
    """Export ``block`` (a :class:`~lnsmadam.hw.blocks.Block`) to Verilog in the build
    cache and run its bench on each of ``sims``; with ``check``, raise
    :class:`~.runner.SimulationError` on the first failure (for pytest)."""
    root = Path(build_root) if build_root is not None else default_build_root()
    design = export_verilog(block.component, block.name, root / "verilog")
    results = _run(design, block.kind, block.parameters, block.timing["latency_cycles"],
                   sims, test_name or block.name, root, waves, stimulus)
    if check:
        raise_failures(results)
    return results


def verify_files(manifest: str | Path, sims=SIMULATORS, *, build_root=None,
                 waves: bool | None = None, check: bool = False, **stimulus) -> list[Result]:
    """Verify the Verilog that ``lnsmadam generate`` wrote, from its ``<name>.json`` (the
    ``.v`` beside it is simulated as it is)."""
    manifest = Path(manifest)
    meta = json.loads(manifest.read_text())
    design = Design(manifest.with_name(meta["verilog"]), meta["top_module"], meta["ports"])
    results = _run(design, meta["block"], meta["parameters"],
                   meta["timing"]["latency_cycles"], sims, meta["name"], build_root, waves,
                   stimulus)
    if check:
        raise_failures(results)
    return results


def raise_failures(results: list[Result]) -> None:
    for r in results:
        if not r.passed:
            raise SimulationError(r.message or f"{r.sim}: {r.failed} of {r.tests} cocotb "
                                               "tests failed")


def summary(name: str, results: list[Result]) -> str:
    """A few lines: one per simulator, then the failures' first lines."""
    lines = [f"verify {name}:"] + [r.line() for r in results]
    for r in results:
        if not r.passed and r.message:
            lines.append(f"  {r.sim}: " + "\n    ".join(r.message.splitlines()[:12]))
    return "\n".join(lines)
