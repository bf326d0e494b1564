"""The combined report of a sweep folder: ``sweep.json``, ``sweep.csv``, ``sweep.md`` and the
plots, built from ``DIR/grid.toml`` and the per-point results alone.

One row per point: the point's varied keys, every job's metrics (``metrics(result)`` of the
job module) and derived columns:

* ``us_per_sample`` = ``cycles_per_sample`` / clock, the clock being the one the built
  design runs at: the build's required clock (``required_mhz``), or its placed Fmax
  (``fmax_mhz``) where that is lower (a build with ``--timing-allow-fail`` that missed its
  clock); without a build the cycles job's ``clock_mhz``; ``run_mhz`` says which clock was
  used; ``epoch_s`` = that times the training samples of one epoch;
* ``pareto``: true for points no other point beats on every objective present of area
  (``area_um2``, else ``logic``, else ``lut4``: lower), ``us_per_sample`` (lower) and
  accuracy (``test_acc``, else ``twin_test_acc``: higher); needs at least two objectives.

With ``[report] aggregate = KEY`` in the grid, the points that differ only in ``KEY`` (the
seeds of one setting, say) form a group: one row per group with the other varied keys, the
values of ``KEY`` its done points took, ``n`` (done points), ``missing`` (failed or
pending ones) and, per metric (``[report] metrics``, default every numeric column),
``<metric>_median``, ``_min`` and ``_max`` over the done points. It goes into ``sweep.json``
(``groups``), ``sweep_groups.csv`` and a second table of ``sweep.md`` (median (min..max)).

Plots (matplotlib, only when the columns exist): ``pareto.png`` (area against µs per
sample, coloured by accuracy, the Pareto front marked) and ``fmax_lanes.png`` (Fmax
against lanes, one line per board).
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path

from . import jobs as registry
from .engine import write_bytes, write_json
from .grid import Grid, load

__all__ = ["build", "rows", "pareto", "groups"]

AREA = ("area_um2", "logic", "lut4")
ACCURACY = ("test_acc", "twin_test_acc")


def _read(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def rows(grid: Grid, out: Path) -> list[dict]:
    """The report rows (see the module docstring); ``status`` is ``done``, ``failed``
    (error text in ``errors``) or ``pending``."""
    table = []
    for p in grid.points:
        folder = out / "points" / p.key
        row = {"point": p.key, **{k: p.config.get(k) for k in grid.varied}, "status": None}
        metrics, errors, seconds = {}, {}, {}
        for j in p.jobs:
            res = _read(folder / f"{j}.json")
            if res and res.get("ok"):
                metrics.update(registry.get(j).metrics(res["result"]))
                seconds[j] = res.get("seconds")
                continue
            err = _read(folder / f"{j}.error.json")
            if err:
                errors[j] = err.get("error")
        row.update(metrics)
        _derive(row, p.config)
        done = len(seconds)
        row["status"] = ("done" if done == len(p.jobs) else
                         "failed" if errors else "pending")
        row["errors"] = errors
        row["seconds"] = seconds
        table.append(row)
    for r, flag in zip(table, pareto(table)):
        if flag is not None:
            r["pareto"] = flag
    return table


def _derive(row: dict, config: dict) -> None:
    clock = row.get("required_mhz")
    if clock and row.get("fmax_mhz"):
        # a placement that missed the clock asked for runs no faster than its Fmax
        clock = min(clock, row["fmax_mhz"])
    clock = clock or row.get("clock_mhz") or config.get("clock_mhz")
    if row.get("cycles_per_sample") and clock:
        row["run_mhz"] = clock
        row["us_per_sample"] = row["cycles_per_sample"] / clock
        if row.get("n_train") and "epoch_s" not in row:
            row["epoch_s"] = row["us_per_sample"] * row["n_train"] / 1e6


def _objectives(row: dict) -> dict:
    obj = {}
    area = next((k for k in AREA if row.get(k) is not None), None)
    if area:
        obj["area"] = row[area]
    if row.get("us_per_sample") is not None:
        obj["us_per_sample"] = row["us_per_sample"]
    acc = next((k for k in ACCURACY if row.get(k) is not None), None)
    if acc:
        obj["accuracy"] = -row[acc]        # all objectives minimised
    return obj


def pareto(table: list[dict]) -> list[bool | None]:
    """Per row: on the Pareto front of the objectives all done rows share (None when fewer
    than two objectives are shared or the row is not done)."""
    objs = [_objectives(r) if r.get("status", "done") == "done" else None for r in table]
    common = set.intersection(*[set(o) for o in objs if o]) if any(objs) else set()
    if len(common) < 2:
        return [None] * len(table)
    vecs = [tuple(o[k] for k in sorted(common)) if o else None for o in objs]

    def dominated(v):
        return any(w is not None and w != v and all(a <= b for a, b in zip(w, v))
                   for w in vecs)

    return [None if v is None else not dominated(v) for v in vecs]


def _numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def groups(grid: Grid, table: list[dict]) -> list[dict]:
    """The rows of ``table`` aggregated over ``grid.report["aggregate"]`` (see the module
    docstring); [] when the grid asks for no aggregate."""
    over = grid.report.get("aggregate")
    if not over:
        return []
    keys = [k for k in grid.varied if k != over]
    done = [r for r in table if r["status"] == "done"]
    metrics = grid.report.get("metrics") or [
        c for c in _columns(done) if c not in (*grid.varied, "point", "status", "pareto")
        and any(_numeric(r.get(c)) for r in done)]
    buckets: dict[str, list[dict]] = {}
    for r in table:
        buckets.setdefault(json.dumps([r.get(k) for k in keys]), []).append(r)
    out = []
    for rs in buckets.values():
        ok = [r for r in rs if r["status"] == "done"]
        g = {**{k: rs[0].get(k) for k in keys}, over: [r.get(over) for r in ok],
             "n": len(ok), "missing": len(rs) - len(ok)}
        for m in metrics:
            vals = [r[m] for r in ok if _numeric(r.get(m))]
            g[f"{m}_median"] = statistics.median(vals) if vals else None
            g[f"{m}_min"] = min(vals) if vals else None
            g[f"{m}_max"] = max(vals) if vals else None
        out.append(g)
    return out


def _group_markdown(grid: Grid, gs: list[dict]) -> list[str]:
    over = grid.report["aggregate"]
    keys = [k for k in grid.varied if k != over]
    metrics = [c[:-len("_median")] for c in gs[0] if c.endswith("_median")]
    lines = ["", f"## Over {over}: median (min..max)", "",
             "| " + " | ".join([*keys, over, "n", *metrics]) + " |",
             "|" + "---|" * (len(keys) + 2 + len(metrics))]
    for g in gs:
        cells = [_fmt(g[k]) for k in keys] + [", ".join(map(_fmt, g[over])) or "-",
                                              f"{g['n']}" + (f" ({g['missing']} missing)"
                                                             if g["missing"] else "")]
        cells += [f"{_fmt(g[m + '_median'])} ({_fmt(g[m + '_min'])}..{_fmt(g[m + '_max'])})"
                  if g[m + "_median"] is not None else "-" for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    absent = [m for m in metrics if all(g[m + "_median"] is None for g in gs)]
    if absent and any(g["n"] for g in gs):
        lines += ["", f"report.metrics: no done point has the column(s) {', '.join(absent)}."]
    return lines


def _columns(table: list[dict]) -> list[str]:
    cols = []
    for r in table:
        cols += [k for k in r if k not in cols and k not in ("errors", "seconds")]
    return cols


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "-".join(map(str, v))
    return str(v)


def markdown(grid: Grid, table: list[dict], plots: list[str], gs=()) -> str:
    cols = _columns(table)
    n = {s: sum(r["status"] == s for r in table) for s in ("done", "failed", "pending")}
    lines = [f"# Sweep: {grid.title}", "",
             f"Jobs: {', '.join(grid.jobs)}. Points: {len(table)} ({n['done']} done, "
             f"{n['failed']} failed, {n['pending']} pending)."]
    if grid.fixed:
        lines.append("Fixed: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in grid.fixed.items())
                     + ".")
    lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in table:
        lines.append("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    if gs:
        lines += _group_markdown(grid, gs)
    failed = [r for r in table if r["errors"]]
    if failed:
        lines += ["", "## Failures", ""]
        for r in failed:
            for j, e in r["errors"].items():
                lines.append(f"* `{r['point']}` {j}: {e} (traceback: "
                             f"`points/{r['point']}/{j}.traceback.txt`)")
    if plots:
        lines += ["", *[f"![{p}]({p})" for p in plots]]
    return "\n".join(lines) + "\n"


def _plots(table: list[dict], out: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    done = [r for r in table if r["status"] == "done"]
    area = next((k for k in AREA if any(r.get(k) is not None for r in done)), None)
    pts = [r for r in done if area and r.get(area) is not None and r.get("us_per_sample")]
    if pts:
        acc = next((k for k in ACCURACY if any(r.get(k) is not None for r in pts)), None)
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        sc = ax.scatter([r["us_per_sample"] for r in pts], [r[area] for r in pts],
                        c=[r.get(acc) or 0.0 for r in pts] if acc else "tab:blue",
                        cmap="viridis", s=36)
        if acc:
            fig.colorbar(sc, ax=ax, label=acc)
        front = sorted((r for r in pts if r.get("pareto")), key=lambda r: r["us_per_sample"])
        if front:
            ax.scatter([r["us_per_sample"] for r in front], [r[area] for r in front], s=110,
                       facecolors="none", edgecolors="tab:red", label="Pareto front")
            ax.legend()
        ax.set_xlabel("µs per training sample")
        ax.set_ylabel({"area_um2": "area (µm²)", "logic": "logic cells",
                       "lut4": "LUT4"}[area])
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "pareto.png", dpi=110)
        plt.close(fig)
        made.append("pareto.png")
    pts = [r for r in done if r.get("fmax_mhz") and r.get("lanes") is not None]
    if pts:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        groups = {}
        for r in pts:
            groups.setdefault(r.get("board") or "-", []).append(r)
        for name, rs in groups.items():
            rs = sorted(rs, key=lambda r: r["lanes"])
            ax.plot([r["lanes"] for r in rs], [r["fmax_mhz"] for r in rs], "o-", label=name)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("lanes")
        ax.set_ylabel("Fmax (MHz)")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "fmax_lanes.png", dpi=110)
        plt.close(fig)
        made.append("fmax_lanes.png")
    return made


def build(out_dir, grid: Grid | None = None) -> dict:
    """Write the combined report of ``out_dir`` (its ``grid.toml`` unless ``grid`` is
    given); return the ``sweep.json`` content."""
    out = Path(out_dir)
    if grid is None:
        if not (out / "grid.toml").exists():
            raise ValueError(f"-o {out}: no grid.toml there (not a sweep folder)")
        grid = load(out / "grid.toml")
    table = rows(grid, out)
    gs = groups(grid, table)
    plots = _plots(table, out)
    doc = {"format": "lnsmadam-sweep", "version": 1, "title": grid.title,
           "jobs": list(grid.jobs), "fixed": grid.fixed, "axes": grid.axes,
           "cases": grid.cases, "report": grid.report, "points": table, "groups": gs,
           "plots": plots}
    write_json(out / "sweep.json", doc)
    write_bytes(out / "sweep.csv", _csv(table))
    if gs:
        write_bytes(out / "sweep_groups.csv", _csv(gs))
    write_bytes(out / "sweep.md", markdown(grid, table, plots, gs).encode())
    return doc


def _csv(table: list[dict]) -> bytes:
    cols = _columns(table)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in table:
        w.writerow({c: _fmt(r.get(c)) if isinstance(r.get(c), list) else r.get(c)
                    for c in cols})
    return buf.getvalue().encode()
