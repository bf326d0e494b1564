"""``lnsmadam train``: train the digits MLP with 8-bit LNS-Madam beside an FP32 baseline."""

from __future__ import annotations

import json
import os
import sys

import click

BASELINES = ("adam", "sgd", "madam", "fromage", "lns-madam-float")


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
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


@click.command()
@click.option("--backend", type=click.Choice(["sim", "board", "golden"]), default=None,
              help="Who trains the LNS network: sim = the SoC's Verilog in Verilator (the "
                   "twin, default), board = an FPGA over UART (--board), golden = the "
                   "bit-exact NumPy model only.")
@click.option("--sim", "use_sim", is_flag=True, help="Shorthand for --backend sim.")
@click.option("--board", "board_name", default=None,
              help="Train on this board over its UART (see `lnsmadam boards`).")
@click.option("--port", default=None, help="Serial port of the board (default: the board's "
              "usual one, e.g. /dev/ttyUSB1 for the iCEBreaker).")
@click.option("--lanes", type=click.IntRange(1, 16), default=1, show_default=True,
              help="MAC lanes of the twin's SoC (sim backend).")
@click.option("--epochs", type=click.IntRange(1, 1000), default=None,
              help="Epochs (default: 30 with --backend golden, 10 on the twin or a board).")
@click.option("--hidden", type=click.IntRange(1, 1024), default=None,
              help="Hidden layer width of the 64-H-10 MLP (default 16).")
@click.option("--sizes", "sizes_text", default=None,
              help="Layer widths, 64 inputs first and 10 outputs last, e.g. "
                   "64,32,32,32,32,10 (a deep MLP; instead of --hidden).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the initial weights and of the sample order.")
@click.option("--bits", type=click.IntRange(3, 16), default=8, show_default=True,
              help="Width of every forward/backward LNS tensor.")
@click.option("--gamma", type=int, default=8, show_default=True,
              help="Base factor of those tensors (a power of two, < 2**(bits-1)).")
@click.option("--p-scale", type=click.FloatRange(0, 1e6, min_open=True), default=10.0,
              show_default=True, help="sigma* = p_scale * RMS(initial weights), per layer.")
@click.option("--lr-step", type=click.IntRange(1, 64), default=1, show_default=True,
              help="LNS-Madam learning rate in update-format LSBs (1 = 2^-7 octave).")
@click.option("--bias-correction/--seed-v", default=False, show_default=True,
              help="Madam's 1/(1-beta^t) bias correction, or seed v with the first g^2.")
@click.option("--baseline", type=click.Choice(BASELINES + ("none",)), default="adam",
              show_default=True, help="FP32 optimiser trained side by side.")
@click.option("--baseline-lr", type=click.FloatRange(0, min_open=True), default=None,
              help="Learning rate of the baseline (default: the tuned one).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write per-epoch metrics, final accuracies and the config to this file.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Write accuracy curves to this PNG file.")
@click.option("--progress/--no-progress", default=None,
              help="Show progress bars (default: when stderr is a terminal or in CI logs).")
