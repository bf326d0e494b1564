"""The simulation infrastructure itself (lnsmadam.sim.runner/ports/stream) on toy blocks.

The toys are defined here so that the runner, the stream driver/monitor and the scoreboard
are tested independently of the product blocks in lnsmadam.hw; a deliberately broken toy
checks that a wrong result fails the pytest test (it is never silently skipped).
"""

from __future__ import annotations

import pytest
from amaranth.hdl import Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from lnsmadam.sim.ports import describe_ports, layout_fields, verilog_ports
from lnsmadam.sim.runner import (SIMULATORS, SimulationError, check_simulator,
                                 default_build_root, export_verilog, run_cocotb)

BUILD = default_build_root() / "selftest"


class ToyAccum(wiring.Component):
    """Sums a stream of signed ``x`` per vector (``last`` ends one); one result buffer."""

    def __init__(self, width=6, out_width=9, bug=False):
        self.width, self.out_width, self.bug = width, out_width, bug
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"x": signed(width), "last": 1}))),
            "o": Out(stream.Signature(signed(out_width))),
        })

    def elaborate(self, platform):
        m = Module()
        acc = Signal(signed(self.out_width))
        nxt = acc + self.i.payload.x
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.valid & self.i.ready):
            with m.If(self.i.payload.last):
                m.d.sync += [self.o.payload.eq(nxt + (1 if self.bug else 0)),
                             self.o.valid.eq(1), acc.eq(0)]
            with m.Else():
                m.d.sync += acc.eq(nxt)
        return m


class ToyMul(wiring.Component):
    """Registered LNS multiply, shift = emax, saturate and flush (golden.mul.mul)."""

    def __init__(self, bits=6, frac_bits=2):
        self.bits, self.frac_bits = bits, frac_bits
        super().__init__({"a": In(bits), "b": In(bits), "o": Out(bits)})

    def elaborate(self, platform):
        m = Module()
        eb = self.bits - 1
        emax = (1 << eb) - 1
        ea, eb_ = self.a[:eb], self.b[:eb]
        s = self.a[eb] ^ self.b[eb]
        e = Signal(signed(eb + 3))
        m.d.comb += e.eq(ea + eb_ - emax)
        res = Signal(self.bits)
        with m.If((ea == 0) | (eb_ == 0) | (e < 1)):
            m.d.comb += res.eq(0)
        with m.Elif(e > emax):
            m.d.comb += res.eq(Cat(Signal(eb, init=emax), s))
        with m.Else():
            m.d.comb += res.eq(Cat(e[:eb], s))
        m.d.sync += self.o.eq(res)
        return m


def test_ports_follow_the_verilog(tmp_path):
    d = export_verilog(ToyAccum(), "toy_accum", tmp_path)
    names = [p["name"] for p in d.ports]
    assert names == ["clk", "rst", "i__payload", "i__valid", "i__ready",
                     "o__payload", "o__valid", "o__ready"]
    vp = verilog_ports(d.text, "toy_accum")
    assert {n: v["width"] for n, v in vp.items()} == {p["name"]: p["width"] for p in d.ports}
    payload = next(p for p in d.ports if p["name"] == "i__payload")
    assert payload["fields"] == [
        {"path": "x", "offset": 0, "width": 6, "signed": True},
        {"path": "last", "offset": 6, "width": 1, "signed": False}]
    assert layout_fields(data.ArrayLayout(unsigned(3), 2)) == [
        {"path": "0", "offset": 0, "width": 3, "signed": False},
        {"path": "1", "offset": 3, "width": 3, "signed": False}]
    toy = ToyMul()
    toy._MustUse__silence = True   # described, never elaborated
    assert describe_ports(toy)[0] == {"name": "a", "direction": "input", "width": 6,
                                      "signed": False}


@pytest.mark.parametrize("sim", SIMULATORS)
def test_simulator_is_installed(sim):
    """A missing simulator is an error of the test suite, never a skip."""
    assert check_simulator(sim)


def test_missing_simulator_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))          # no iverilog anywhere
    with pytest.raises(SimulationError, match="iverilog not found"):
        check_simulator("icarus")
    d = export_verilog(ToyMul(), "toy_mul_nosim", tmp_path)
    with pytest.raises(SimulationError, match="iverilog not found"):
        run_cocotb(d, "lnsmadam.sim.cocotb_selftest", sim="icarus", build_root=tmp_path)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_toy_stream_bench(sim):
    d = export_verilog(ToyAccum(), "toy_accum", BUILD)
    run_cocotb(d, "lnsmadam.sim.cocotb_selftest", sim=sim, test_name="stream",
               params={"kind": "toy_accum", "seed": 1, "n_vectors": 60,
                       "valid_prob": 0.6, "ready_prob": 0.5})


def test_toy_pipeline_bench():
    d = export_verilog(ToyMul(), "toy_mul", BUILD)
    run_cocotb(d, "lnsmadam.sim.cocotb_selftest", sim="icarus", test_name="pipe",
               params={"kind": "toy_mul", "seed": 2, "n_vectors": 300, "latency": 1,
                       "bits": 6, "frac_bits": 2})


def test_wrong_result_fails():
    d = export_verilog(ToyAccum(bug=True), "toy_accum_bug", BUILD)
    with pytest.raises(SimulationError, match="mismatch"):
        run_cocotb(d, "lnsmadam.sim.cocotb_selftest", sim="icarus", test_name="bug",
                   params={"kind": "toy_accum", "seed": 1, "n_vectors": 5,
                           "valid_prob": 1.0, "ready_prob": 1.0})
