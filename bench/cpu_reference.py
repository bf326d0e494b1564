"""The CPU reference the training engine is measured against: µs per training sample on one
core of this machine, for the same job (issue 13 §3).

The job: the digits MLP (64-16-10 or 64-64-10), ReLU hidden layer, softmax cross-entropy,
FP32 SGD (lr 0.03, the tuned §1 baseline), batch 1, the 1,437 training samples per epoch in
``epoch_order(n, seed, epoch)`` (the order the device generates; precomputed here and read
from the input file, a few ns per sample if computed), initial weights ``init_mlp(sizes,
seed)``. Three implementations, each with the usual effort for its kind:

* **C** (``C_SOURCE`` below, written from the equations: forward, ``dz = p - onehot``,
  backward through the old weights, then ``W -= lr * dz a^T``; float32 throughout, expf),
  compiled at bench time with this machine's ``gcc -O2`` and ``gcc -O3 -march=native`` into
  a temporary directory (no binary is committed);
* **PyTorch**, one thread: ``nn.Sequential`` of ``nn.Linear``/``nn.ReLU``,
  ``F.cross_entropy``, ``torch.optim.SGD``, one sample per step (``zero_grad``, forward,
  ``backward``, ``step``);
* **NumPy**: the same equations as the C program, one sample per step (``np.dot``,
  ``np.outer``, in-place updates), float32.

Timing covers the training loop only (no evaluation, no file I/O): C runs ``--epochs``
epochs per repeat, ``--repeats`` repeats from the same initial weights; PyTorch and NumPy
one epoch per repeat, at most 3 repeats. Reported: the median repeat's µs per sample of
process CPU time (what one core needs: on a machine shared with other jobs, wall time also
counts the time they held the core; it is recorded too), and the minimum. Correctness
first: the C program's weights after ``CHECK_EPOCHS`` epochs must equal the golden FP32
baseline's (``golden.baseline.train_float("sgd")``, which follows ``torch.optim.SGD``) to
float tolerance, and its per-epoch running and test accuracy must be within one sample of
it; the bench stops otherwise.

    ./run python bench/cpu_reference.py --json docs/data/cpu_reference.json
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LR = 0.03
#: epochs of the correctness check against golden's FP32 SGD baseline
CHECK_EPOCHS = 3
MAGIC = 0x4C4E5343          # "LNSC"

C_SOURCE = r"""
/* FP32 SGD, batch 1, on an MLP with ReLU hidden layers and softmax cross-entropy.
 * Usage: cpuref IN OUT EPOCHS REPEATS. IN (little-endian): int32 magic, L, sizes[L+1],
 * n_train, n_test, n_orders; float32 lr; float32 x_train[n_train][n0]; int32 y_train;
 * float32 x_test[n_test][n0]; int32 y_test; per layer float32 W[out][in], b[out];
 * int32 order[n_orders][n_train]. Trains EPOCHS epochs REPEATS times from the same initial
 * weights; writes int32 L, per repeat float64 wall and CPU seconds, per epoch of the last
 * repeat int32
 * running correct and test correct, then the last repeat's final W, b (float32). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXL 8

static int L, sz[MAXL + 1], n_train, n_test, n_orders;
static float lr, *xtr, *xte, *W0[MAXL], *B0[MAXL], *W[MAXL], *B[MAXL];
static float *act[MAXL + 1], *dz[MAXL + 1];
static int32_t *ytr, *yte, *order;

static void *rd(FILE *f, size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p || fread(p, 1, n, f) != n) { fprintf(stderr, "short input\n"); exit(1); }
    return p;
}

/* act[l+1] = relu(W_l act[l] + b_l) for hidden layers; act[L] = logits */
static void forward(const float *x) {
    memcpy(act[0], x, sizeof(float) * sz[0]);
    for (int l = 0; l < L; l++) {
        const int in = sz[l], out = sz[l + 1];
        const float *w = W[l], *a = act[l];
        float *z = act[l + 1];
        for (int i = 0; i < out; i++) {
            float s = B[l][i];
            const float *wi = w + (size_t)i * in;
            for (int j = 0; j < in; j++) s += wi[j] * a[j];
            z[i] = (l < L - 1 && s < 0.0f) ? 0.0f : s;
        }
    }
}

