"""Job ``build``: the SoC (or the stand-in test design) for a board, through
:func:`lnsmadam.boards.build.build` (YoWASP Yosys + nextpnr).

Parameters: ``board``, ``design`` (``soc``/``standin``), ``pnr_seed`` (nextpnr's seed, 1),
``until`` (``synth``: Yosys only, ``pack``: + nextpnr ``--pack-only``, ``bitstream``: the
whole flow, the default), ``synth_opts``, ``router`` (nextpnr's, ``router1``/``router2``),
and the SoCConfig fields over the board's default config (``sizes``, ``lanes``,
``n_records``, ``clk_freq`` in Hz, ``baud``, ``bits``, ``gamma``, ``lr_step``,
``state_man_bits``, ``beta_k``, ``softmax``, ``bias_lane``, ``fast_shuffle``, ``pipelined``,
``read_reg``, ``mac_pipeline``, ``conv_pipeline``, ``update_pipeline``; the
SoCConfig checks them). Result: the build
report (``report.json``); artefacts: ``report.json``, ``report.md`` and the bitstream.
"""

from __future__ import annotations

from pathlib import Path

from . import Param

SOC_PARAMS = {
    "sizes": Param("ints", "MLP layer widths, input first", lo=1, hi=1024),
    "lanes": Param("int", "weights per cycle per datapath", choices=(1, 2, 4, 8, 16, 32, 64)),
    "n_records": Param("int", "samples the on-chip data memory holds", lo=1, hi=65535),
    "clk_freq": Param("float", "design clock in Hz", lo=1e3, hi=1e9),
    "baud": Param("int", "UART rate", lo=300, hi=50_000_000),
    "bits": Param("int", "LNS tensor width", lo=3, hi=8),
    "gamma": Param("int", "LNS base factor"),
    "lr_step": Param("int", "default LNS-Madam step", lo=1, hi=64),
    "state_man_bits": Param("int", "second-moment mantissa bits", lo=5, hi=16),
    "beta_k": Param("int", "second-moment decay 1 - 2**-beta_k", lo=1, hi=20),
    "softmax": Param("str", "softmax-error unit", choices=("serial", "parallel")),
    "bias_lane": Param("bool", "a lane of its own for the bias column"),
    "fast_shuffle": Param("bool", "the epoch order's multiplies by a multiplier"),
    "pipelined": Param("bool", "the pipelined-mode capability"),
    "read_reg": Param("int", "register stages after the memories", lo=0, hi=1),
    "mac_pipeline": Param("int", "lane-MAC register stages"),
    "conv_pipeline": Param("int", "output-converter stages", lo=0, hi=4),
    "update_pipeline": Param("int", "update-engine register cuts", lo=0, hi=7),
}


def params(config: dict) -> dict:
    from ...boards.build import ROUTERS, UNTIL, design_choices
    from ...boards.platforms import board_names
    return {"board": Param("str", "target board", choices=tuple(board_names())),
            "design": Param("str", "design to build", choices=design_choices()),
            "pnr_seed": Param("int", "nextpnr placement seed", lo=0, hi=2**31 - 1),
            "until": Param("str", "how far the flow goes", choices=UNTIL),
            "synth_opts": Param("str", "Yosys synthesis options (default: the board's)"),
            "router": Param("str", "nextpnr router (default: nextpnr's, router1)",
                            choices=ROUTERS),
            **SOC_PARAMS}


def _overrides(config: dict) -> dict:
    return {k: (tuple(v) if k == "sizes" else v) for k, v in config.items() if k in SOC_PARAMS}


def check(config: dict) -> None:
    """The design's config over the board's default, as :func:`run` makes it (ValueError
    naming a field the config refuses); nothing is built."""
    from ...boards.build import make_config
    from ...boards.platforms import get_board

    make_config(get_board(config.get("board", "icebreaker")), config.get("design", "soc"),
                _overrides(config))


def run(config: dict, workdir: Path) -> dict:
    from ...boards.build import build
    over = _overrides(config)
    rep = build(config.get("board", "icebreaker"), design=config.get("design", "soc"),
                overrides=over, out_dir=workdir, seed=config.get("pnr_seed", 1),
                progress=None, synth_opts=config.get("synth_opts"),
                until=config.get("until", "bitstream"), router=config.get("router"))
    files = ["report.json", "report.md"]
    if rep["bitstream"]:
        files.append(Path(rep["bitstream"]).name)
        rep["bitstream"] = Path(rep["bitstream"]).name
    return {**rep, "artefacts": files}


def metrics(result: dict) -> dict:
    res, t = result["resources"], result["timing"]
    out = {"board": result["board"]["name"]}
    for row in ("logic", "lut4", "ff", "bram", "spram", "dsp"):
        if row in res:
            out[row] = res[row]["used"]
    if "logic" in res:
        out["logic_available"] = res["logic"]["available"]
    out["required_mhz"] = t["required_mhz"]
    out["fmax_mhz"] = t["achieved_mhz"]
    out["build_ok"] = result["ok"]
    out["build_s"] = result["seconds"].get("total")
    return out
