"""boards/asic: the Liberty reader, the gate-level simulator's toggle counts, the stimulus
packing and the activity -> power model, without any external tool."""

import json

import numpy as np
import pytest
from amaranth.hdl import signed
from amaranth.lib import data

from lnsmadam.boards.asic.flow import Synthesis, combine_power
from lnsmadam.boards.asic.gatesim import (Netlist, count_toggles, pack_streams, simulate,
                                          unpack_streams)
from lnsmadam.boards.asic.liberty import (eval_function, func_inputs, parse_function,
                                          parse_liberty)
from lnsmadam.boards.asic.stimulus import field_values, layout_bits, mac_streams

LIB = """
library (tiny) {
  time_unit : "1ns";
  cell (INV) { area : 2; cell_leakage_power : 0.5;
    pin (A) { direction : input; capacitance : 0.01; }
    pin (Y) { direction : output; function : "A'"; } }
  cell (AND2) { area : 3;
    pin (A) { direction : input; } pin (B) { direction : input; }
    pin (Y) { direction : output; function : "(A B)"; } }
  cell (XOR2) { area : 4;
    pin (A) { direction : input; } pin (B) { direction : input; }
    pin (Y) { direction : output; function : "(A^B)"; } }
  cell (DFF) { area : 8;
    ff (IQ, IQN) { next_state : "D"; clocked_on : "CLK"; }
    pin (CLK) { direction : input; clock : true; }
    pin (D) { direction : input; }
    pin (Q) { direction : output; function : "IQ"; }
    pin (QN) { direction : output; function : "IQN"; } }
}
"""


def test_liberty_cells():
    lib = parse_liberty(LIB)
    assert set(lib.cells) == {"INV", "AND2", "XOR2", "DFF"}
    assert lib.cells["INV"].area == 2 and lib.cells["INV"].leakage == 0.5
    assert lib.cells["INV"].pins["A"].capacitance == 0.01
    assert lib.cells["DFF"].ff == ("IQ", "IQN", "D", "CLK")
    assert lib.cells["AND2"].inputs == ["A", "B"] and lib.cells["AND2"].outputs == ["Y"]


@pytest.mark.parametrize("expr, fn", [
    ("(A B)", lambda a, b, c: a & b),
    ("A+B C", lambda a, b, c: a | (b & c)),           # AND binds tighter than OR
    ("A^B C", lambda a, b, c: (a ^ b) & c),           # XOR binds tighter than AND
    ("!(A&B)|C'", lambda a, b, c: (1 - (a & b)) | (1 - c)),
    ("(!((S A) + (!S B)))", lambda a, b, s: 1 - ((s & a) | ((1 - s) & b))),
    ("A*1+0", lambda a, b, c: a),
])
def test_function_parser(expr, fn):
    tree = parse_function(expr)
    names = func_inputs(tree)
    for v in range(8):
        env = {"A": v & 1, "B": v >> 1 & 1, "C": v >> 2 & 1, "S": v >> 2 & 1}
        args = [env["A"], env["B"], env["S"] if "S" in names else env["C"]]
        assert eval_function(tree, env) == fn(*args), (expr, v)


def test_function_parser_rejects():
    for bad in ("(A B", "A +", "A $ B"):
        with pytest.raises(ValueError):
            parse_function(bad)


def test_count_toggles_known_waveform():
    assert count_toggles([0, 1, 1, 0, 1, 1, 1, 0]) == (4, 5)
    assert count_toggles([1] * 10) == (0, 10)
    assert count_toggles([]) == (0, 0)


def test_pack_roundtrip():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (3, 5, 128)).astype(np.uint8)
    assert np.array_equal(unpack_streams(pack_streams(bits)), bits)
    with pytest.raises(ValueError, match="multiple of 64"):
        pack_streams(np.zeros((2, 63)))


def _tiny_netlist():
    """x -> INV -> n -> DFF -> q; y = AND(q, x); z = XOR(q, qn) (always 1)."""
    cells = {
        "u1": {"type": "INV", "connections": {"A": [2], "Y": [3]}},
        "u2": {"type": "DFF", "connections": {"CLK": [4], "D": [3], "Q": [5], "QN": [8]}},
        "u3": {"type": "AND2", "connections": {"A": [5], "B": [2], "Y": [6]}},
        "u4": {"type": "XOR2", "connections": {"A": [5], "B": [8], "Y": [7]}},
    }
    ports = {"x": {"direction": "input", "bits": [2]}, "clk": {"direction": "input", "bits": [4]},
             "y": {"direction": "output", "bits": [6]}, "z": {"direction": "output", "bits": [7]}}
    return {"modules": {"top": {"ports": ports, "cells": cells, "netnames": {}}}}