def train(backend, use_sim, board_name, port, lanes, epochs, hidden, sizes_text, seed, bits, gamma,
          p_scale, lr_step, bias_correction, baseline, baseline_lr,
          json_path, plot_path, progress):
    """Train the 8x8-digits MLP with integer LNS-Madam (and an FP32 baseline).

    By default the training SoC runs in its simulation twin (no board needed); the golden
    model's result for the same seed is printed beside it and the final weights are
    compared bit for bit.
    """
    if board_name is not None:
        if backend not in (None, "board") or use_sim:
            raise click.BadParameter("--board trains on a board: do not combine it with "
                                     "--sim or another --backend", param_hint="--board")
        backend = "board"
    elif use_sim:
        if backend not in (None, "sim"):
            raise click.BadParameter("--sim conflicts with --backend " + backend,
                                     param_hint="--sim")
        backend = "sim"
    backend = backend or "sim"
    sizes = _sizes(hidden, sizes_text)
    if epochs is None:
        epochs = 30 if backend == "golden" else 10
    if backend == "board" and board_name is None:
        raise click.BadParameter("--backend board needs --board NAME", param_hint="--board")
    if backend != "golden":
        return _train_device(backend, board_name, port, lanes, epochs, sizes, seed, bits,
                             gamma, p_scale, lr_step, bias_correction, baseline, baseline_lr,
                             json_path, plot_path, progress)
    from tqdm import tqdm

    from lnsmadam.golden.data import load_digits_split
    from lnsmadam.golden.experiment import run
    from lnsmadam.golden.format import LNSFormat
    from lnsmadam.golden.mlp import MLPConfig
    from lnsmadam.golden.update import MadamConfig

    try:
        fmt = LNSFormat.from_gamma(bits, gamma)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--gamma") from None
    cfg = MLPConfig(sizes=sizes, fmt=fmt,
                    madam=MadamConfig(lr_step=lr_step, bias_correction=bias_correction),
                    p_scale=p_scale)
    data = load_digits_split(0)
    n = len(data.x_train)
    show = sys.stderr.isatty() if progress is None else progress
    names = ["lns-madam"] + ([] if baseline == "none" else [baseline])
    click.echo(f"digits MLP {_name(sizes)}, {n} train / {len(data.x_test)} test samples, "
               f"{epochs} epochs, seed {seed}, batch 1")
    click.echo(f"LNS-Madam: {fmt.describe()}; weights {cfg.madam.weight.bits} b at gamma_U "
               f"{cfg.madam.weight.gamma} + state {cfg.madam.state.bits} b; p_scale {p_scale}, "
               f"lr {lr_step}/{cfg.madam.weight.gamma} octave, g_bound {cfg.madam.g_bound}")
    results = []
    for name in names:
        bar = tqdm(total=epochs * n, desc=f"{name:>16}", unit="sample", disable=not show,
                   leave=True, file=sys.stderr, mininterval=0.5)

        def on_epoch(ep, m, bar=bar):
            bar.set_postfix(epoch=ep, train=f"{100 * m['train_acc']:.1f}%",
                            test=f"{100 * m['test_acc']:.1f}%")

        kw = {"lr": baseline_lr} if (baseline_lr is not None and name != "lns-madam") else None
        results.append(run(name, data, epochs, seed, sizes=sizes, lns_config=cfg,
                           opt_kwargs=kw, on_epoch=on_epoch, progress=bar.update))
        bar.close()
    # per-epoch table
    head = f"{'epoch':>5} " + " ".join(f"{r.name + ' train':>22} {r.name + ' test':>20}" for r in results)
    click.echo(head)
    for e in range(epochs):
        row = f"{e + 1:>5} " + " ".join(
            f"{100 * r.history[e]['train_acc']:21.2f}% {100 * r.history[e]['test_acc']:19.2f}%"
            for r in results)
        click.echo(row)
    click.echo("final test accuracy: " + ", ".join(
        f"{r.name} {100 * r.final_test_acc:.2f} % ({r.seconds:.1f} s)" for r in results))
    if json_path:
        out = {"command": "lnsmadam " + " ".join(sys.argv[1:]) if sys.argv else "lnsmadam train",
               "backend": backend, "seed": seed, "epochs": epochs,
               "dataset": {"name": "sklearn digits 8x8", "train": n, "test": len(data.x_test),
                           "split_seed": data.seed, "features": "pixel/16 in [0,1]"},
               "lns_config": cfg.to_dict(),
               "runs": {r.name: {k: v for k, v in r.to_dict().items() if k != "model"}
                        for r in results},
               "final_test_acc": {r.name: r.final_test_acc for r in results}}
        os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
        with open(json_path, "w") as fh:
            json.dump(out, fh, indent=2)
        click.echo(f"wrote {json_path}")
    if plot_path:
        _write_plot(plot_path, results, f"digits {_name(sizes)}, seed {seed}: "
                    f"{bits}-bit LNS-Madam (integer golden) vs FP32 {baseline}")
        click.echo(f"wrote {plot_path}")


