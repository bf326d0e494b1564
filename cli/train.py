"""``lnsmadam train``: train the digits MLP with 8-bit LNS-Madam beside an FP32 baseline.

Backends: ``sim`` (default; the SoC's Verilog in Verilator, the twin), ``board`` (an FPGA
over its UART) and ``golden`` (the bit-exact NumPy model only). The design configuration
options are the ones ``lnsmadam build`` takes (:func:`~.options.config_options`: ``--sizes``,
``--lanes``, ..., ``--set KEY=VALUE``, ``--config FILE``). On a board they describe the
design it was built with: fields left out are read from the board, fields given must match
it. The data set, the 8x8 digits, fixes the input width (64) and the output width (10) of
``--sizes``. Options the chosen backend would not use are refused (or, from a ``--config``
file, warned about); the golden model checks ``--lanes`` (a power of two, 1..64) and
``--bits`` (3..16) as a device does. Every output path is checked before training starts:
``--json``, ``--plot`` and ``--checkpoint`` must name three different files (and not the
``--resume`` checkpoint, which only ``--checkpoint`` may overwrite); ``--checkpoint`` never
overwrites another file (:func:`.checkpoint.check_target`). ``--checkpoint`` and
``--resume`` stop and continue a run at any sample (:mod:`.checkpoint`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys

import click

from . import checkpoint as ckpt
from .options import (PLOT_SUFFIXES, OptionError, apply_hidden, checked, config_options,
                      config_values, output_file, refuse_given, warn)

BASELINES = ("adam", "sgd", "madam", "fromage", "lns-madam-float")
#: SoCConfig fields the golden model has no use for (the device's memories, clock, UART and
#: pipelines; they change no result)
DEVICE_ONLY = ("n_records", "clk_freq", "baud", "softmax", "bias_lane", "fast_shuffle",
               "pipelined", "read_reg", "mac_pipeline", "conv_pipeline", "update_pipeline")
#: the data set's input and output widths (8x8 digits, 10 classes): --sizes must start and
#: end with them
DIGITS_IN, DIGITS_OUT = 64, 10
#: widest LNS word the golden trainer takes (`train --help`: "3..16 in golden")
GOLDEN_MAX_BITS = 16


def _check_digits_sizes(sizes, source: str) -> None:
    """Refuse layer widths ``sizes`` (set by option ``source``) that the digits cannot
    train: the input must be 64 wide and the output 10. Malformed ones are left to
    SoCConfig's own check."""
    if (not isinstance(sizes, (list, tuple)) or len(sizes) < 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in sizes)):
        return
    if sizes[0] != DIGITS_IN or sizes[-1] != DIGITS_OUT:
        raise OptionError(f"{source}: the 8x8 digits need an input width of {DIGITS_IN} "
                          f"and an output width of {DIGITS_OUT} ({DIGITS_IN},...,{DIGITS_OUT}), "
                          f"got {','.join(map(str, sizes))}")


def _check_outputs(outputs: dict, resume_path) -> None:
    """Refuse two outputs (option -> path or None) on one file, and any of them but
    --checkpoint on the --resume checkpoint: one would silently replace the other."""
    seen: list[tuple[str, str]] = []
    for opt, path in outputs.items():
        if path is None:
            continue
        for other, other_path in seen:
            if ckpt.same_file(path, other_path):
                raise OptionError(f"{other} and {opt} name the same file ({path}): give each "
                                  "output its own path")
        if opt != "--checkpoint" and resume_path is not None and ckpt.same_file(
                path, resume_path):
            raise OptionError(f"{opt} names the --resume checkpoint ({path}): it would be "
                              "overwritten; give another path")
        seen.append((opt, path))


def _write_plot(path: str, runs, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for r in runs:
        ep = [m["epoch"] for m in r.history]
        line, = ax.plot(ep, [100 * m["test_acc"] for m in r.history], marker="o", ms=3,
                        label=f"{r.name} test ({100 * r.final_test_acc:.1f} %)")
        ax.plot(ep, [100 * m["train_acc"] for m in r.history], ls="--", lw=1,
                color=line.get_color(), label=f"{r.name} train")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path)
    except OSError as exc:
        raise click.ClickException(f"--plot: could not write {path} ({exc.strerror})") from None
    finally:
        plt.close(fig)


