"""Training depth: which optimisers still train deep MLPs on the 8x8 digits.

The Madam and Fromage papers claim that multiplicative / relative updates train deeper
MLPs than SGD and Adam.  This bench trains 64-32-...-32-10 with D hidden layers of width 32
(D in 2, 4, 8, 16; ReLU, softmax cross-entropy, batch 1) with every entry of ENTRIES and
reports the final test accuracy per depth: median and min..max over seeds 0-4 at the
entry's tuned learning rate, and how many of the five runs ended at chance.  Epochs: 15 at
every depth and for every entry (EPOCHS; 30 would double a bench of ~3 CPU-hours, most of
it the 8-bit integer model: ~5 CPU-minutes per 15-epoch run at depth 16).

Entries: SGD from PyTorch's default ``nn.Linear`` init and from a He init
(``init_mlp(..., scheme="he")``), Adam, Madam, Fromage, float LNS-Madam (all FP32,
``golden/baseline.py`` + ``golden/optim.py``) and the 8-bit integer LNS-Madam golden model
(``golden/mlp.py``, whose learning rate is ``lr_step``, in LSBs of the 12-bit update format).
Adam from the He init (``adam-he``) runs only when named in ``--only``.

Tuning, the same for every entry and depth:
1. the entry's three-value grid (consecutive values of its ladder) on seeds 0, 1, 2;
2. while the best value (median final test accuracy over those seeds, then the mean, then
   the smaller lr) is at an end of the values run so far, the next ladder value beyond that
   end is added, at most MAX_EXTENSIONS times (the integer model's lr_step cannot go below
   1: that is the finest step its weight format holds);
3. the best value is run on seeds 3 and 4 too; the table reports seeds 0-4 at that value.

    ./run nice -n 10 python bench/depth.py --procs 2 --json docs/data/depth.json
    ./run python bench/depth.py --only adam sgd --depths 2 4 --epochs 3 --json out/quick.json
    ./run python bench/depth.py --epochs 30 16:20 ...    # 30 epochs, 20 at depth 16

Every finished run is appended to a JSON-lines cache (``--cache``, default
``out/depth/runs.jsonl``); a re-started bench skips the runs already there (resume).  The
summary and every run's per-epoch history go to ``--json``.
"""

from __future__ import annotations

import os

# one BLAS thread per worker process (the matrices are tiny; threads only contend)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

DEPTHS = (2, 4, 8, 16)
EPOCHS = {2: 15, 4: 15, 8: 15, 16: 15}
WIDTH = 32
TUNE_SEEDS = (0, 1, 2)
CONFIRM_SEEDS = (3, 4)
MAX_EXTENSIONS = 2
#: a run whose final test accuracy is below this ended at chance (10 classes: 0.1)
CHANCE_ACC = 0.2

HALF_DECADES = tuple(float(f"{m}e{e}") for e in range(-5, 0) for m in (1, 3))
POWERS_OF_TWO = tuple(2.0 ** -k for k in range(12, 2, -1))
LR_STEPS = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class Entry:
    """One row of the table: an optimiser, its fixed settings, init and lr ladder."""

    label: str
    optimizer: str              # "lns-madam" (integer golden) or a golden.optim name
    ladder: tuple               # the lr values the tuning may visit, ascending
    grid: tuple                 # the three it starts with (consecutive ladder values)
    fixed: dict = field(default_factory=dict)
    init: str = "torch"
    default: bool = True        # run unless --only names others

    def __post_init__(self):
        i = self.ladder.index(self.grid[0])
        if self.ladder[i:i + len(self.grid)] != self.grid:
            raise ValueError(f"{self.label}: grid must be consecutive ladder values")