def _train_device(backend, board_name, port, lanes, epochs, sizes, seed, bits, gamma, p_scale,
                  lr_step, bias_correction, baseline, baseline_lr, json_path, plot_path,
                  progress):
    """``--sim`` / ``--board``: the same run on the SoC, with golden beside it."""
    import time

    import numpy as np
    from tqdm import tqdm

    from lnsmadam.golden.data import load_digits_split
    from lnsmadam.golden.experiment import RunResult, run
    from lnsmadam.golden.mlp import LNSMLP
    from lnsmadam.host import session
    from lnsmadam.host.device import Device
    from lnsmadam.host.transport import LinkError

    if bias_correction:
        raise click.BadParameter("the SoC implements the seeding mode only (--seed-v)",
                                 param_hint="--bias-correction")
    if backend == "sim":
        try:
            soc_cfg = session.twin_config(sizes=sizes, lanes=lanes, bits=bits,
                                          gamma=gamma)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    else:
        from lnsmadam.boards.platforms import UnknownBoard, get_board
        try:
            board = get_board(board_name)
        except UnknownBoard as exc:
            raise click.BadParameter(str(exc), param_hint="--board") from None
        if lanes != 1:
            raise click.BadParameter("--lanes applies to the twin; a board runs the design "
                                     "it was built with", param_hint="--lanes")
        port = port or board.serial_port
    cfg = _mlp_config(sizes, bits, gamma, lr_step, p_scale)
    data = load_digits_split(0)
    n = len(data.x_train)
    show = sys.stderr.isatty() if progress is None else progress
    where = "simulation twin (Verilator)" if backend == "sim" else f"{board_name} on {port}"
    click.echo(f"digits MLP {_name(sizes)}, {n} train / {len(data.x_test)} test samples, "
               f"{epochs} epochs, seed {seed}, batch 1, on the {where}")
    t0 = time.perf_counter()
    try:
        if backend == "sim":
            click.echo("building the twin (Verilator; cached after the first build) ...")
            transport = session.open_twin(soc_cfg)
        else:
            from lnsmadam.host.transport import SerialTransport
            transport = SerialTransport(port, _board_baud(board))
    except (LinkError, OSError, RuntimeError) as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None
    build_s = time.perf_counter() - t0
    model = LNSMLP(cfg, seed)
    with Device(transport) as dev:
        try:
            ident = session.prepare(dev, model, data)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"device: {ident['design']['name']} {ident['design']['version']}, "
                   f"protocol {ident['protocol']}, lanes {ident['config']['lanes']}, "
                   f"{ident['clk_freq'] / 1e6:g} MHz, {ident['baud']} baud; data uploaded")
        bar = tqdm(total=epochs * n, desc=f"{'device':>16}", unit="sample", disable=not show,
                   leave=True, file=sys.stderr, mininterval=0.5)

        def on_epoch(ep, m):
            bar.set_postfix(epoch=ep, train=f"{100 * m['train_acc']:.1f}%",
                            test=f"{100 * m['test_acc']:.1f}%")

        drun = session.train(dev, data, epochs, seed, lr_step, on_epoch=on_epoch,
                             progress=bar.update)
        bar.close()
        cycles = drun.cycles
        u_dev, v_dev = dev.read_weights()
    device = RunResult("device", drun.history, cfg.to_dict(), drun.seconds,
                       extra={"backend": backend, "samples_per_s": drun.samples / max(
                           drun.train_seconds, 1e-9), "cycles": cycles})
    # golden, same seed, and the optional FP32 baseline
    results = [device]
    names = ["lns-madam"] + ([] if baseline == "none" else [baseline])
    for name in names:
        gbar = tqdm(total=epochs * n, desc=f"{name:>16}", unit="sample", disable=not show,
                    leave=True, file=sys.stderr, mininterval=0.5)
        kw = {"lr": baseline_lr} if (baseline_lr is not None and name != "lns-madam") else None
        results.append(run(name, data, epochs, seed, sizes=sizes, lns_config=cfg,
                           opt_kwargs=kw, progress=gbar.update))
        gbar.close()
    golden = results[1]
    gm = golden.extra["model"]
    same_w = all(np.array_equal(a, b) for a, b in zip(u_dev, gm.u))
    same_v = all(np.array_equal(a, b) for a, b in zip(v_dev, gm.v))
    same_hist = device.history == golden.history
    head = f"{'epoch':>5} " + " ".join(f"{r.name + ' train':>22} {r.name + ' test':>20}"
                                        for r in results)
    click.echo(head)
    for e in range(epochs):
        click.echo(f"{e + 1:>5} " + " ".join(
            f"{100 * r.history[e]['train_acc']:21.2f}% {100 * r.history[e]['test_acc']:19.2f}%"
            for r in results))
    click.echo("final test accuracy: " + ", ".join(
        f"{r.name} {100 * r.final_test_acc:.2f} %" for r in results))
    rate = device.extra["samples_per_s"]
    extra = f", {cycles / drun.samples:.0f} cycles/sample" if cycles else ""
    click.echo(f"device: {rate:.0f} samples/s{extra}; setup {build_s:.1f} s")
    verdict = "yes" if (same_w and same_v and same_hist) else "NO"
    click.echo(f"bit-exact with the golden model (weights, state, every epoch's accuracy): "
               f"{verdict}")
    if json_path:
        out = {"command": "lnsmadam " + " ".join(sys.argv[1:]) if sys.argv else "lnsmadam train",
               "backend": backend, "board": board_name, "seed": seed, "epochs": epochs,
               "dataset": {"name": "sklearn digits 8x8", "train": n, "test": len(data.x_test),
                           "split_seed": data.seed, "features": "pixel/16 in [0,1]"},
               "lns_config": cfg.to_dict(), "device": {"identify": ident},
               "bit_exact": {"weights": same_w, "state": same_v, "history": same_hist},
               "runs": {r.name: {k: v for k, v in r.to_dict().items() if k != "model"}
                        for r in results},
               "final_test_acc": {r.name: r.final_test_acc for r in results}}
        os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
        with open(json_path, "w") as fh:
            json.dump(out, fh, indent=2, default=_jsonable)
        click.echo(f"wrote {json_path}")
    if plot_path:
        _write_plot(plot_path, results, f"digits {_name(sizes)}, seed {seed}: {bits}-bit "
                    f"LNS-Madam on the {backend} vs golden vs FP32 {baseline}")
        click.echo(f"wrote {plot_path}")
    if verdict != "yes":
        raise click.ClickException("the device's result differs from the golden model")


