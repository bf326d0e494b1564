"""bench/cpu_reference.py and bench/pipelined_accuracy.py: the C reference computes what the
FP32 SGD baseline computes (so its speed is that of a correct program), and the accuracy
summary pairs seeds the way the results page says. No speed or accuracy is asserted."""
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from lnsmadam.golden.baseline import train_float
from lnsmadam.golden.data import load_digits_split


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_c_program_matches_the_fp32_sgd_baseline(bench_module, tmp_path):
    mod = bench_module("cpu_reference")
    d = load_digits_split(0)
    data = SimpleNamespace(x_train=d.x_train[:200], y_train=d.y_train[:200],
                           x_test=d.x_test[:50], y_test=d.y_test[:50])
    sizes = (64, 5, 4, 10)                     # two hidden layers: the backward mask twice
    exe = mod.compile_c(tmp_path, ["-O2"])
    mod.write_input(tmp_path / "in_64-5-4-10.bin", sizes, data, 3, 2)
    res = mod.run_c(exe, tmp_path, sizes, 2, 2)
    assert len(res["seconds"]) == 2 and all(s > 0 for s in res["seconds"])
    ref = train_float("sgd", {"lr": mod.LR}, sizes, 2, 3, data)
    chk = mod.check_c(res, ref, data, 2)
    assert chk["ok"], chk
    assert chk["max_abs_weight_diff"] < 1e-5
    assert res["running_correct"] == chk["running_correct_ref"]
    wall, cpu = mod.time_numpy(sizes[:1] + sizes[-1:], data, 0, 1)
    assert wall > 0 and cpu > 0
    assert len(res["cpu_seconds"]) == 2 and all(s > 0 for s in res["cpu_seconds"])


def test_pipelined_accuracy_summary_pairs_seeds(bench_module):
    mod = bench_module("pipelined_accuracy")

    def r(variant, seed, acc):
        return {"sizes": "64-16-10", "variant": variant, "seed": seed, "epochs": 30,
                "history": [{"test_acc": acc}]}
    runs = [r("exact", 0, 95.0), r("exact", 1, 94.0), r("pipelined", 0, 96.0),
            r("pipelined", 1, 93.0), r("adam1e-3", 0, 97.0)]
    s = mod.summarise(runs)["64-16-10, 30 epochs"]
    assert s["exact"]["median"] == 94.5 and s["pipelined"]["min"] == 93.0
    d = s["pipelined - exact"]
    assert d["per_seed"] == {"0": 1.0, "1": -1.0} and d["mean"] == 0.0
    assert s["exact - adam1e-3"]["per_seed"] == {"0": -2.0}
    assert "pipelined - adam5e-4" not in s
    assert np.isclose(s["pipelined - adam1e-3"]["median"], -1.0)