ENTRIES = (
    Entry("sgd", "sgd", HALF_DECADES, (0.01, 0.03, 0.1)),
    Entry("sgd-he", "sgd", HALF_DECADES, (0.01, 0.03, 0.1), init="he"),
    Entry("adam", "adam", HALF_DECADES, (3e-4, 1e-3, 3e-3)),
    Entry("adam-he", "adam", HALF_DECADES, (3e-4, 1e-3, 3e-3), init="he", default=False),
    Entry("madam", "madam", HALF_DECADES, (3e-3, 0.01, 0.03), {"p_scale": 20.0}),
    Entry("fromage", "fromage", HALF_DECADES, (3e-3, 0.01, 0.03)),
    Entry("lns-madam-float", "lns-madam-float", POWERS_OF_TWO, (2.0 ** -8, 2.0 ** -7, 2.0 ** -6),
          {"p_scale": 20.0}),
    Entry("lns-madam", "lns-madam", LR_STEPS, (1, 2, 4), {"p_scale": 10.0}),
)
BY_LABEL = {e.label: e for e in ENTRIES}


def sizes_of(depth: int) -> tuple[int, ...]:
    return (64,) + (WIDTH,) * depth + (10,)


# ---------------------------------------------------------------------------------------
# one run
# ---------------------------------------------------------------------------------------

_DATA = None


def _data():
    global _DATA
    if _DATA is None:
        from lnsmadam.golden.data import load_digits_split
        _DATA = load_digits_split(0)
    return _DATA


def run_one(task: tuple) -> dict:
    """Train one (label, depth, lr, seed, epochs); final and per-epoch accuracies."""
    import numpy as np

    label, depth, lr, seed, epochs = task
    e = BY_LABEL[label]
    t0 = time.perf_counter()
    if e.optimizer == "lns-madam":
        from lnsmadam.golden.mlp import MLPConfig, train_lns
        from lnsmadam.golden.update import MadamConfig
        cfg = MLPConfig(sizes=sizes_of(depth), madam=MadamConfig(lr_step=int(lr)), **e.fixed)
        hist = train_lns(cfg, _data(), epochs, seed)["history"]
        finite = True
    else:
        from lnsmadam.golden.baseline import train_float
        with np.errstate(all="ignore"):     # a diverging run overflows; it is recorded
            r = train_float(e.optimizer, {**e.fixed, "lr": lr}, sizes_of(depth), epochs, seed,
                            _data(), init=e.init)
        # train accuracy = running accuracy, as the integer trainer (and the device) count it
        hist = [{"epoch": m["epoch"], "train_acc": m["running_acc"], "test_acc": m["test_acc"]}
                for m in r["history"]]
        finite = all(bool(np.isfinite(p).all()) for p in r["model"].params)
    return {"label": label, "depth": depth, "lr": lr, "seed": seed, "epochs": epochs,
            "final_test_acc": hist[-1]["test_acc"], "final_train_acc": hist[-1]["train_acc"],
            "finite": finite, "seconds": time.perf_counter() - t0, "history": hist}


def _key(label, depth, lr, seed, epochs) -> tuple:
    return (label, int(depth), float(lr), int(seed), int(epochs))


def run_key(r: dict) -> tuple:
    return _key(r["label"], r["depth"], r["lr"], r["seed"], r["epochs"])


# ---------------------------------------------------------------------------------------
# the tuning protocol
# ---------------------------------------------------------------------------------------

def _score(accs: list[float], lr: float) -> tuple:
    return (statistics.median(accs), statistics.fmean(accs), -lr)


def plan(entry: Entry, depth: int, epochs: int, done: dict) -> tuple[list[tuple], dict]:
    """The runs still needed for ``(entry, depth)`` given the finished ones, and the state.

    Returns ``(tasks, info)``; ``tasks`` is empty when the entry is complete at this depth,
    and ``info`` then holds the chosen lr and the values explored.
    """
    def acc(lr, seed):
        r = done.get(_key(entry.label, depth, lr, seed, epochs))
        return None if r is None else r["final_test_acc"]

    values = list(entry.grid)
    extensions = 0
    while True:
        need = [(v, s) for v in values for s in TUNE_SEEDS if acc(v, s) is None]
        if need:
            return [(entry.label, depth, v, s, epochs) for v, s in need], {}
        scores = {v: _score([acc(v, s) for s in TUNE_SEEDS], v) for v in values}
        best = max(values, key=lambda v: scores[v])
        i = entry.ladder.index(best)
        lo, hi = entry.ladder.index(values[0]), entry.ladder.index(values[-1])
        beyond = i - 1 if i == lo else (i + 1 if i == hi else None)
        if extensions < MAX_EXTENSIONS and beyond is not None and 0 <= beyond < len(entry.ladder):
            values = sorted(values + [entry.ladder[beyond]])
            extensions += 1
            continue
        need = [s for s in CONFIRM_SEEDS if acc(best, s) is None]
        info = {"lr": best, "explored": {str(v): [acc(v, s) for s in TUNE_SEEDS] for v in values},
                "at_ladder_end": beyond is not None and not 0 <= beyond < len(entry.ladder)}
        return [(entry.label, depth, best, s, epochs) for s in need], info


