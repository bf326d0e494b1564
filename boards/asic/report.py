"""One ASIC report of one block: synthesis, timing, power, energy per operation.

:func:`asic_report` runs the whole flow for an elaborated component and writes
``report.json`` and ``report.md`` into the output directory (plus ``net.v``, the mapped
netlist, and the tool logs under ``work/`` when ``keep`` is set).
"""

from __future__ import annotations

import json
import time
from importlib import metadata
from pathlib import Path

from ...golden.format import check_int
from .energy import KINDS, activity_from_training
from .flow import combine_power, instance_power, synthesize, temporary_workdir, timing
from .libs import LIB_KINDS, find_lib

__all__ = ["asic_report", "kind_of", "check_options", "unused", "OP_NAMES", "NOT_INCLUDED",
           "TRAINING_BLOCKS", "CLOCK_NS", "STREAMS", "CYCLES", "DEFAULTS", "ASSUMED_ACTIVITY",
           "default_activity", "OUT_MARKER", "check_out_dir", "mark_out_dir"]

#: the flow's options and their ranges: the clock period (ns), the gate-level simulation's
#: parallel streams (a multiple of 64: they run bit-parallel in uint64 words) and cycles
CLOCK_NS = (0.05, 1000)
STREAMS = (64, 4096)
CYCLES = (32, 100_000)
#: the options' defaults (``lnsmadam asic`` and the sweep's ``asic`` job)
DEFAULTS = {"lib": "osu018", "clock_ns": 10.0, "activity": "training", "streams": 256,
            "cycles": 256}

#: ``lnsmadam generate`` blocks with a training stimulus (others need an assumed activity)
TRAINING_BLOCKS = ("mac", "int8-mac", "fp8-mac", "fp32-mac", "update")

#: the assumed activity (transitions per cycle of every cell output) of the report's
#: ``power_assumed``, and the default activity of a block without a training stimulus
ASSUMED_ACTIVITY = 0.1

#: the file that makes an output directory an ``lnsmadam asic`` one (see
#: :func:`check_out_dir`)
OUT_MARKER = ".lnsmadam-asic"


def default_activity(block: str | None):
    """``"training"`` for a block with a training stimulus (:data:`TRAINING_BLOCKS`), else
    :data:`ASSUMED_ACTIVITY`: the activity ``lnsmadam asic`` uses when none is given."""
    return "training" if block in TRAINING_BLOCKS else ASSUMED_ACTIVITY


