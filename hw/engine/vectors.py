"""Per-sample vectors stored before requantisation and requantised where they are read.

Golden requantises every activation and error vector with a dynamic bias, ``b = max(live x)
- emax`` (:func:`lnsmadam.golden.softmax.requant_dynamic`), which is known only once the
whole vector exists. The engine therefore never runs a separate requantisation pass: a
vector is written as it is produced, in a form that does not depend on ``b``, the running
maximum is kept beside it, and the code is formed where the vector is read, one add and a
clamp per lane:

* **exponent form** (``x``, ``sign``, ``live``; ``x`` the unbiased LNS exponent in field
  units, the MAC's :meth:`~lnsmadam.golden.mac.MACConfig.to_lns`): the hidden activations,
  the softmax error (whose codes are ``x`` with offset 0) and, at one lane, the backward
  errors. Read: ``E = x + k`` (``k`` the per-vector offset), ZERO when not live or when
  ``E`` underflows; ``E <= emax`` holds by construction (``k`` puts the largest live ``x``
  at ``emax``).
* **linear form** (the accumulator word ``S`` and a ``dead`` flag): the backward errors at
  more than one lane, which leave ``lanes`` accumulators at once. ``to_lns`` is monotonic
  in ``|S|``, so the maximum is kept on ``|S|`` and the single read converter (the vector
  is read one element per cycle, broadcast to every lane) gives ``x``.

:class:`VecMem` is a set of banked memories (one bank per lane, or one) with one write
port and ``n_read`` read ports per bank; every port is a plain signal, so the memory can be
shared by the units that write and read it.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data
from amaranth.lib.memory import Memory

from ...golden.format import LNSFormat
from ..format import RegisteredRead

__all__ = ["VecMem", "exp_entry", "lin_entry", "read_exp", "requant_pos", "const_entry_init"]


def exp_entry(x_bits: int) -> data.StructLayout:
    """An exponent-form element: ``x`` (signed), ``sign``, ``live``, ``const`` (the constant
    1 of a bias column: its code is the vector's own ``c_code``)."""
    return data.StructLayout({"x": signed(x_bits), "sign": 1, "live": 1, "const": 1})


def lin_entry(acc_bits: int) -> data.StructLayout:
    """A linear-form element: the accumulator word ``S`` and ``dead`` (masked or zero)."""
    return data.StructLayout({"S": signed(acc_bits), "dead": 1})


def requant_pos(fmt: LNSFormat, sign, e, zero) -> Value:
    """Code of the biased exponent ``e`` known to be ``<= emax``: the underflow rule only
    (:meth:`LNSFormat.from_exponent` with no saturation to test)."""
    e = Value.cast(e)
    low = e < 1
    field = e[:fmt.exp_bits]
    field = Mux(low, 0 if fmt.underflow == "flush" else 1, field)
    field = Mux(zero, 0, field)
    return Mux(field == 0, 0, Cat(field, Value.cast(sign)[0]))


def read_exp(fmt: LNSFormat, entry, k, c_code) -> Value:
    """The code of an exponent-form ``entry`` read with offset ``k``: ``c_code`` for the
    constant, ``requant(x + k)`` for a live element, ZERO otherwise."""
    code = requant_pos(fmt, entry.sign, entry.x + k, ~entry.live)
    return Mux(entry.const, c_code, code)


class VecMem:
    """``banks`` memories named ``name{b}`` of ``depth`` elements of ``shape``.

    Ports (plain signals, driven by whoever owns them): ``w_en[b]``, ``w_addr``,
    ``w_data[b]`` (one write port, a shared address); ``r_addr[p]``, ``r_data[p][b]``
    (``n_read`` read ports, a shared address per port; data ``1 + read_reg`` cycles after
    the address: :class:`~lnsmadam.hw.format.RegisteredRead` and ``read_reg`` more
    registers; a read of the word written in the same cycle is never used). ``init[b]``
    are initial contents (e.g. the constant-1 entries).
    """

    def __init__(self, name: str, shape, banks: int, depth: int, n_read: int = 1,
                 init=None, read_reg: int = 0):
        self.name, self.shape, self.banks = name, shape, banks
        self.read_reg = read_reg
        self.depth = max(int(depth), 2)
        self.n_read = n_read
        self.init = init
        width = Value.cast(Signal(shape)).shape().width
        self.width = width
        self.w_en = [Signal(name=f"{name}{b}_we") for b in range(banks)]
        self.w_addr = Signal(range(self.depth), name=f"{name}_waddr")
        self.w_data = [Signal(width, name=f"{name}{b}_wdata") for b in range(banks)]
        self.r_addr = [Signal(range(self.depth), name=f"{name}_raddr{p}") for p in range(n_read)]
        self.r_data = [[Signal(width, name=f"{name}{b}_rdata{p}") for b in range(banks)]
                       for p in range(n_read)]

    def view(self, p: int, b: int):
        """Read port ``p``'s data of bank ``b`` as a ``shape`` view."""
        return data.View(self.shape, self.r_data[p][b]) \
            if isinstance(self.shape, data.Layout) else self.r_data[p][b]

    def build(self, m: Module) -> None:
        for b in range(self.banks):
            init = [] if self.init is None else list(self.init[b])
            mem = Memory(shape=unsigned(self.width), depth=self.depth, init=init,
                         attrs={"no_rw_check": 1})
            m.submodules[f"{self.name}{b}"] = mem
            wp = mem.write_port()
            m.d.comb += [wp.en.eq(self.w_en[b]), wp.addr.eq(self.w_addr),
                         wp.data.eq(self.w_data[b])]
            for p in range(self.n_read):
                rd = RegisteredRead(m, mem, f"{self.name}{b}_{p}")
                m.d.comb += rd.addr.eq(self.r_addr[p])
                out = rd.data
                for k in range(self.read_reg):
                    reg = Signal.like(out, name=f"{self.name}{b}_{p}_rr{k}")
                    m.d.sync += reg.eq(out)
                    out = reg
                m.d.comb += self.r_data[p][b].eq(out)


def const_entry_init(fmt_entry_width: int, const_bit: int, banks: int, depth: int,
                     index: int | None, lanes: int):
    """Initial contents of an exponent-form vector memory: zero, except the constant-1
    element ``index`` (bank ``index % lanes``, word ``index // lanes``) whose ``const`` bit
    is set."""
    out = [[0] * depth for _ in range(banks)]
    if index is not None:
        out[index % lanes][index // lanes] = 1 << const_bit
    return out