def _order(task: tuple) -> tuple:
    """Scheduling order: the float runs first (minutes each), longest first; then the
    integer model's (up to an hour each on a busy machine), also longest first."""
    label, depth = task[0], task[1]
    return (BY_LABEL[label].optimizer == "lns-madam", -depth)


def summarise(entries, epochs: dict, done) -> list[dict]:
    """One row per (entry, depth) whose protocol is complete; ``epochs`` maps depth -> E."""
    rows = []
    for e in entries:
        for d, ep in epochs.items():
            tasks, info = plan(e, d, ep, done)
            if tasks:
                continue
            rs = [done[_key(e.label, d, info["lr"], s, ep)]
                  for s in TUNE_SEEDS + CONFIRM_SEEDS]
            accs = [100 * r["final_test_acc"] for r in rs]
            rows.append({
                "label": e.label, "optimizer": e.optimizer, "init": e.init, "fixed": e.fixed,
                "depth": d, "epochs": ep, "sizes": list(sizes_of(d)), "lr": info["lr"],
                "lr_name": "lr_step" if e.optimizer == "lns-madam" else "lr",
                "explored_3seed_median": {v: 100 * statistics.median(a)
                                          for v, a in info["explored"].items()},
                "lr_at_ladder_end": info["at_ladder_end"],
                "test_accs": accs, "median": statistics.median(accs), "min": min(accs),
                "max": max(accs), "at_chance": sum(a < 100 * CHANCE_ACC for a in accs),
                "train_median": 100 * statistics.median(r["final_train_acc"] for r in rs),
                "non_finite": sum(not r["finite"] for r in rs)})
    return rows


def _fmt_lr(e: Entry, lr) -> str:
    if e.optimizer == "lns-madam":
        return f"{int(lr)}/128"
    if e.ladder is POWERS_OF_TWO:
        return f"1/{round(1 / lr)}"
    return f"{lr:g}"


def table(rows: list[dict], depths, markdown: bool = False) -> str:
    cell = {(r["label"], r["depth"]): r for r in rows}
    labels = [e.label for e in ENTRIES if any((e.label, d) in cell for d in depths)]
    out = []
    if markdown:
        out.append("| optimiser | " + " | ".join(f"{d} hidden" for d in depths) + " |")
        out.append("|---" * (len(depths) + 1) + "|")
    else:
        out.append(f"{'optimiser':<16} " + " ".join(f"{str(d) + ' hidden':>30}" for d in depths))
    for lab in labels:
        e = BY_LABEL[lab]
        cells = []
        for d in depths:
            r = cell.get((lab, d))
            if r is None:
                cells.append("–")
                continue
            s = f"{r['median']:.2f} ({r['min']:.2f}..{r['max']:.2f}) @{_fmt_lr(e, r['lr'])}"
            if r["at_chance"]:
                s += f" [{r['at_chance']}/5 at chance]"
            cells.append(s)
        if markdown:
            out.append(f"| {lab} | " + " | ".join(cells) + " |")
        else:
            out.append(f"{lab:<16} " + " ".join(f"{c:>30}" for c in cells))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------