static int argmax(const float *v, int n) {
    int k = 0;
    for (int i = 1; i < n; i++) if (v[i] > v[k]) k = i;
    return k;
}

/* one SGD step on sample x with label y; returns 1 if the prediction was right */
static int step(const float *x, int y) {
    forward(x);
    const int no = sz[L];
    float *z = act[L], *d = dz[L];
    const int pred = argmax(z, no);
    float m = z[0], s = 0.0f;
    for (int i = 1; i < no; i++) if (z[i] > m) m = z[i];
    for (int i = 0; i < no; i++) { d[i] = expf(z[i] - m); s += d[i]; }
    for (int i = 0; i < no; i++) d[i] /= s;
    d[y] -= 1.0f;
    for (int l = L - 1; l >= 0; l--) {
        const int in = sz[l], out = sz[l + 1];
        float *w = W[l], *a = act[l], *g = dz[l + 1];
        if (l > 0) {            /* dz_{l-1} = (W_l^T dz_l) * (z_{l-1} > 0), old W_l */
            float *gp = dz[l];
            for (int j = 0; j < in; j++) gp[j] = 0.0f;
            for (int i = 0; i < out; i++) {
                const float gi = g[i], *wi = w + (size_t)i * in;
                for (int j = 0; j < in; j++) gp[j] += wi[j] * gi;
            }
            for (int j = 0; j < in; j++) if (!(a[j] > 0.0f)) gp[j] = 0.0f;
        }
        for (int i = 0; i < out; i++) {   /* W_l -= lr dz_l a_{l-1}^T, b_l -= lr dz_l */
            const float gi = lr * g[i];
            float *wi = w + (size_t)i * in;
            for (int j = 0; j < in; j++) wi[j] -= gi * a[j];
            B[l][i] -= gi;
        }
    }
    return pred == y;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: cpuref IN OUT EPOCHS REPEATS\n"); return 2; }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    int32_t h[2];
    if (fread(h, 4, 2, f) != 2 || h[0] != 0x4C4E5343 || h[1] < 1 || h[1] > MAXL) {
        fprintf(stderr, "bad header\n"); return 1;
    }
    L = h[1];
    int32_t *s = rd(f, 4 * (L + 1));
    for (int l = 0; l <= L; l++) sz[l] = s[l];
    int32_t *nn = rd(f, 12);
    n_train = nn[0]; n_test = nn[1]; n_orders = nn[2];
    lr = *(float *)rd(f, 4);
    xtr = rd(f, 4 * (size_t)n_train * sz[0]);
    ytr = rd(f, 4 * (size_t)n_train);
    xte = rd(f, 4 * (size_t)n_test * sz[0]);
    yte = rd(f, 4 * (size_t)n_test);
    for (int l = 0; l < L; l++) {
        W0[l] = rd(f, 4 * (size_t)sz[l] * sz[l + 1]);
        B0[l] = rd(f, 4 * (size_t)sz[l + 1]);
        W[l] = malloc(4 * (size_t)sz[l] * sz[l + 1]);
        B[l] = malloc(4 * (size_t)sz[l + 1]);
    }
    order = rd(f, 4 * (size_t)n_orders * n_train);
    fclose(f);
    for (int l = 0; l <= L; l++) { act[l] = calloc(sz[l], 4); dz[l] = calloc(sz[l], 4); }
    const int epochs = atoi(argv[3]), repeats = atoi(argv[4]);
    if (epochs < 1 || epochs > n_orders || repeats < 1) { fprintf(stderr, "bad args\n"); return 2; }
    FILE *o = fopen(argv[2], "wb");
    if (!o) { perror(argv[2]); return 1; }
    fwrite(&L, 4, 1, o);
    int32_t *run = calloc(epochs, 4), *test = calloc(epochs, 4);
    for (int r = 0; r < repeats; r++) {
        for (int l = 0; l < L; l++) {
            memcpy(W[l], W0[l], 4 * (size_t)sz[l] * sz[l + 1]);
            memcpy(B[l], B0[l], 4 * (size_t)sz[l + 1]);
        }
        double secs[2] = {0.0, 0.0};
        for (int e = 0; e < epochs; e++) {
            struct timespec t0, t1, c0, c1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
            int c = 0;
            const int32_t *ord = order + (size_t)e * n_train;
            for (int k = 0; k < n_train; k++)
                c += step(xtr + (size_t)ord[k] * sz[0], ytr[ord[k]]);
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            secs[0] += (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
            secs[1] += (c1.tv_sec - c0.tv_sec) + 1e-9 * (c1.tv_nsec - c0.tv_nsec);
            int t = 0;
            for (int i = 0; i < n_test; i++) {
                forward(xte + (size_t)i * sz[0]);
                t += argmax(act[L], sz[L]) == yte[i];
            }
            run[e] = c; test[e] = t;
        }
        fwrite(secs, 8, 2, o);
    }
    fwrite(run, 4, epochs, o);
    fwrite(test, 4, epochs, o);
    for (int l = 0; l < L; l++) {
        fwrite(W[l], 4, (size_t)sz[l] * sz[l + 1], o);
        fwrite(B[l], 4, sz[l + 1], o);
    }
    fclose(o);
    return 0;
}
"""

FLAGS = {"gcc -O2": ["-O2"], "gcc -O3 -march=native": ["-O3", "-march=native"]}


def write_input(path: Path, sizes, data, seed: int, epochs: int) -> None:
    from lnsmadam.golden.baseline import epoch_order, init_mlp

    n, nt = len(data.y_train), len(data.y_test)
    with open(path, "wb") as fh:
        fh.write(struct.pack(f"<{2 + len(sizes) + 3}i", MAGIC, len(sizes) - 1, *sizes, n, nt,
                             epochs))
        fh.write(struct.pack("<f", LR))
        fh.write(np.asarray(data.x_train, "<f4").tobytes())
        fh.write(np.asarray(data.y_train, "<i4").tobytes())
        fh.write(np.asarray(data.x_test, "<f4").tobytes())
        fh.write(np.asarray(data.y_test, "<i4").tobytes())
        for w, b in init_mlp(sizes, seed):
            fh.write(np.asarray(w, "<f4").tobytes() + np.asarray(b, "<f4").tobytes())
        for e in range(epochs):
            fh.write(np.asarray(epoch_order(n, seed, e), "<i4").tobytes())


def read_output(path: Path, sizes, epochs: int, repeats: int) -> dict:
    raw = path.read_bytes()
    off = 4
    both = struct.unpack_from(f"<{2 * repeats}d", raw, off)
    off += 16 * repeats
    run = list(struct.unpack_from(f"<{epochs}i", raw, off))
    test = list(struct.unpack_from(f"<{epochs}i", raw, off + 4 * epochs))
    off += 8 * epochs
    params = []
    for fi, fo in zip(sizes[:-1], sizes[1:]):
        w = np.frombuffer(raw, "<f4", fi * fo, off).reshape(fo, fi)
        off += 4 * fi * fo
        b = np.frombuffer(raw, "<f4", fo, off)
        off += 4 * fo
        params += [w, b]
    return {"seconds": list(both[0::2]), "cpu_seconds": list(both[1::2]), "running_correct": run, "test_correct": test, "params": params}


def compile_c(tmp: Path, flags: list[str]) -> Path:
    src = tmp / "cpuref.c"
    src.write_text(C_SOURCE)
    exe = tmp / ("cpuref" + "".join(flags).replace("=", "_"))
    subprocess.run(["gcc", *flags, "-std=c11", "-D_POSIX_C_SOURCE=199309L", "-o", str(exe),
                    str(src), "-lm"], check=True, capture_output=True, text=True)
    return exe


def run_c(exe: Path, tmp: Path, sizes, epochs: int, repeats: int) -> dict:
    out = tmp / "out.bin"
    subprocess.run([str(exe), str(tmp / f"in_{'-'.join(map(str, sizes))}.bin"), str(out),
                    str(epochs), str(repeats)], check=True, capture_output=True, text=True)
    return read_output(out, sizes, epochs, repeats)


def check_c(res: dict, ref: dict, data, epochs: int) -> dict:
    """The C program against golden's FP32 SGD baseline ``ref`` (``train_float``): weights
    after ``epochs`` within float tolerance, running/test correct counts within one sample.
    Returns the numbers."""
    n, nt = len(data.y_train), len(data.y_test)
    err = max(float(np.max(np.abs(a - b))) for a, b in zip(res["params"], ref["model"].params))
    scale = max(float(np.max(np.abs(b))) for b in ref["model"].params)
    run_ref = [round(m["running_acc"] * n) for m in ref["history"]]
    test_ref = [round(m["test_acc"] * nt) for m in ref["history"]]
    d_run = max(abs(a - b) for a, b in zip(res["running_correct"], run_ref))
    d_test = max(abs(a - b) for a, b in zip(res["test_correct"], test_ref))
    ok = err <= 1e-4 * scale and d_run <= 1 and d_test <= 1
    return {"epochs": epochs, "max_abs_weight_diff": err, "max_abs_weight": scale,
            "running_correct": res["running_correct"], "running_correct_ref": run_ref,
            "test_correct": res["test_correct"], "test_correct_ref": test_ref, "ok": ok}


def time_numpy(sizes, data, seed: int, epochs: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``epochs`` epochs of the C program's equations in NumPy
    float32."""
    from lnsmadam.golden.baseline import epoch_order, init_mlp

    params = [(w.copy(), b.copy()) for w, b in init_mlp(sizes, seed)]
    x = np.asarray(data.x_train, np.float32)
    y = np.asarray(data.y_train)
    lr = np.float32(LR)
    nl = len(params)
    clock = _Clock()
    for e in range(epochs):
        order = epoch_order(len(y), seed, e)
        with clock:
            for i in order:
                _numpy_step(params, x[i], y[i], lr, nl)
    return clock.wall, clock.cpu


def _numpy_step(params, xi, yi, lr, nl) -> None:
    acts = [xi]
    for l, (w, b) in enumerate(params):
        z = w @ acts[-1] + b
        acts.append(np.maximum(z, 0) if l < nl - 1 else z)
    z = acts[-1]
    p = np.exp(z - z.max())
    p /= p.sum()
    p[yi] -= 1
    g = p
    for l in range(nl - 1, -1, -1):
        w, b = params[l]
        gp = (g @ w) * (acts[l] > 0) if l else None
        w -= lr * np.outer(g, acts[l])
        b -= lr * g
        g = gp


class _Clock:
    """Accumulates wall and process CPU seconds over ``with`` blocks (CPU time leaves out
    the time other jobs on a shared machine took the core)."""

    def __init__(self):
        self.wall = self.cpu = 0.0

    def __enter__(self):
        self._t, self._c = time.perf_counter(), time.process_time()

    def __exit__(self, *exc):
        self.wall += time.perf_counter() - self._t
        self.cpu += time.process_time() - self._c


def time_torch(sizes, data, seed: int, epochs: int) -> tuple[float, float] | None:
    """Wall and CPU seconds of ``epochs`` epochs of PyTorch batch-1 SGD (one thread)."""
    try:
        import torch
    except ImportError:
        return None
    from lnsmadam.golden.baseline import epoch_order, init_mlp

    torch.set_num_threads(1)
    layers = []
    for l, (w, b) in enumerate(init_mlp(sizes, seed)):
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if l < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    x = torch.from_numpy(np.array(data.x_train, np.float32))
    y = torch.from_numpy(np.array(data.y_train, np.int64))
    clock = _Clock()
    for e in range(epochs):
        order = epoch_order(len(y), seed, e)
        samples = [(x[i:i + 1], y[i:i + 1]) for i in order]
        with clock:
            for xi, yi in samples:
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(xi), yi).backward()
                opt.step()
    return clock.wall, clock.cpu


