"""bench/depth.py: its tuning protocol (grid, extension at an end, confirmation seeds).

No accuracy is asserted (the bench measures it): the protocol runs on made-up results, and
one tiny real run checks that a run record has the shape the summary reads.
"""

import pytest


def _done(mod, label, depth, accs, epochs=30):
    """Finished runs ``{(lr, seed): final test accuracy}`` of one entry at one depth."""
    return {mod._key(label, depth, lr, s, epochs): {"final_test_acc": a, "final_train_acc": a,
                                                    "finite": True}
            for (lr, s), a in accs.items()}


def _grid(values, seeds, f):
    return {(v, s): f(v, s) for v in values for s in seeds}


def test_plan_starts_with_the_grid_on_the_tuning_seeds(bench_module):
    mod = bench_module("depth")
    e = mod.BY_LABEL["adam"]
    tasks, info = mod.plan(e, 8, 30, {})
    assert sorted(tasks) == sorted(("adam", 8, v, s, 30) for v in e.grid for s in (0, 1, 2))
    assert info == {}


def test_plan_confirms_an_inner_best_on_seeds_3_and_4(bench_module):
    mod = bench_module("depth")
    e = mod.BY_LABEL["madam"]                               # grid 0.003, 0.01, 0.03
    done = _done(mod, "madam", 4, _grid(e.grid, (0, 1, 2), lambda v, s: 0.9 if v == 0.01 else 0.5))
    tasks, _ = mod.plan(e, 4, 30, done)
    assert tasks == [("madam", 4, 0.01, 3, 30), ("madam", 4, 0.01, 4, 30)]
    done.update(_done(mod, "madam", 4, {(0.01, 3): 0.8, (0.01, 4): 0.95}))
    tasks, info = mod.plan(e, 4, 30, done)
    assert tasks == [] and info["lr"] == 0.01 and set(info["explored"]) == {"0.003", "0.01", "0.03"}
    row, = mod.summarise([e], {4: 30}, done)
    assert row["test_accs"] == pytest.approx([90, 90, 90, 80, 95])
    assert (row["median"], row["min"], row["max"], row["at_chance"]) == (90, 80, 95, 0)


def test_plan_extends_past_an_end_at_most_twice(bench_module):
    mod = bench_module("depth")
    e = mod.BY_LABEL["sgd"]                                 # grid 0.01, 0.03, 0.1
    smaller_is_better = lambda v, s: 1 - v                  # noqa: E731
    done = _done(mod, "sgd", 16, _grid(e.grid, (0, 1, 2), smaller_is_better))
    tasks, _ = mod.plan(e, 16, 30, done)
    assert sorted(tasks) == [("sgd", 16, 0.003, s, 30) for s in (0, 1, 2)]
    done.update(_done(mod, "sgd", 16, _grid([0.003], (0, 1, 2), smaller_is_better)))
    tasks, _ = mod.plan(e, 16, 30, done)
    assert sorted(tasks) == [("sgd", 16, 0.001, s, 30) for s in (0, 1, 2)]
    done.update(_done(mod, "sgd", 16, _grid([0.001], (0, 1, 2), smaller_is_better)))
    tasks, info = mod.plan(e, 16, 30, done)             # two extensions made: confirm
    assert sorted(tasks) == [("sgd", 16, 0.001, s, 30) for s in (3, 4)]


def test_plan_ties_and_the_integer_floor(bench_module):
    mod = bench_module("depth")
    e = mod.BY_LABEL["lns-madam"]                           # lr_step 1, 2, 4: cannot go below 1
    done = _done(mod, "lns-madam", 2, _grid(e.grid, (0, 1, 2), lambda v, s: 0.9))
    tasks, _ = mod.plan(e, 2, 30, done)                     # a tie goes to the smaller lr
    assert tasks == [("lns-madam", 2, 1, 3, 30), ("lns-madam", 2, 1, 4, 30)]
    done.update(_done(mod, "lns-madam", 2, {(1, 3): 0.05, (1, 4): 0.9}))
    tasks, info = mod.plan(e, 2, 30, done)
    assert tasks == [] and info["at_ladder_end"]
    row, = mod.summarise([e], {2: 30}, done)
    assert row["at_chance"] == 1 and row["lr_name"] == "lr_step"


def test_epochs_per_depth(bench_module):
    mod = bench_module("depth")
    assert mod.parse_epochs(None, [2, 16]) == {2: 15, 16: 15}
    assert mod.parse_epochs(["20"], [2, 16]) == {2: 20, 16: 20}
    assert mod.parse_epochs(["30", "16:10"], [2, 8, 16]) == {2: 30, 8: 30, 16: 10}
    for bad, msg in ((["x"], "E or D:E"), (["0"], ">= 1"), (["4:5"], "not in --depths")):
        with pytest.raises(ValueError, match=msg):
            mod.parse_epochs(bad, [2, 16])


def test_grid_must_be_consecutive_ladder_values(bench_module):
    mod = bench_module("depth")
    with pytest.raises(ValueError, match="consecutive"):
        mod.Entry("x", "sgd", mod.HALF_DECADES, (0.01, 0.1, 0.3))


@pytest.mark.parametrize("label", ["sgd-he", "lns-madam"])
def test_run_one_record(bench_module, label):
    mod = bench_module("depth")
    r = mod.run_one((label, 2, mod.BY_LABEL[label].grid[0], 0, 1))
    assert r["label"] == label and r["depth"] == 2 and r["epochs"] == 1 and r["finite"]
    assert [m["epoch"] for m in r["history"]] == [1]
    assert r["final_test_acc"] == r["history"][-1]["test_acc"]
    assert mod.run_key(r) == (label, 2, float(mod.BY_LABEL[label].grid[0]), 0, 1)
