"""``lnsmadam boards``: the supported boards, their resources and default SoC config.

::

    lnsmadam boards            # a table
    lnsmadam boards --json     # everything, machine-readable
"""

from __future__ import annotations

import json

import click


def _default_config(board) -> dict:
    """The board's default SoCConfig as a dict."""
    from ..boards.build import make_config
    return make_config(board, "soc").to_dict()


def _kbit(bits: int) -> str:
    return f"{bits // 1024} Kb"


@click.command("boards", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def boards(as_json):
    """List the supported boards with their resources and default config."""
    from ..boards.platforms import BOARDS, DEFAULT_BOARD

    rows = []
    for b in BOARDS.values():
        rows.append({**b.summary(), "default": b.name == DEFAULT_BOARD,
                     "default_config": _default_config(b)})
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    head = ("board", "device", "LUT4", "block RAM", "SPRAM", "DSP", "clock", "programmer")
    table = []
    for r in rows:
        res = r["resources"]
        table.append((r["name"] + (" *" if r["default"] else ""),
                      f"{r['device']}-{r['package']}", str(res["lut4"]),
                      f"{res['bram']} x {_kbit(res['bram_bits'])}",
                      f"{res['spram']} x {_kbit(res['spram_bits'])}" if res["spram"] else "-",
                      str(res["dsp"]), f"{r['clock']['freq'] / 1e6:g} MHz",
                      " / ".join(r["programmers"])))
    widths = [max(len(x[i]) for x in [head, *table]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    click.echo(fmt.format(*head))
    for t in table:
        click.echo(fmt.format(*t))
    click.echo("\n* default board\n\nDefault config per board:")
    for r in rows:
        c = r["default_config"]
        keys = [k for k in ("sizes", "lanes", "n_records", "bits", "gamma", "clk_freq", "baud")
                if k in c]
        parts = []
        for k in keys:
            v = c[k]
            if k == "sizes":
                v = "-".join(str(s) for s in v)
            elif k == "clk_freq":
                v = f"{float(v) / 1e6:g} MHz"
            parts.append(f"{k}={v}")
        click.echo(f"  {r['name']}: {', '.join(parts)}")
        click.echo(f"      UART {r['uart']['rx']}/{r['uart']['tx']} (rx/tx) on "
                   f"{r['usb_bridge']}, {r['serial_port']}; LEDs: {'; '.join(r['leds'])}")
        if r["notes"]:
            click.echo(f"      {r['notes']}")
