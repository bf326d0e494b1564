"""Transports and the Verilator simulation twin (lnsmadam.host.transport, lnsmadam.sim.twin,
lnsmadam.host.faults).

The twin is exercised on a small Amaranth UART echo top written here (one Verilator build,
cached under the simulation build root).
"""

import os
import time

import pytest
from amaranth import C, Cat, Module, Signal
from amaranth.back import verilog
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from lnsmadam.host.faults import FaultyTransport
from lnsmadam.host.transport import (CallbackTransport, LinkError, SerialTransport,
                                     pipe_pair)
from lnsmadam.sim.twin import TwinTransport, build_twin

DIVISOR = 8


class EchoUART(wiring.Component):
    """8N1 UART echo: every byte ``b`` received on ``uart_rx`` is sent back as
    ``(b + add) & 0xFF`` on ``uart_tx`` (``divisor`` clocks per bit, FIFO of ``depth``)."""

    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)

    def __init__(self, divisor: int, add: int = 1, depth: int = 64):
        self.divisor, self.add, self.depth = divisor, add, depth
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=8, depth=self.depth)
        # receiver: 2-FF synchroniser, start bit checked at its middle, bits sampled mid-bit
        s1, s2 = Signal(init=1), Signal(init=1)
        m.d.sync += [s1.eq(self.uart_rx), s2.eq(s1)]
        cnt, bit, sh = Signal(range(d + 1)), Signal(range(9)), Signal(8)
        m.d.sync += q.w_en.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~s2):
                    m.d.sync += cnt.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += cnt.eq(cnt - 1)
                with m.If(cnt == 0):
                    m.d.sync += [cnt.eq(d - 1), bit.eq(0)]
                    with m.If(s2):
                        m.next = "IDLE"   # a glitch, not a start bit
                    with m.Else():
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += cnt.eq(cnt - 1)
                with m.If(cnt == 0):
                    m.d.sync += [sh.eq(Cat(sh[1:], s2)), cnt.eq(d - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += cnt.eq(cnt - 1)
                with m.If(cnt == 0):
                    with m.If(s2):
                        m.d.sync += [q.w_data.eq(sh + self.add), q.w_en.eq(1)]
                    m.next = "IDLE"
        # transmitter: 10-bit shift register, LSB (start bit) first
        tsh, tcnt, tbits = Signal(10, init=0x3FF), Signal(range(d + 1)), Signal(range(11))
        m.d.comb += [self.uart_tx.eq(tsh[0]), q.r_en.eq(0)]
        with m.If(tbits == 0):
            with m.If(q.r_rdy):
                m.d.comb += q.r_en.eq(1)
                m.d.sync += [tsh.eq(Cat(C(0, 1), q.r_data, C(1, 1))), tbits.eq(10),
                             tcnt.eq(d - 1)]
        with m.Else():
            m.d.sync += tcnt.eq(tcnt - 1)
            with m.If(tcnt == 0):
                m.d.sync += [tsh.eq(Cat(tsh[1:], C(1, 1))), tbits.eq(tbits - 1),
                             tcnt.eq(d - 1)]
        return m


@pytest.fixture(scope="module")
def echo_verilog():
    return verilog.convert(EchoUART(DIVISOR), name="top", emit_src=False)


def read_exactly(tr, n, timeout=10.0):
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += tr.read(n - len(got), deadline - time.monotonic())
    return got


# --- twin ----------------------------------------------------------------------------

def test_twin_round_trip_and_counters(echo_verilog):
    with TwinTransport(echo_verilog, divisor=DIVISOR) as tw:
        data = os.urandom(3000)
        tw.write(data)
        got = read_exactly(tw, len(data))
        assert got == bytes((b + 1) & 0xFF for b in data)
        c = tw.counters()
        assert c["rx_bytes"] == c["tx_bytes"] == len(data)
        assert c["frame_errors"] == 0
        # one byte is 10 bits of DIVISOR clocks; the echo overlaps both directions
        assert 10 * DIVISOR * len(data) <= c["cycles"]
        assert tw.read(10, 0.05) == b""
        before = tw.cycles
        assert tw.run_cycles(5000) >= before + 5000


def test_twin_idles_without_work(echo_verilog):
    with TwinTransport(echo_verilog, divisor=DIVISOR, linger=2000, free_run=False) as tw:
        assert not tw.has_busy
        tw.write(b"\x10\x20")
        assert read_exactly(tw, 2) == b"\x11\x21"
        time.sleep(0.05)
        c1 = tw.cycles
        time.sleep(0.2)
        assert tw.cycles == c1   # nothing to do: the model is not clocked
        # reset linger + the echo + linger, each rounded up to 1024-cycle batches
        assert c1 < 2048 + 4 * 10 * DIVISOR + 2000 + 2 * 1024


def test_twin_reset_and_build_cache(echo_verilog):
    first = build_twin(echo_verilog)
    t0 = time.monotonic()
    assert build_twin(echo_verilog) == first   # cached: no rebuild
    assert time.monotonic() - t0 < 5
    with TwinTransport.from_component(EchoUART(DIVISOR), divisor=DIVISOR) as tw:
        assert tw.binary == first and tw.free_run     # same Verilog; no busy port
        tw.reset(32)
        tw.write(b"abc")
        assert read_exactly(tw, 3) == b"bcd"


def test_twin_process_death_is_a_link_error(echo_verilog):
    tw = TwinTransport(echo_verilog, divisor=DIVISOR)
    try:
        tw._proc.kill()
        tw._proc.wait()
        with pytest.raises(LinkError, match="twin process of 'top' exited"):
            for _ in range(50):
                tw.write(b"x")
                tw.read(1, 0.02)
    finally:
        tw.close()


class TxOnly(wiring.Component):
    uart_tx: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.uart_tx.eq(~self.uart_tx)
        return m


def test_twin_rejects_top_without_uart_ports():
    text = verilog.convert(TxOnly(), name="top", emit_src=False)
    with pytest.raises(ValueError, match="uart_rx"):
        build_twin(text)


def test_twin_bad_divisor(echo_verilog):
    with pytest.raises(ValueError, match="divisor"):
        TwinTransport(echo_verilog, divisor=2)


# --- transports --------------------------------------------------------------------

def test_pipe_pair_and_callback():
    a, b = pipe_pair()
    with a, b:
        a.write(b"hello")
        assert b.read(3, 1.0) == b"hel"
        assert b.read(10, 1.0) == b"lo"
        assert b.read(10, 0.01) == b""
    cb = CallbackTransport(lambda data: data[::-1])
    with cb:
        cb.write(b"abc")
        assert cb.read(10, 0.1) == b"cba"


def test_serial_missing_port():
    with pytest.raises(LinkError, match="/dev/does-not-exist") as info:
        SerialTransport("/dev/does-not-exist", 115200)
    assert "\n" not in str(info.value)


def test_serial_over_pty():
    import pty
    master, slave = pty.openpty()
    import tty
    tty.setraw(master)
    try:
        with SerialTransport(os.ttyname(slave), 115200) as ser:
            ser.write(b"\xc0ping\xc0")
            got = b""
            deadline = time.monotonic() + 2
            while len(got) < 6 and time.monotonic() < deadline:
                got += os.read(master, 100)
            assert got == b"\xc0ping\xc0"
            os.write(master, b"pong")
            assert read_exactly(ser, 4, 2.0) == b"pong"
            assert ser.read(4, 0.05) == b""
    finally:
        os.close(master)
        os.close(slave)


def test_faulty_transport_counts_and_determinism():
    def run(seed):
        sink = []
        ft = FaultyTransport(CallbackTransport(lambda d: sink.append(d) or d), seed=seed,
                             p_flip=0.05, p_drop=0.05, p_insert=0.05, p_truncate=0.2, rx=True)
        for i in range(200):
            ft.write(bytes(range(i % 50 + 1)))
            ft.read(1000, 0)
        return ft.counts, b"".join(sink)

    counts, out = run(1)
    assert run(1) == (counts, out)
    assert all(counts[k] > 0 for k in counts), counts
    off = FaultyTransport(CallbackTransport(lambda d: d), p_flip=1.0)
    off.enabled = False
    off.write(b"\x00")
    assert off.read(1, 0.1) == b"\x00" and off.injected == 0
    with pytest.raises(ValueError, match="p_drop"):
        FaultyTransport(CallbackTransport(lambda d: d), p_drop=1.5)


def test_faulty_transport_script_forces_each_kind():
    script = {("tx", 0): "flip", ("tx", 1): "drop", ("tx", 2): "insert",
              ("tx", 3): "truncate", ("rx", 1): "drop", ("rx", 2): "truncate"}
    sink = []
    ft = FaultyTransport(CallbackTransport(lambda d: sink.append(d) or d), seed=4,
                         rx=True, script=script)
    frame = bytes(range(1, 33))
    got = []
    for _ in range(5):
        ft.write(frame)
        got.append(ft.read(1000, 0))
    assert [len(x) for x in sink[:3]] == [32, 31, 33]
    assert sum(a != b for a, b in zip(sink[0], frame)) == 1          # one byte differs
    assert bin(next(a ^ b for a, b in zip(sink[0], frame) if a != b)).count("1") == 1
    assert len(sink[3]) < 32 and frame.startswith(sink[3])            # a prefix
    assert sink[4] == frame                                           # unscripted: clean
    assert got[0] == sink[0] and len(got[1]) == 31 - 1
    assert len(got[2]) < 33 and sink[2].startswith(got[2]) and got[3] == sink[3]
    assert ft.counts == {"tx_flip": 1, "tx_drop": 1, "tx_insert": 1, "tx_truncate": 1,
                         "rx_flip": 0, "rx_drop": 1, "rx_insert": 0, "rx_truncate": 1}
    with pytest.raises(ValueError, match="script kind"):
        FaultyTransport(CallbackTransport(lambda d: d), script={("tx", 0): "smear"})
    with pytest.raises(ValueError, match="script keys"):
        FaultyTransport(CallbackTransport(lambda d: d), script={("up", 0): "flip"})


def test_soc_verilog_is_elaborated_once_per_design(tmp_path, monkeypatch):
    """open_twin's Verilog cache: the same configuration is a file read (no elaboration),
    another configuration or another source of hw/ or golden/ is a new key."""
    import amaranth.back.verilog as av

    from lnsmadam.sim import twin

    calls = []
    real = av.convert
    monkeypatch.setattr(av, "convert", lambda *a, **k: calls.append(1) or real(*a, **k))
    small = twin.twin_config(sizes=(6, 4, 3), n_records=8)
    text = twin.soc_verilog(small, tmp_path)
    assert "module top" in text and calls == [1]
    assert twin.soc_verilog(small, tmp_path) == text and calls == [1]
    other = twin.twin_config(sizes=(6, 4, 3), n_records=8, lanes=2)
    assert twin.soc_verilog(other, tmp_path) != text and calls == [1, 1]
    assert len(list((tmp_path / "twin-verilog").glob("soc-*.v"))) == 2
    monkeypatch.setattr(twin, "_design_digest", lambda: "an edited engine")
    assert twin.soc_verilog(small, tmp_path) == text and calls == [1, 1, 1]
    assert len(list((tmp_path / "twin-verilog").glob("soc-*.v"))) == 3
    with pytest.raises(TypeError, match="cfg must be a SoCConfig, got dict"):
        twin.soc_verilog(small.to_dict(), tmp_path)
