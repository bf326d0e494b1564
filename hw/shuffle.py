"""The per-epoch sample order on device (twin of :mod:`lnsmadam.golden.shuffle`).

:class:`Shuffler` writes :func:`lnsmadam.golden.shuffle.epoch_order` ``(n, seed, epoch)``
into its own order memory and then serves it on a read port. The datapath is the xorshift32
register ``r``, one shift-add multiplier (a 33-bit adder, the 32-bit accumulator ``P`` and
a ``W``-bit multiplier register ``M``, ``W = bits(n_max)``) and the element counters; the
memory has one read and one write port. No DSP, no ``*``.

Schedule (``x0 = seed ^ ((epoch ^ 0xFFFF) << 16)`` is loaded in the ``start`` cycle):

* seeding, 67 cycles: twice ``r = xorshift32(r)`` (1 cycle) and
  ``r = r * 0x9E3779B9 mod 2**32`` (32 shift-add cycles; the constant is the multiplicand
  and the multiplier bits are shifted out of ``r`` while the low product bits are shifted
  in), then the first generator step. The zero fix (``x0 = 0 -> 1``) is applied at the
  first step as ``xorshift32(r) | (xorshift32(1) if r == 0)``: 0 stays 0 through the mix.
* per element ``i``, ``W + 3`` cycles: ``W`` shift-add cycles over the bits of ``i + 1``
  (in ``M``) leave ``floor(r * (i+1) / 2**W)`` in ``P``, whose top ``W`` bits are ``j``;
  read ``a[j]`` (and step the generator); write ``a[i] = a[j]``; write ``a[j] = i``.

So a shuffle keeps ``busy`` high for ``67 + n * (W + 3)`` cycles (``n = 1437``,
``W = 11``: 14 cycles per element, 20,185 in all, 1 ms at 20 MHz), and not at all for
``n = 0``.

Size (Yosys 0.70 ``synth_ice40``, ``bench/area.py``'s ``synth``): ``n_max = 1437``:
329 LUT4, 133 FF, 44 SB_CARRY, 5 SB_RAM40_4K, no DSP (also with ``-dsp``);
``n_max = 1024``: 296 LUT4, 3 EBR; ``n_max = 64``: 265 LUT4, 109 FF, 1 EBR. The xorshift32
step is about 60 of the LUT4 (measured by removing it).

Ports
-----
start : In(1)
    Pulse: latch ``n``, ``seed``, ``epoch`` and (re)start, also while busy.
n : In(range(n_max + 1))
    Number of samples, ``0 .. n_max`` (larger values are not supported).
seed : In(32), epoch : In(16)
    Sampled in the ``start`` cycle.
busy : Out(1)
    High from the cycle after ``start`` until the order is complete (never for ``n = 0``).
done : Out(1)
    High for one cycle, the first one with ``busy`` low after a completed shuffle.
rd_addr : In(range(n_max)), rd_data : Out(bits(n_max - 1))
    Order read port: ``rd_data`` is ``order[rd_addr]`` of the previous cycle (one cycle
    synchronous read latency), valid when ``busy`` was low in that cycle. Entries at and
    above ``n`` hold stale data.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import enum, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.format import check_int, check_type
from ..golden.shuffle import EPOCH_BITS, MIX_MUL, MIX_ROUNDS, N_MAX, SEED_BITS
from ..golden.shuffle import xorshift32 as xorshift32_int
from .util.registered_read import RegisteredRead

__all__ = ["Shuffler", "xorshift32"]


def xorshift32(r):
    """One xorshift32 (13, 17, 5) step of a 32-bit value (pure wiring and XORs)."""
    r = r ^ (r << 13)[:32]
    r = r ^ (r >> 17)
    return r ^ (r << 5)[:32]


class _S(enum.Enum, shape=3):
    IDLE = 0
    XS = 1      # one generator step; set up the next multiply
    MULC = 2    # r * MIX_MUL, 32 shift-add steps (seeding)
    MUL = 3     # r * (i + 1), W shift-add steps
    RD = 4      # read a[j]; generator step for the next element
    WR1 = 5     # a[i] = a[j]
    WR2 = 6     # a[j] = i; next element


class Shuffler(wiring.Component):
    """Generates the epoch order of ``n <= n_max`` samples into an on-chip memory.

    Bit-exact with :func:`lnsmadam.golden.shuffle.epoch_order`.

    Parameters
    ----------
    n_max : int in [1, 65535]
        Depth of the order memory (``bits(n_max - 1)`` bits wide, at least 1).
    fast : bool
        ``r * (i + 1)`` by a multiplier (one cycle; DSP blocks on ECP5) instead of the
        shift-add loop: ``4`` cycles per element instead of ``bits(n_max) + 3``.

    Members
    -------
    start : In(1)
        Pulse: latch ``n``, ``seed``, ``epoch`` and (re)start, also while busy.
    n : In(range(n_max + 1)); seed : In(32); epoch : In(16)
        The shuffle's arguments, sampled in the ``start`` cycle.
    busy, done : Out(1)
        Shuffling; the one cycle after a completed shuffle.
    rd_addr : In(range(n_max)); rd_data : Out(bits(n_max - 1))
        The order's read port (one cycle of latency; module docstring).

    Latency
    -------
    ``busy`` for ``67 + n * (bits(n_max) + 3)`` cycles, ``67 + 4 * n`` when ``fast``
    (:meth:`cycles`; 0 for ``n = 0``).

    Throughput
    ----------
    One shuffle at a time; the order can be read while idle.

    Notes
    -----
    The module docstring gives the schedule and the size.
    """

    def __init__(self, n_max: int, fast: bool = False):
        self.fast = check_type("fast", fast, bool)
        self.n_max = check_int("n_max", n_max, 1, N_MAX)
        self.mul_bits = self.n_max.bit_length()
        self.data_bits = max(1, (self.n_max - 1).bit_length())
        super().__init__({
            "start": In(1), "n": In(range(self.n_max + 1)),
            "seed": In(SEED_BITS), "epoch": In(EPOCH_BITS),
            "busy": Out(1), "done": Out(1),
            "rd_addr": In(range(self.n_max)), "rd_data": Out(self.data_bits),
        })

    @property
    def cycles_per_element(self) -> int:
        """``bits(n_max) + 3`` (the shift-add multiply, one read, two writes), or 4 with
        ``fast``."""
        return 4 if self.fast else self.mul_bits + 3

    def cycles(self, n: int) -> int:
        """Cycles from ``start`` until ``busy`` falls (0 for ``n = 0``)."""
        return MIX_ROUNDS * 33 + 1 + n * self.cycles_per_element if n else 0

    def elaborate(self, platform):
        m = Module()
        W = self.mul_bits
        # no read of the shuffle meets a write to its address, so the collision behaviour is
        # free to choose: a RegisteredRead (a transparent port cost 17 more logic cells at
        # n_max = 1797)
        mem = m.submodules.order = Memory(shape=unsigned(self.data_bits), depth=self.n_max,
                                          init=[], attrs={"no_rw_check": 1})
        wp = mem.write_port()
        rp = RegisteredRead(m, mem, "order")

        state = Signal(_S)
        r = Signal(32)
        acc = Signal(32)                      # P: the product's high part so far
        mreg = Signal(W)                      # multiplier i + 1, shifted out LSB first
        k = Signal(5)
        rnd = Signal(range(MIX_ROUNDS + 1))
        i = Signal(range(self.n_max))
        i1 = Signal(range(self.n_max + 1))    # i + 1
        n = Signal(range(self.n_max + 1))

        # r * (i+1): multiplicand r, multiplier bits from mreg. r * MIX_MUL: the roles swap
        # (constant multiplicand, multiplier bits from r, low product bits shifted into r's
        # top), so the product lands in r and the seeding needs no 32-bit register of its own
        mulc = state == _S.MULC
        bit = Mux(mulc, r[0], mreg[0])
        total = Signal(33)
        m.d.comb += total.eq(acc + Mux(bit, Mux(mulc, MIX_MUL, r), 0))
        j = acc[32 - W:]
        i1_next = i1 + 1
        # x0 == 0 survives the mix as 0, so the zero fix can wait for the first generator
        # step and test r (32 inputs) instead of seed ^ epoch (48): xorshift32(0) | xs1
        xs1 = xorshift32_int(1)
        r_step = xorshift32(r) | Mux(r == 0, xs1, 0)

        m.d.comb += [self.busy.eq(state != _S.IDLE), self.rd_data.eq(rp.data),
                     rp.addr.eq(Mux(state == _S.RD, j, self.rd_addr)),
                     wp.data.eq(i)]
        m.d.sync += self.done.eq(0)

        with m.Switch(state):
            with m.Case(_S.XS):
                m.d.sync += [r.eq(r_step), acc.eq(0), k.eq(0), rnd.eq(rnd + 1),
                             state.eq(Mux(rnd == MIX_ROUNDS, _S.MUL, _S.MULC))]
            with m.Case(_S.MULC):
                m.d.sync += [acc.eq(total[1:]), r.eq(Cat(r[1:], total[0])), k.eq(k + 1)]
                with m.If(k == 31):
                    m.d.sync += state.eq(_S.XS)
            with m.Case(_S.MUL):
                if self.fast:
                    # acc = (r * (i+1)) >> W, what the W shift-add steps leave
                    m.d.sync += [acc.eq((r * mreg) >> W), state.eq(_S.RD)]
                else:
                    m.d.sync += [acc.eq(total[1:]), mreg.eq(mreg >> 1), k.eq(k + 1)]
                    with m.If(k == W - 1):
                        m.d.sync += state.eq(_S.RD)
            with m.Case(_S.RD):
                m.d.sync += [r.eq(r_step), state.eq(_S.WR1)]
            with m.Case(_S.WR1):
                # the read data is used the cycle it arrives: no holding register
                m.d.comb += [wp.addr.eq(i), wp.data.eq(rp.data), wp.en.eq(1)]
                m.d.sync += state.eq(_S.WR2)
            with m.Case(_S.WR2):
                # after WR1, so that j == i leaves a[i] = i
                m.d.comb += [wp.addr.eq(j), wp.en.eq(1)]
                m.d.sync += [i.eq(i1), i1.eq(i1_next), mreg.eq(i1_next), acc.eq(0),
                             k.eq(0), state.eq(_S.MUL)]
                with m.If(i1 == n):
                    m.d.sync += [state.eq(_S.IDLE), self.done.eq(1)]

        with m.If(self.start):
            m.d.sync += [r.eq(self.seed ^ Cat(Const(0, 16), ~self.epoch)), n.eq(self.n),
                         i.eq(0), i1.eq(1), mreg.eq(1), rnd.eq(0), self.done.eq(0)]
            with m.If(self.n == 0):
                m.d.sync += [state.eq(_S.IDLE), self.done.eq(1)]
            with m.Else():
                m.d.sync += state.eq(_S.XS)
        return m