def _sizes(hidden, sizes_text) -> tuple[int, ...]:
    """The MLP's layer widths from ``--hidden`` or ``--sizes`` (digits: 64 in, 10 out)."""
    if sizes_text is None:
        return (64, 16 if hidden is None else hidden, 10)
    if hidden is not None:
        raise click.BadParameter("give --hidden (64-H-10) or --sizes, not both",
                                 param_hint="--sizes")
    from .build import parse_sizes
    try:
        sizes = parse_sizes(sizes_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--sizes") from None
    if len(sizes) < 3 or sizes[0] != 64 or sizes[-1] != 10 or not all(
            1 <= h <= 1024 for h in sizes[1:-1]):
        raise click.BadParameter(f"--sizes must be 64, one or more hidden widths in 1..1024, "
                                 f"then 10 (the digits), got {sizes_text!r}",
                                 param_hint="--sizes")
    return sizes


def _name(sizes) -> str:
    return "-".join(str(s) for s in sizes)


def _jsonable(o):
    import numpy as np
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def _board_baud(board) -> int:
    from lnsmadam.hw.soc import SoCConfig
    return int(board.config.get("baud", SoCConfig().baud))


def _mlp_config(sizes, bits, gamma, lr_step, p_scale):
    from lnsmadam.golden.format import LNSFormat
    from lnsmadam.golden.mlp import MLPConfig
    from lnsmadam.golden.update import MadamConfig
    try:
        fmt = LNSFormat.from_gamma(bits, gamma)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--gamma") from None
    return MLPConfig(sizes=sizes, fmt=fmt, madam=MadamConfig(lr_step=lr_step),
                     p_scale=p_scale)