def _earlier_report(path: Path) -> bool:
    """A directory of a run before the marker existed: its report.json is ours."""
    try:
        rep = json.loads((path / "report.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(rep, dict) and rep.get("generator") == "lnsmadam asic"


def check_out_dir(path, name: str = "out_dir") -> Path:
    """``path`` if a report may be written there: new, empty, or an earlier report's
    directory (:data:`OUT_MARKER`, or its ``report.json``); else
    :class:`~lnsmadam.sim.files.OutputPathError` (a ``ValueError``) naming ``name``, so that
    no file this tool did not write is ever overwritten. Creates nothing."""
    from ...sim.files import check_owned_dir

    return check_owned_dir(path, name, OUT_MARKER, _earlier_report)


def mark_out_dir(path) -> Path:
    """Create ``path`` and mark it as an ``lnsmadam asic`` directory."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / OUT_MARKER
    if not marker.exists():
        marker.write_text("lnsmadam asic writes report.json, report.md and net.v here\n")
    return out

#: the operation an energy figure is per, by block kind
OP_NAMES = {"lns": "MAC", "int8": "MAC", "fp8": "MAC", "fp32": "MAC", "update": "weight update"}

NOT_INCLUDED = ("wires (no wire-load model, no parasitics: switching power is pin "
                "capacitance only)", "clock tree (ideal clock; the flip-flops' clock-pin "
                "power is included)", "I/O (ideal input transitions, unloaded outputs)",
                "glitches (activity is from a zero-delay, cycle-based simulation)",
                "memories and the trainer's sequencer")


def kind_of(component) -> str | None:
    """The energy stimulus kind of a component, or None when there is none."""
    from ...hw.mac import INT8MAC, LNSMAC
    from ...hw.update import MadamUpdate

    if isinstance(component, LNSMAC):
        return "lns"
    if isinstance(component, INT8MAC):
        return "int8"
    if isinstance(component, MadamUpdate):
        return "update"
    from ...hw.fpmac import FP8MAC, FP32MAC

    if isinstance(component, FP8MAC):
        return "fp8"
    if isinstance(component, FP32MAC):
        return "fp32"
    return None


def check_options(clock_ns: float, activity, block: str | None = None, streams: int = 256,
                  cycles: int = 256, lib: str | None = None) -> None:
    """Refuse a clock, an activity, a simulation size or (for ``block``, a ``generate``
    block kind, with a library that has power data) a missing training stimulus with one
    line naming the parameter."""
    lo, hi = CLOCK_NS
    if (isinstance(clock_ns, bool) or not isinstance(clock_ns, (int, float))
            or not lo <= clock_ns <= hi):
        raise ValueError(f"clock_ns must be in [{lo:g}, {hi:g}], got {clock_ns!r}")
    if isinstance(activity, str) and activity != "training":
        raise ValueError(f"activity must be 'training' or a number in [0, 2], got {activity!r}")
    if not isinstance(activity, str) and not 0 <= activity <= 2:
        raise ValueError(f"activity must be in [0, 2] transitions per cycle, got {activity}")
    lo, hi = STREAMS
    if (isinstance(streams, bool) or not isinstance(streams, int) or streams % 64
            or not lo <= streams <= hi):
        raise ValueError(f"streams must be a multiple of 64 in [{lo}, {hi}], got {streams!r}")
    check_int("cycles", cycles, *CYCLES)
    if (block is not None and activity == "training" and block not in TRAINING_BLOCKS
            and LIB_KINDS.get(lib) != "area"):
        raise ValueError(f"block {block!r} has no training stimulus: give an assumed activity "
                         f"(toggles per cycle, --activity A)")


def unused(lib: str, activity, given, spell=str, block: str | None = None) -> str | None:
    """The refusal, on one line, of the options in ``given`` (of ``clock_ns``, ``activity``,
    ``streams``, ``cycles``) that change nothing: all four with an area-only library, the
    simulation's size with an assumed activity. None when there are none; ``spell`` turns a
    name into the user's spelling (``--clock-ns``); ``block``: the block kind, to say why
    when its activity was assumed by default (:func:`default_activity`)."""
    if LIB_KINDS.get(lib) == "area":
        moot, why = ("clock_ns", "activity", "streams", "cycles"), \
            f"with {spell('lib')} {lib} (area only)"
    elif activity != "training" and "activity" not in given and block is not None:
        moot, why = ("streams", "cycles"), (f"for block {block} (no training stimulus: its "
                                            f"{spell('activity')} is an assumed {activity})")
    elif activity != "training":
        moot, why = ("streams", "cycles"), f"with an assumed {spell('activity')}"
    else:
        return None
    bad = [spell(n) for n in moot if n in given]
    if not bad:
        return None
    return (f"{', '.join(bad)} has no effect {why}: leave {'it' if len(bad) == 1 else 'them'} "
            "out")


def _ops_per_cycle(kind, component) -> int:
    return getattr(component, "lanes", 1) if kind in ("lns", "int8", "fp8", "fp32") else 1


def asic_report(component, block: str, params: dict, lib_name: str, clock_ns: float,
                out_dir, activity: str | float = "training", streams: int = 256,
                cycles: int = 256, samples: int | None = None, warm_samples: int = 200,
                keep: bool = False, trace=None, log=print) -> dict:
    """Run the flow and write the reports (see the module docstring); return the report."""
    check_options(clock_ns, activity, streams=streams, cycles=cycles)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kind = kind_of(component)
    if activity == "training" and kind is None and LIB_KINDS.get(lib_name) != "area":
        raise ValueError(f"block {block!r} has no training stimulus: give an assumed activity "
                         f"(toggles per cycle, --activity A)")
    t0 = time.monotonic()
    lib = find_lib(lib_name)
    work, cleanup = temporary_workdir(str(out / "work") if keep else None)
    try:
        log(f"synthesising {block} to {lib.name} "
            + (f"at {clock_ns} ns" if lib.has_timing else "(area only: no clock)"))
        syn = synthesize(component, lib, clock_ns, work)
        (out / "net.v").write_text((work / "net.v").read_text())
        rep = {
            "generator": "lnsmadam asic",
            "version": metadata.version("lnsmadam"),
            "block": block, "parameters": params,
            "library": {"name": lib.name, "kind": lib.kind, "corner": lib.corner,
                        "liberty": str(lib.liberty)},
            # an area-only library maps without a clock (abc -D is left out)
            "clock_ns": clock_ns if lib.has_timing else None,
            "cells": syn.n_cells, "flops": syn.n_flops, "cells_by_type": syn.cells,
            "area_um2": round(syn.area_um2, 2), "flop_area_um2": round(syn.seq_area_um2, 2),
            "synthesis_seconds": syn.seconds,
            "not_included": list(NOT_INCLUDED),
        }
        if lib.has_timing:
            log("timing (OpenSTA)")
            rep["timing"] = timing(syn)
            log("power (OpenSTA, per instance)")
            ipow = instance_power(syn)
            T = clock_ns * 1e-9
            nominal = _ops_per_cycle(kind, component)
            rep["op"] = OP_NAMES.get(kind, "cycle")
            assumed = ASSUMED_ACTIVITY if activity == "training" else float(activity)
            pa = combine_power(syn, ipow, alpha_default=assumed)
            rep["power_assumed"] = {"activity": assumed, **_rounded(pa),
                                    "energy_per_op_pj": round(pa["total_w"] * T / nominal * 1e12, 4),
                                    "ops_per_cycle": nominal}
            if activity == "training":
                if trace is None:
                    from .stimulus import record_training, samples_to_fill
                    n = samples or samples_to_fill(kind, nominal, streams, cycles)
                    log(f"recording {n} training samples (after {warm_samples})")
                    trace = record_training(samples=n, warm_samples=warm_samples)
                log(f"gate-level simulation: {streams} streams x {cycles} cycles")
                act = activity_from_training(kind, component, syn, trace, streams, cycles)
                pw = combine_power(syn, ipow, act["alpha"], alpha_default=0.0)
                ops_pc = act["ops"] / act["cycles"]
                slots_pc = act["slots"] / act["cycles"]
                e_cycle = pw["total_w"] * T
                rep["power"] = {
                    **_rounded(pw),
                    "activity": "simulated: operands of real training (golden digits MLP)",
                    "mean_toggle_rate": round(act["mean_toggle_rate"], 5),
                    "simulated_cycles": act["cycles"], "results_checked": act["checked"],
                    "ops_per_cycle": round(ops_pc, 4), "slots_per_cycle": round(slots_pc, 4),
                    "energy_per_cycle_pj": round(e_cycle * 1e12, 4),
                    "energy_per_op_pj": round(e_cycle / ops_pc * 1e12, 4),
                    "energy_per_slot_pj": round(e_cycle / slots_pc * 1e12, 4),
                    "flop_clock_share": round(pw["flop_clock_pin_w"] / pw["total_w"], 4),
                }
        rep["seconds"] = round(time.monotonic() - t0, 1)
    finally:
        cleanup()
    (out / "report.json").write_text(json.dumps(rep, indent=2) + "\n")
    (out / "report.md").write_text(markdown(rep))
    log(f"wrote {out / 'report.json'} and {out / 'report.md'}")
    return rep


def _rounded(p: dict) -> dict:
    return {k.replace("_w", "_mw"): round(v * 1e3, 6) for k, v in p.items()}


def markdown(rep: dict) -> str:
    lib = rep["library"]
    lines = [f"# ASIC report: {rep['block']}", "",
             f"* library: **{lib['name']}** ({lib['corner']}); Liberty `{lib['liberty']}`",
             (f"* clock: {rep['clock_ns']} ns ({1000 / rep['clock_ns']:.1f} MHz)"
              if rep.get("clock_ns") else "* clock: none (area-only library: mapped for "
                                          "area, not timed)"),
             f"* parameters: `{json.dumps(rep['parameters'])}`", "",
             "| cells | flip-flops | area µm² | flip-flop area µm² |", "|---|---|---|---|",
             f"| {rep['cells']} | {rep['flops']} | {rep['area_um2']:.0f} | "
             f"{rep['flop_area_um2']:.0f} |", ""]
    t = rep.get("timing")
    if t:
        lines += ["## Timing", "",
                  f"Critical path {t.get('critical_path_ns')} ns (setup included), "
                  f"{t.get('path_cells')} cells, from `{t.get('startpoint')}` to "
                  f"`{t.get('endpoint')}`; slack {t.get('slack_ns')} ns; "
                  f"**Fmax {t.get('fmax_mhz')} MHz**.", ""]
    else:
        lines += ["No timing or power: this library is area only.", ""]
    for key, title in (("power", "Power with simulated activity"),
                       ("power_assumed", "Power with an assumed activity")):
        p = rep.get(key)
        if not p:
            continue
        lines += [f"## {title}", "",
                  "| internal mW | switching mW | leakage mW | total mW | of which flip-flop "
                  f"clock pins mW | energy per {rep.get('op', 'op')} pJ |",
                  "|---|---|---|---|---|---|",
                  f"| {p['internal_mw']:.4f} | {p['switching_mw']:.4f} | {p['leakage_mw']:.6f} "
                  f"| {p['total_mw']:.4f} | {p['flop_clock_pin_mw']:.4f} | "
                  f"**{p['energy_per_op_pj']:.3f}** |", ""]
        if key == "power":
            lines += [f"{p['activity']}: {p['simulated_cycles']} stream-cycles, mean output "
                      f"toggle rate {p['mean_toggle_rate']}, {p['results_checked']} results "
                      f"checked bit-exact against the golden model; {p['ops_per_cycle']} "
                      f"operations per cycle on average ({p['slots_per_cycle']} slots; "
                      f"{p['energy_per_slot_pj']:.3f} pJ per slot).", ""]
        else:
            lines += [f"Every cell output toggling {p['activity']} times per cycle, "
                      f"{p['ops_per_cycle']} operations per cycle.", ""]
    lines += ["## Not included", ""] + [f"* {x}" for x in rep["not_included"]] + [""]
    return "\n".join(lines)