def parse_epochs(tokens, depths) -> dict[int, int]:
    """``--epochs`` tokens (``E`` for every depth, ``D:E`` for one) as ``{depth: epochs}``."""
    base = {d: EPOCHS.get(d, 15) for d in depths}
    for tok in tokens or []:
        d, sep, e = tok.rpartition(":")
        try:
            d, e = (int(d) if sep else None), int(e)
        except ValueError:
            raise ValueError(f"--epochs takes E or D:E (integers), got {tok!r}") from None
        if e < 1:
            raise ValueError(f"--epochs must be >= 1, got {tok!r}")
        if d is None:
            base = {k: e for k in base}
        elif d in base:
            base[d] = e
        else:
            raise ValueError(f"--epochs {tok}: depth {d} is not in --depths {list(depths)}")
    return base


def load_cache(path: Path) -> dict:
    done = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done[run_key(r)] = r
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--depths", type=int, nargs="+", default=list(DEPTHS))
    ap.add_argument("--epochs", nargs="+", default=None, metavar="E|D:E",
                    help="epochs for every depth, and D:E for depth D (default: "
                         + " ".join(f"{d}:{e}" for d, e in EPOCHS.items()) + ")")
    ap.add_argument("--only", nargs="+", default=None, choices=list(BY_LABEL),
                    metavar="LABEL", help=f"entries to run, of {', '.join(BY_LABEL)}")
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=Path("out/depth/runs.jsonl"))
    ap.add_argument("--json", type=Path, default=Path("out/depth.json"))
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--plan", action="store_true", help="list the runs still needed and exit")
    a = ap.parse_args(argv)
    if a.procs < 1:
        ap.error("--procs must be >= 1")
    if any(not 1 <= d <= 64 for d in a.depths):
        ap.error("--depths must be in 1..64")
    try:
        epochs = parse_epochs(a.epochs, a.depths)
    except ValueError as exc:
        ap.error(str(exc))
    entries = [e for e in ENTRIES if (e.label in a.only if a.only else e.default)]
    done = load_cache(a.cache)

    def pending(running):
        out = []
        for e in entries:
            for d, ep in epochs.items():
                out += [t for t in plan(e, d, ep, done)[0]
                        if _key(*t) not in running]
        return sorted(out, key=_order)

    if a.plan:
        for t in pending(set()):
            print(*t)
        return 0
    a.cache.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n_new = 0
    with ProcessPoolExecutor(max_workers=a.procs) as ex, a.cache.open("a") as cache:
        running: dict = {}
        while True:
            for t in pending(set(running.values()))[:a.procs - len(running)]:
                running[ex.submit(run_one, t)] = _key(*t)
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in finished:
                del running[f]
                r = f.result()
                done[run_key(r)] = r
                cache.write(json.dumps(r) + "\n")
                cache.flush()
                n_new += 1
                print(f"  {r['label']:>16} depth {r['depth']:>2} lr {r['lr']:<9.4g} seed "
                      f"{r['seed']}: {100 * r['final_test_acc']:6.2f} % ({r['seconds']:.0f} s)",
                      file=sys.stderr, flush=True)
    wall = time.perf_counter() - t0

    rows = summarise(entries, epochs, done)
    print(f"digits 64-{WIDTH}x D-10, batch 1, epochs " + ", ".join(
        f"{ep} at depth {d}" for d, ep in epochs.items())
        + ": final test accuracy %, median (min..max) over seeds 0-4 at the tuned lr")
    print(table(rows, a.depths, a.markdown))
    print(f"{n_new} new runs, wall time {wall:.0f} s on {a.procs} process(es)")
    used = {run_key(r) for r in done.values() if r["label"] in {e.label for e in entries}
            and r["epochs"] == epochs.get(r["depth"])}
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps({
        "command": "python bench/depth.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "epochs": {str(d): ep for d, ep in epochs.items()}, "depths": a.depths, "width": WIDTH,
        "protocol": {"tune_seeds": TUNE_SEEDS, "confirm_seeds": CONFIRM_SEEDS,
                     "max_extensions": MAX_EXTENSIONS, "chance_acc": CHANCE_ACC},
        "entries": {e.label: {"optimizer": e.optimizer, "grid": e.grid, "fixed": e.fixed,
                              "init": e.init} for e in entries},
        "summary": rows,
        "runs": sorted((done[k] for k in used), key=run_key)}, indent=1))
    print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