def _backend(backend, use_sim, board_name) -> str:
    if board_name is not None:
        if backend not in (None, "board") or use_sim:
            raise click.BadParameter("--board trains on a board: do not combine it with "
                                     "--sim or another --backend", param_hint="--board")
        return "board"
    if use_sim:
        if backend not in (None, "sim"):
            raise click.BadParameter("--sim conflicts with --backend " + backend,
                                     param_hint="--sim")
        return "sim"
    if backend == "board":
        raise click.BadParameter("--backend board needs --board NAME", param_hint="--board")
    return backend or "sim"


def _with_fields(base, values: dict, names: dict):
    """``base`` (a config dataclass) with ``values`` replaced, validated; an unknown field
    is one error naming it and the known ones."""
    known = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise OptionError(f"unknown config field(s) {', '.join(unknown)}; "
                          f"{type(base).__name__} has: {', '.join(sorted(known))}")
    return checked(lambda: dataclasses.replace(base, **values), names)


def _golden_config(cv, p_scale, bias_correction):
    """The MLPConfig of a golden run: sizes, lanes, bits, gamma and lr_step from the config
    options (defaults: SoCConfig's), the rest from MLPConfig's defaults."""
    from ..golden.format import LNSFormat
    from ..golden.mac import MACConfig
    from ..golden.mlp import MLPConfig
    from ..golden.update import MadamConfig
    from ..golden.soc import SoCConfig

    known = {f.name for f in dataclasses.fields(SoCConfig)}
    unknown = sorted(set(cv.values) - known)
    if unknown:
        raise OptionError(f"unknown config field(s) {', '.join(unknown)}; SoCConfig has: "
                          f"{', '.join(sorted(known))}")
    ignored = sorted(k for k in DEVICE_ONLY if k in cv.values)
    cli_ignored = [cv.source[k] for k in ignored if k not in cv.from_file]
    if cli_ignored:
        raise OptionError(f"{', '.join(cli_ignored)} has no effect with --backend golden "
                          "(the device's memories, clock and pipelines change no result): "
                          "leave it out")
    if ignored:
        warn(f"{', '.join(cv.source[k] for k in ignored)}: not used by --backend golden")
    d = SoCConfig.__dataclass_fields__
    v = {k: cv.values.get(k, d[k].default) for k in ("sizes", "lanes", "bits", "gamma",
                                                     "lr_step")}
    names = {**cv.names(), "p_scale": "--p-scale"}

    def make():
        from ..golden.format import check_int
        from ..golden.soc import MAX_LANES

        check_int("bits", v["bits"], 3, GOLDEN_MAX_BITS)
        lanes = check_int("lanes", v["lanes"], 1, MAX_LANES)
        if lanes & (lanes - 1):
            raise ValueError(f"lanes must be a power of two in 1..{MAX_LANES}, got {lanes}")
        fmt = LNSFormat.from_gamma(v["bits"], v["gamma"])
        return MLPConfig(sizes=v["sizes"], fmt=fmt,
                         mac=MACConfig.for_format(fmt, lanes=v["lanes"]),
                         madam=MadamConfig(lr_step=v["lr_step"],
                                           bias_correction=bias_correction),
                         p_scale=p_scale)
    return checked(make, names)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--backend", type=click.Choice(["sim", "board", "golden"]), default=None,
              help="Who trains the LNS network: sim = the SoC's Verilog in Verilator (the "
                   "twin, default), board = an FPGA over UART (--board), golden = the "
                   "bit-exact NumPy model only.")
@click.option("--sim", "use_sim", is_flag=True, help="Shorthand for --backend sim.")
@click.option("--board", "board_name", default=None,
              help="Train on this board over its UART (see `lnsmadam boards`).")
