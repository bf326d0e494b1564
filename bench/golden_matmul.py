"""Throughput of the bit-exact golden matmul against xlns's NumPy LNS arrays.

    python bench/golden_matmul.py [--json out/bench_golden_matmul.json] [--repeat 5]

Both sides multiply the same float matrices quantised to 8-bit LNS at gamma = 8
(``xlns.xlnssetF(3)``, the same base). ``golden.mac.matmul`` computes the accumulator words of
the hardware dot product bit-exactly (default MACConfig with a 40-bit accumulator, so no
saturation replay is needed at K = 256); xlns's ``xlnsnp @ xlnsnp`` computes an LNS matmul with
its own (ideal Gaussian-log) addition. Inputs: "gaussian" = N(0, 1) entries scaled per
tensor so the max-abs lands on emax (what the MLP's tensors look like); "uniform" = codes
drawn uniformly from all 256 codes (the worst case for the window correction, half of all
products fall below the window). Times are the median of ``--repeat`` runs, after one warm-up,
with one BLAS thread (``--threads=N`` to change; xlns is single-threaded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

# One BLAS thread unless told otherwise (--threads): xlns runs on one core too, and a
# multi-threaded BLAS spin-waits badly when the other core is busy.
_threads = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--threads=")), "1")
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, _threads)

import numpy as np  # noqa: E402

from lnsmadam.golden.format import LNSFormat
from lnsmadam.golden.mac import MACConfig, matmul

FMT = LNSFormat(8, 3)
CFG = MACConfig(fmt=FMT, acc_bits=40)


def _time(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def operands(n, dist, rng):
    if dist == "gaussian":
        xa, xb = rng.standard_normal((n, n)), rng.standard_normal((n, n))
        ca = FMT.encode(xa, FMT.bias_for_max(np.abs(xa).max()))
        cb = FMT.encode(xb, FMT.bias_for_max(np.abs(xb).max()))
    else:
        ca, cb = rng.integers(0, 256, (n, n)), rng.integers(0, 256, (n, n))
    return ca, cb


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="out/bench_golden_matmul.json")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sizes", default="64,256")
    ap.add_argument("--threads", default="1", help="BLAS threads, as --threads=N (default 1)")
    args = ap.parse_args(argv)
    import xlns as xl
    xl.xlnssetF(3)
    rng = np.random.default_rng(0)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        for dist in ("gaussian", "uniform"):
            ca, cb = operands(n, dist, rng)
            fa, fb = FMT.decode(ca), FMT.decode(cb)
            t_golden = _time(lambda: matmul(ca, cb, CFG), args.repeat)
            xa, xb = xl.xlnsnp(fa), xl.xlnsnp(fb)
            t_xlns = _time(lambda: xa @ xb, max(1, args.repeat // 2))
            macs = n ** 3
            rows.append({"n": n, "inputs": dist, "golden_s": t_golden, "xlns_s": t_xlns,
                         "golden_MMAC_per_s": macs / t_golden / 1e6,
                         "xlns_MMAC_per_s": macs / t_xlns / 1e6,
                         "speedup": t_xlns / t_golden})
    hdr = f"{'shape':>9} {'inputs':>9} {'golden ms':>10} {'xlns ms':>9} {'golden MMAC/s':>14} {'speedup':>8}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['n']:>4}x{r['n']:<4} {r['inputs']:>9} {r['golden_s'] * 1e3:10.2f} "
              f"{r['xlns_s'] * 1e3:9.1f} {r['golden_MMAC_per_s']:14.1f} {r['speedup']:7.1f}x")
    out = {"rows": rows, "config": {"bits": 8, "gamma": 8, "acc_bits": CFG.acc_bits,
                                    "window": CFG.window, "lut_frac": CFG.lut_frac},
           "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
           "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "numpy": np.__version__, "xlns": getattr(xl, "__version__", "1.0.5")}}
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
        print(f"wrote {args.json}")
    return out


if __name__ == "__main__":
    main()