def test_gatesim_known_waveform():
    lib = parse_liberty(LIB)
    nl = Netlist(_tiny_netlist(), lib)
    wave = np.array([0, 1, 1, 0, 1, 0, 0, 0, 1, 1])
    S = 64
    x = np.repeat(wave[:, None, None], S, 2).astype(np.uint8)
    x[:, 0, 1] = 0                                     # stream 1: x held low
    act, outs = simulate(nl, {"x": x}, ["y", "z"], warmup=1)
    n = (~wave.astype(bool)).astype(int)               # the inverter
    q = np.concatenate([[0], n[:-1]])                  # the flip-flop, starting at 0
    y = q & wave
    assert np.array_equal(outs["y"][:, 0, 0], y)
    assert np.all(outs["z"][:, 0, :] == 1)
    # counted from cycle 1 on, summed over the streams: stream 0 follows the waveform,
    # stream 1 has x = 0 (n = 1 and q = 1 after the first edge); the other 62 copy stream 0
    t = lambda w: count_toggles(w)[0]                  # noqa: E731
    assert act.cycles == len(wave) - 1 and act.streams == S
    assert act.toggles[2] == 63 * t(wave)
    assert act.toggles[3] == 63 * t(n)
    assert act.toggles[5] == 63 * t(q) + t([0] + [1] * 9)
    assert act.toggles[6] == 63 * t(y)
    assert act.toggles[7] == 0
    assert act.high[7] == (len(wave) - 1) * S
    assert act.rate([7])[0] == 0 and act.duty([7])[0] == 1


def test_gatesim_refuses():
    lib = parse_liberty(LIB)
    nl = _tiny_netlist()
    nl["modules"]["top"]["cells"]["u9"] = {"type": "NOPE", "connections": {}}
    with pytest.raises(ValueError, match="not in library"):
        Netlist(nl, lib)
    loop = _tiny_netlist()
    loop["modules"]["top"]["cells"]["u1"]["connections"]["A"] = [6]
    loop["modules"]["top"]["cells"]["u3"]["connections"]["B"] = [3]
    with pytest.raises(ValueError, match="loop"):
        Netlist(loop, lib)


def test_layout_bits_roundtrip():
    lay = data.StructLayout({"a": data.ArrayLayout(8, 3), "s": signed(5), "f": 1})
    rng = np.random.default_rng(1)
    C, S = 4, 64
    a = rng.integers(0, 256, (C, S, 3))
    s = rng.integers(-16, 16, (C, S))
    f = rng.integers(0, 2, (C, S))
    bits = layout_bits(lay, {"a": a, "s": s, "f": f}, (C, S))
    assert bits.shape == (C, lay.size, S)
    assert np.array_equal(field_values(lay, bits, "s"), s)
    assert np.array_equal(field_values(lay, bits, "f"), f)
    word = field_values(lay, bits, "a")
    assert np.array_equal(word, a[..., 0] | a[..., 1] << 8 | a[..., 2] << 16)


def test_mac_streams_deal_whole_vectors():
    lay = data.StructLayout({"a": data.ArrayLayout(8, 2), "b": data.ArrayLayout(8, 2),
                             "first": 1, "last": 1})
    vectors = [(np.arange(k) + 1, np.arange(k) + 2) for k in (3, 1, 4, 5, 2)]
    st = mac_streams(vectors, 2, lay, streams=64, cycles=6)
    # 5 cycles per stream after reset: vectors of 2, 1, 2 beats fit stream 0, then 3 + 1
    assert st.items[0] == [0, 1, 2] and st.items[1] == [3, 4] and st.items[2] == []
    assert st.ops[:, 0].tolist() == [0, 2, 1, 1, 2, 2]
    assert st.slots[:, 0].tolist() == [0, 2, 2, 2, 2, 2]
    first = field_values(lay, st.inputs["i_stream__payload"], "first")[:, 0]
    last = field_values(lay, st.inputs["i_stream__payload"], "last")[:, 0]
    assert first.tolist() == [0, 1, 0, 1, 1, 0] and last.tolist() == [0, 0, 1, 1, 0, 1]
    assert st.inputs["rst"][:, 0, 0].tolist() == [1, 0, 0, 0, 0, 0]
    # a vector that does not fit is passed over for a later one that does
    st = mac_streams([(np.ones(k), np.ones(k)) for k in (4, 8, 2, 6)], 2, lay, 64, 6)
    assert st.items[0] == [0, 2] and st.items[1] == [1] and st.items[2] == [3]


def test_activity_to_power_is_linear_per_instance(tmp_path):
    (tmp_path / "cells.lib").write_text(LIB)
    net = _tiny_netlist()
    syn = Synthesis(tmp_path, None, 10.0, {}, 0.0, 0.0, 4, 1, 0.0, net)
    names = ["u1", "u2", "u3", "u4"]
    p0 = np.array([[0, 0, 1e-9], [5e-6, 0, 2e-9], [0, 0, 1e-9], [0, 0, 1e-9]])
    p1 = p0 + np.array([[2e-6, 1e-6, 0], [3e-6, 4e-6, 0], [1e-6, 1e-6, 0], [1e-6, 2e-6, 0]])
    alpha = {"u1": 0.5, "u2": 0.25, "u3": 0.0, "u4": 1.0}
    res = combine_power(syn, {"names": names, "p0": p0, "p1": p1}, alpha)
    want = p0 + np.array([alpha[n] for n in names])[:, None] * (p1 - p0)
    assert res["internal_w"] == pytest.approx(want[:, 0].sum())
    assert res["switching_w"] == pytest.approx(want[:, 1].sum())
    assert res["leakage_w"] == pytest.approx(5e-9)
    assert res["flop_clock_pin_w"] == pytest.approx(5e-6)      # the DFF's P(0) internal
    assert res["flops_w"] + res["combinational_w"] == pytest.approx(res["total_w"])
    with pytest.raises(ValueError, match="no activity"):
        combine_power(syn, {"names": names, "p0": p0, "p1": p1}, {"u1": 0.1})
    assert json.dumps(res)