@click.option("--port", default=None, help="Serial port of the board (with --board; default: "
              "found by USB id, else the board's usual one, e.g. /dev/ttyUSB1).")
@config_options
@click.option("--epochs", type=click.IntRange(1, 1000), default=None,
              help="Epochs, 1..1000 (default: 30 with --backend golden, 10 on the twin or a "
                   "board).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the initial weights and of the sample order, 0..2**32-1.")
@click.option("--p-scale", type=click.FloatRange(0, 1e6, min_open=True), default=10.0,
              show_default=True, help="sigma* = p_scale * RMS(initial weights), per layer, "
                                      "(0, 1e6].")
@click.option("--bias-correction/--seed-v", default=False, show_default=True,
              help="Madam's 1/(1-beta^t) bias correction (golden only), or seed v with the "
                   "first g^2.")
@click.option("--baseline", type=click.Choice(BASELINES + ("none",)), default="adam",
              show_default=True, help="FP32 optimiser trained side by side.")
@click.option("--baseline-lr", type=click.FloatRange(0, min_open=True), default=None,
              help="Learning rate of the baseline, a finite number > 0 (default: the tuned "
                   "one).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write per-epoch metrics, final accuracies and the config to this file.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help=f"Write accuracy curves to this image ({', '.join(PLOT_SUFFIXES[:4])}, "
                   "...).")
@click.option("--progress/--no-progress", default=None,
              help="Show progress bars (default: when stderr is a terminal).")
@click.option("--mode", type=click.Choice(ckpt.MODES), default="exact", show_default=True,
              help="exact: batch-1 LNS-Madam, bit-exact; pipelined: the engine's pipelined "
                   "schedule (layer 0 one sample stale; a device needs the capability).")
@click.option("--checkpoint", "checkpoint_path", type=click.Path(dir_okay=False), default=None,
              help="Write a checkpoint (.npz) here after every epoch and on Ctrl-C; "
                   "continue the run with --resume. An existing file is overwritten only "
                   "if it is the --resume checkpoint.")
@click.option("--resume", "resume_path", type=click.Path(dir_okay=False), default=None,
              help="Continue the run of this checkpoint exactly (its design, seed, lr, mode "
                   "and baseline; --epochs sets the total; without --backend, a golden "
                   "checkpoint resumes on golden).")
@click.pass_context
def train(ctx, backend, use_sim, board_name, port, epochs, seed, p_scale, bias_correction,
          baseline, baseline_lr, json_path, plot_path, progress, mode, checkpoint_path,
          resume_path, **params):
    """Train the 8x8-digits MLP with integer LNS-Madam (and an FP32 baseline).

    By default the training SoC runs in its simulation twin (no board needed); the golden
    model's result for the same seed is printed beside it and the final weights are
    compared bit for bit. With --checkpoint or --resume the golden backend runs behind the
    protocol's reference device (golden.device) so that it too stops and resumes at any
    sample.
    """
    explicit = backend is not None or use_sim or board_name is not None
    backend = _backend(backend, use_sim, board_name)
    # everything that can be refused is refused before any work
    output_file(json_path, "--json")
    output_file(plot_path, "--plot", PLOT_SUFFIXES)
    output_file(checkpoint_path, "--checkpoint")
    _check_outputs({"--json": json_path, "--plot": plot_path,
                    "--checkpoint": checkpoint_path}, resume_path)
    if baseline_lr is not None and not math.isfinite(baseline_lr):
        raise OptionError(f"--baseline-lr must be a finite number > 0, got {baseline_lr}")
    if baseline == "none":
        refuse_given(ctx, ["baseline_lr"], "with --baseline none")
    ck = ckpt.load(resume_path) if resume_path is not None else None
    if ck is not None:
        if not explicit and ckpt.backend_of(ck) == "golden":
            backend = "golden"             # the golden device's checkpoint resumes there
        ckpt.check_backend(ck, backend)
    if backend != "board":
        refuse_given(ctx, ["port"], "without --board")
    elif port is not None and not port.strip():
        raise OptionError("--port must not be empty: give a serial port such as "
                          "/dev/ttyUSB1, or leave it out to find the board's")
    if bias_correction and backend != "golden":
        raise click.BadParameter("the SoC implements the seeding mode only (--seed-v)",
                                 param_hint="--bias-correction")
    ckpt.check_target(checkpoint_path, resume_path)
    cv = config_values(ctx, params)
    if "sizes" in cv.values:
        _check_digits_sizes(cv.values["sizes"], cv.source["sizes"])
    hidden = params.get("hidden")
    if ck is not None:
        seed, p_scale, mode, epochs, baseline, baseline_lr = ckpt.resume_options(
            ctx, ck, cv, hidden, seed=seed, p_scale=p_scale, mode=mode, epochs=epochs,
            baseline=baseline, baseline_lr=baseline_lr)
        hidden = None
    epochs = epochs or (30 if backend == "golden" else 10)
    run = dict(epochs=epochs, seed=seed, p_scale=p_scale, baseline=baseline,
               baseline_lr=baseline_lr, json_path=json_path, plot_path=plot_path,
               show=sys.stderr.isatty() if progress is None else progress, mode=mode)
    if backend == "golden" and ck is None and checkpoint_path is None:
        from ..golden.soc import SoCConfig
        apply_hidden(cv, hidden, SoCConfig().sizes)
        return _train_golden(_golden_config(cv, p_scale, bias_correction), **run)
    if bias_correction:
        raise click.BadParameter("--checkpoint and --resume run the golden model as the "
                                 "device does: seeding mode only (--seed-v)",
                                 param_hint="--bias-correction")
    return _train_device(backend, board_name, port, cv, hidden, ck=ck,
                         checkpoint_path=checkpoint_path, resume_path=resume_path, **run)


def _train_golden(cfg, *, epochs, seed, p_scale, baseline, baseline_lr, json_path,
                  plot_path, show, mode):
    from tqdm import tqdm

    from ..golden.data import load_digits_split
    from ..golden.experiment import run

    fmt = cfg.fmt
    data = load_digits_split(0)
    n = len(data.x_train)
    names = ["lns-madam"] + ([] if baseline == "none" else [baseline])
    arch = "-".join(map(str, cfg.sizes))
    click.echo(f"digits MLP {arch}, {n} train / {len(data.x_test)} test samples, "
               f"{epochs} epochs, seed {seed}, batch 1, {mode} mode")
    click.echo(f"LNS-Madam: {fmt.describe()}; weights {cfg.madam.weight.bits} b at gamma_U "
               f"{cfg.madam.weight.gamma} + state {cfg.madam.state.bits} b; p_scale {p_scale}, "
               f"lr {cfg.madam.lr_step}/{cfg.madam.weight.gamma} octave, g_bound "
               f"{cfg.madam.g_bound}, {cfg.mac.lanes} MAC lane(s)")
    results = []
    for name in names:
        bar = tqdm(total=epochs * n, desc=f"{name:>16}", unit="sample", disable=not show,
                   leave=True, file=sys.stderr, mininterval=0.5)

        def on_epoch(ep, m, bar=bar):
            bar.set_postfix(epoch=ep, train=f"{100 * m['train_acc']:.1f}%",
                            test=f"{100 * m['test_acc']:.1f}%")

        kw = {"lr": baseline_lr} if (baseline_lr is not None and name != "lns-madam") else None
        results.append(run(name, data, epochs, seed, sizes=cfg.sizes, lns_config=cfg,
                           opt_kwargs=kw, on_epoch=on_epoch, progress=bar.update, mode=mode))
        bar.close()
    _table(results, epochs)
    click.echo("final test accuracy: " + ", ".join(
        f"{r.name} {100 * r.final_test_acc:.2f} % ({r.seconds:.1f} s)" for r in results))
    if json_path:
        _write_json(json_path, {**_json_head("golden", None, seed, epochs, data),
                                "mode": mode, "lns_config": cfg.to_dict()}, results)
    if plot_path:
        _write_plot(plot_path, results, f"digits {arch}, seed {seed}: {fmt.bits}-bit "
                    f"LNS-Madam (integer golden) vs FP32 {baseline}")
        click.echo(f"wrote {plot_path}")


def _table(results, epochs: int) -> None:
    head = f"{'epoch':>5} " + " ".join(f"{r.name + ' train':>22} {r.name + ' test':>20}"
                                        for r in results)
    click.echo(head)
    for e in range(epochs):
        click.echo(f"{e + 1:>5} " + " ".join(
            f"{100 * r.history[e]['train_acc']:21.2f}% {100 * r.history[e]['test_acc']:19.2f}%"
            for r in results))


def _json_head(backend, board_name, seed, epochs, data) -> dict:
    return {"command": "lnsmadam " + " ".join(sys.argv[1:]) if sys.argv else "lnsmadam train",
            "backend": backend, "board": board_name, "seed": seed, "epochs": epochs,
            "dataset": {"name": "sklearn digits 8x8", "train": len(data.x_train),
                        "test": len(data.x_test), "split_seed": data.seed,
                        "features": "pixel/16 in [0,1]"}}


def _write_json(path, head: dict, results) -> None:
    out = {**head,
           "runs": {r.name: {k: v for k, v in r.to_dict().items() if k != "model"}
                    for r in results},
           "final_test_acc": {r.name: r.final_test_acc for r in results}}
    text = json.dumps(out, indent=2, default=_jsonable)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(text)
    except OSError as exc:
        # The path was checked before training; a disk that fills up meanwhile still must
        # not end a long run in a traceback.
        raise click.ClickException(f"--json: could not write {path} ({exc.strerror}); the "
                                   f"run's accuracies are in the table above") from None
    click.echo(f"wrote {path}")


def _device_config(ident: dict, cv):
    """The SoCConfig a board reports, after checking it against every field the run gave
    (on the command line or in ``--config``): a board runs the design it was built with."""
    from ..golden.soc import SoCConfig

    soc = dict(ident["config"]["soc"])
    known = {f.name for f in dataclasses.fields(SoCConfig)}
    cfg = SoCConfig(**{k: (tuple(v) if k == "sizes" else v) for k, v in soc.items()
                       if k in known})
    have = cfg.to_dict()
    for key, want in cv.values.items():
        if key not in known:
            raise OptionError(f"unknown config field {key} ({cv.source[key]}); SoCConfig "
                              f"has: {', '.join(sorted(known))}")
        mine = list(want) if key == "sizes" else want
        if mine != have[key] and not (key == "clk_freq" and float(mine) == float(have[key])):
            raise click.ClickException(
                f"the board's design has {key} = {have[key]}, the run asks for {mine} "
                f"({cv.source[key]}): build and program it with that setting, or leave "
                "the option out")
    return cfg


def _check_board_sizes(sizes) -> None:
    """A board built for other layer widths than the digits' cannot train them."""
    if sizes[0] != DIGITS_IN or sizes[-1] != DIGITS_OUT:
        raise click.ClickException(
            f"the board's design has sizes = {list(sizes)}: the 8x8 digits need an input "
            f"width of {DIGITS_IN} and an output width of {DIGITS_OUT}; build it with "
            f"--sizes {DIGITS_IN},...,{DIGITS_OUT}")


def _train_device(backend, board_name, port, cv, hidden, *, epochs, seed, p_scale, baseline,
                  baseline_lr, json_path, plot_path, show, mode="exact", ck=None,
                  checkpoint_path=None, resume_path=None):
    """``--sim`` / ``--board``: the same run on the SoC, with golden beside it; ``golden``
    (with a checkpoint): the golden device behind the same client, no second golden run."""
    import time

    import numpy as np
    from tqdm import tqdm

    from ..golden.data import load_digits_split
    from ..golden.experiment import RunResult, run
    from ..golden.mlp import LNSMLP
    from ..host import session
    from ..host.checkpoint import CheckpointError
    from ..host.device import Device
    from ..host.transport import LinkError

    if backend in ("sim", "golden"):
        if backend == "sim":
            from ..sim.twin import open_twin, twin_config    # the twin needs Amaranth
            base = twin_config()
        else:
            from ..golden.soc import SoCConfig
            base = SoCConfig()
        apply_hidden(cv, hidden, base.sizes)
        if backend == "sim" and mode == "pipelined" and "pipelined" not in cv.values:
            # a pipelined run needs a twin built with the capability (unless told otherwise)
            base = dataclasses.replace(base, pipelined=True)
        soc_cfg = _with_fields(base, cv.values, cv.names())
        if ck is not None:                         # refused before the twin is built
            from ..golden.device import GoldenDevice
            ckpt.check_design(ck, soc_cfg.identify_json() if backend == "sim"
                              else GoldenDevice.identify_of(soc_cfg), backend)
    else:
        from ..boards.build import make_config
        from ..boards.platforms import UnknownBoard, get_board
        try:
            board = get_board(board_name)
        except UnknownBoard as exc:
            raise click.BadParameter(str(exc), param_hint="--board") from None
        apply_hidden(cv, hidden, make_config(board).sizes)
        baud = int(cv.values.get("baud", make_config(board).baud))
        if port is None:
            from ..boards.program import default_port
            port = default_port(board)
    data = load_digits_split(0)
    n = len(data.x_train)
    where = {"sim": "simulation twin (Verilator)", "board": f"{board_name} on {port}",
             "golden": "golden device (the protocol's reference device, NumPy)"}[backend]
    t0 = time.perf_counter()
    try:
        if backend == "sim":
            click.echo("building the twin (Verilator; cached after the first build) ...")
            transport = open_twin(soc_cfg)
        elif backend == "golden":
            from ..golden.device import GoldenDevice
            from ..host.transport import CallbackTransport
            transport = CallbackTransport(GoldenDevice(soc_cfg, per_frame=64).feed)
        else:
            from ..host.transport import SerialTransport
            transport = SerialTransport(port, baud)
    except (LinkError, OSError, RuntimeError) as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None
    build_s = time.perf_counter() - t0
    with Device(transport, **({"poll": 0} if backend == "golden" else {})) as dev:
        try:
            if backend == "board":
                soc_cfg = _device_config(dev.identify(), cv)
                if ck is None:
                    _check_board_sizes(soc_cfg.sizes)
            cfg = dataclasses.replace(soc_cfg.mlp_config(), p_scale=p_scale)
            click.echo(f"digits MLP {'-'.join(map(str, cfg.sizes))}, {n} train / "
                       f"{len(data.x_test)} test samples, {epochs} epochs, seed {seed}, "
                       f"batch 1, {mode} mode, on the {where}")
            model = LNSMLP(cfg, seed)
            ident = session.prepare(dev, model, data, resume=ck)
        except (ValueError, LinkError, CheckpointError) as exc:
            raise click.ClickException(" ".join(str(exc).split())) from None
        if mode == "pipelined" and not ident["config"].get("pipelined"):
            raise click.ClickException(
                f"--mode pipelined: this device ({ident['design']['name']} "
                f"{ident['design']['version']}) has no pipelined mode")
        click.echo(f"device: {ident['design']['name']} {ident['design']['version']}, "
                   f"protocol {ident['protocol']}, lanes {ident['config']['lanes']}, "
                   f"{ident['clk_freq'] / 1e6:g} MHz, {ident['baud']} baud; data uploaded"
                   + (f"; resuming {resume_path} at epoch {ck.position.epochs_done + 1}, "
                      f"sample {ck.position.sample}" if ck is not None else ""))
        done = 0 if ck is None else ck.position.epochs_done * n + ck.position.sample
        bar = tqdm(total=epochs * n, initial=done, desc=f"{'device':>16}", unit="sample",
                   disable=not show, leave=True, file=sys.stderr, mininterval=0.5)

        def on_epoch(ep, m):
            bar.set_postfix(epoch=ep, train=f"{100 * m['train_acc']:.1f}%",
                            test=f"{100 * m['test_acc']:.1f}%")

        if ck is not None:
            ck.position.run["epochs"] = epochs
        try:
            drun = session.train(dev, data, epochs, seed, cfg.madam.lr_step, on_epoch=on_epoch,
                                 progress=bar.update, mode=ckpt.MODES.index(mode),
                                 checkpoint=checkpoint_path, resume=ck,
                                 run={"p_scale": float(p_scale), "backend": backend,
                                      "baseline": baseline, "baseline_lr": baseline_lr})
        except KeyboardInterrupt:
            bar.close()
            hint = (f"; checkpoint written to {checkpoint_path}: continue with `lnsmadam "
                    f"train --resume {checkpoint_path}`" if checkpoint_path else "")
            click.echo(f"interrupted: the device finished its samples in flight and is "
                       f"idle{hint}", err=True)
            raise click.exceptions.Exit(130) from None
        bar.close()
        cycles = drun.cycles
        u_dev, v_dev = dev.read_weights()
    device = RunResult("device" if backend != "golden" else "lns-madam", drun.history,
                       cfg.to_dict(), drun.seconds,
                       extra={"backend": backend, "samples_per_s": drun.samples / max(
                           drun.train_seconds, 1e-9), "cycles": cycles, "steps": drun.steps})
    # golden, same seed, and the optional FP32 baseline
    results = [device]
    names = (["lns-madam"] if backend != "golden" else []) + \
        ([] if baseline == "none" else [baseline])
    for name in names:
        gbar = tqdm(total=epochs * n, desc=f"{name:>16}", unit="sample", disable=not show,
                    leave=True, file=sys.stderr, mininterval=0.5)
        kw = {"lr": baseline_lr} if (baseline_lr is not None and name != "lns-madam") else None
        results.append(run(name, data, epochs, seed, sizes=cfg.sizes, lns_config=cfg,
                           opt_kwargs=kw, progress=gbar.update, mode=mode))
        gbar.close()
    verdict = same = None
    if backend != "golden":
        gm = results[1].extra["model"]
        same = {"weights": all(np.array_equal(a, b) for a, b in zip(u_dev, gm.u)),
                "state": all(np.array_equal(a, b) for a, b in zip(v_dev, gm.v)),
                "history": device.history == results[1].history}
        # a pipelined run resumed inside an epoch refilled its pipeline (docs/protocol.md §10)
        refilled = drun.position.run.get("refills", 0)
        verdict = "yes" if all(same.values()) else ("not expected" if refilled else "NO")
    _table(results, epochs)
    click.echo("final test accuracy: " + ", ".join(
        f"{r.name} {100 * r.final_test_acc:.2f} %" for r in results))
    rate = device.extra["samples_per_s"]
    extra = f", {cycles / drun.samples:.0f} cycles/sample" if cycles else ""
    click.echo(f"device: {rate:.0f} samples/s{extra}; setup {build_s:.1f} s")
    if verdict is not None:
        click.echo(f"bit-exact with the golden model (weights, state, every epoch's accuracy): "
                   f"{verdict}" + (" (a pipelined run resumed inside an epoch)"
                                   if verdict == "not expected" else ""))
    if checkpoint_path:
        click.echo(f"checkpoint: {checkpoint_path}")
    if json_path:
        _write_json(json_path, {
            **_json_head(backend, board_name, seed, epochs, data),
            "mode": mode, "resumed_from": resume_path, "checkpoint": checkpoint_path,
            "lns_config": cfg.to_dict(), "device_config": soc_cfg.to_dict(),
            "device": {"identify": ident},
            **({"bit_exact": same} if same is not None else {})},
            results)
    if plot_path:
        _write_plot(plot_path, results, f"digits {'-'.join(map(str, cfg.sizes))}, seed "
                    f"{seed}: {cfg.fmt.bits}-bit LNS-Madam on the {backend} vs golden vs "
                    f"FP32 {baseline}")
        click.echo(f"wrote {plot_path}")
    if verdict == "NO":
        raise click.ClickException("the device's result differs from the golden model")


def _jsonable(o):
    import numpy as np
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)