def _summary(wall: list[float], cpu: list[float], samples: int) -> dict:
    """µs per sample: CPU time (what one core needs; the table's number) and wall time."""
    us, uw = [1e6 * s / samples for s in cpu], [1e6 * s / samples for s in wall]
    return {"us_per_sample_median": statistics.median(us), "us_per_sample_min": min(us),
            "us_per_sample_runs": us, "wall_us_per_sample_median": statistics.median(uw),
            "wall_us_per_sample_runs": uw}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["64,16,10", "64,64,10"])
    ap.add_argument("--epochs", type=int, default=5, help="epochs per timed repeat (1..30)")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats (1..100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="out/cpu_reference.json")
    args = ap.parse_args(argv)
    if not 1 <= args.epochs <= 30:
        ap.error(f"--epochs must be in 1..30, got {args.epochs}")
    if not 1 <= args.repeats <= 100:
        ap.error(f"--repeats must be in 1..100, got {args.repeats}")
    if shutil.which("gcc") is None:
        ap.error("gcc not found: the C reference is compiled at bench time")
    sizes_list = []
    for text in args.sizes:
        parts = text.split(",")
        if len(parts) != 3 or parts[0] != "64" or parts[2] != "10" or not parts[1].isdigit():
            ap.error(f"--sizes must be 64,H,10, got {text!r}")
        sizes_list.append(tuple(int(p) for p in parts))

    from lnsmadam.golden.baseline import train_float
    from lnsmadam.golden.data import load_digits_split

    data = load_digits_split(0)
    n = len(data.y_train)
    gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout
    out = {"command": " ".join(["./run python bench/cpu_reference.py"] + sys.argv[1:]),
           "machine": {"cpu": _cpu_name(), "python": platform.python_version(),
                       "numpy": np.__version__, "gcc": gcc.splitlines()[0]},
           "job": {"optimizer": "FP32 SGD", "lr": LR, "batch": 1, "train_samples": n,
                   "epochs_per_repeat": args.epochs, "repeats": args.repeats,
                   "seed": args.seed, "order": "golden.shuffle.epoch_order (precomputed)"},
           "results": {}}
    try:
        import torch
        out["machine"]["torch"] = torch.__version__
    except ImportError:
        pass
    with tempfile.TemporaryDirectory(prefix="lnsmadam_cpuref_") as td:
        tmp = Path(td)
        exes = {name: compile_c(tmp, flags) for name, flags in FLAGS.items()}
        for sizes in sizes_list:
            key = "-".join(map(str, sizes))
            write_input(tmp / f"in_{key}.bin", sizes, data, args.seed,
                        max(args.epochs, CHECK_EPOCHS))
            rows = {}
            ref = train_float("sgd", {"lr": LR}, sizes, CHECK_EPOCHS, args.seed, data)
            for name, exe in exes.items():
                chk = check_c(run_c(exe, tmp, sizes, CHECK_EPOCHS, 1), ref, data, CHECK_EPOCHS)
                if not chk["ok"]:
                    print(f"{key} {name}: the C program disagrees with the FP32 baseline: "
                          f"{chk}", file=sys.stderr)
                    return 1
                res = run_c(exe, tmp, sizes, args.epochs, args.repeats)
                rows[f"C, {name}"] = {**_summary(res["seconds"], res["cpu_seconds"],
                                                  args.epochs * n),
                                      "check": chk}
            for name, fn in (("PyTorch batch 1, 1 thread", time_torch),
                             ("NumPy float32", time_numpy)):
                times = []
                for _ in range(min(args.repeats, 3)):
                    t = fn(sizes, data, args.seed, 1)
                    if t is None:
                        break
                    times.append(t)
                if times:
                    rows[name] = _summary([t[0] for t in times], [t[1] for t in times], n)
            out["results"][key] = rows
    print(f"{'implementation':<32} " + " ".join(f"{k + ' us/sample':>22}" for k in out["results"]))
    names = list(next(iter(out["results"].values())))
    for name in names:
        cells = []
        for rows in out["results"].values():
            r = rows.get(name)
            cells.append(f"{r['us_per_sample_median']:10.2f} (min {r['us_per_sample_min']:.2f})"
                         if r else f"{'-':>22}")
        print(f"{name:<32} " + " ".join(f"{c:>22}" for c in cells))
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    raise SystemExit(main())
