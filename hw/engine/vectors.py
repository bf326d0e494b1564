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
from ..util.registered_read import RegisteredRead

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



class Shared:
    """The per-sample vectors of every layer and their tensor biases, shared by the engine's
    units (one unit for all layers, or, in a pipelined build, a unit for layer 0 and one for
    the others).

    ``vec``: ``a0`` (the input buffers, 4 samples), ``h{l}`` (``a_l``, ``l >= 1``, exponent
    form), ``e{l}`` (the error at layer ``l``'s output; linear form for hidden layers when
    ``e_linear``). Bias registers, per layer: ``ab`` (``a_l``'s bias), ``ka`` (its read
    offset), ``cc`` (the code of its constant 1), ``eb`` (``e_l``'s bias), ``ke`` (its read
    offset), each a list of buffers. With ``double``, ``a_1`` and ``e_0`` (and their biases)
    have two buffers, so that stage A may write one while stage B reads the other (the
    buffer is the sample's index modulo 2).
    """

    def __init__(self, cfg, lanes: int, wpr: list, bias_lane: bool, x_bits: int,
                 acc_bits: int, e_linear: bool, read_reg: int, double: bool,
                 bias_bits: int = 16):
        from amaranth.hdl import Const, signed as _signed
        self.double = bool(double)
        nb = 2 if self.double else 1
        self.nb = nb
        nl = len(cfg.sizes) - 1
        L, rr = lanes, read_reg
        ent = exp_entry(x_bits)
        const_bit = ent.size - 1
        n0, W0 = cfg.sizes[0], wpr[0]
        a0 = [[0] * (4 * W0) for _ in range(L)]
        for buf in range(0 if bias_lane else 4):
            a0[n0 % L][buf * W0 + n0 // L] = cfg.fmt.emax     # the constant-1 input
        self.vec = {"a0": VecMem("a0_", cfg.fmt.bits, L, 4 * W0, n_read=2, init=a0,
                                 read_reg=rr)}
        #: words of one buffer of each vector
        self.depth = {}
        for l in range(1, nl):
            k = nb if l == 1 else 1
            one = const_entry_init(ent.size, const_bit, L, wpr[l],
                                   None if bias_lane else cfg.sizes[l], L)
            self.depth[f"h{l}"] = wpr[l]
            self.vec[f"h{l}"] = VecMem(f"h{l}_", ent, L, k * wpr[l], read_reg=rr,
                                       init=[sum([row] * k, []) for row in one])
        for l in range(nl):
            n = cfg.sizes[l + 1]
            k = nb if l == 0 else 1
            if e_linear and l < nl - 1:
                # one word more when the bias column starts a word of its own (it is
                # written, dead, by the backward pass like any other word)
                d = -(-(n + 1) // L)
                self.vec[f"e{l}"] = VecMem(f"e{l}_", lin_entry(acc_bits), L, k * d,
                                           read_reg=rr)
            else:
                d = n + 1
                self.vec[f"e{l}"] = VecMem(f"e{l}_", ent, 1, k * d, read_reg=rr)
            self.depth[f"e{l}"] = d
        B = _signed(bias_bits)
        emax = cfg.fmt.emax

        def regs(name, shape, layers, double_at):
            return {l: [Signal(shape, name=f"{name}{l}_{k}")
                        for k in range(nb if l == double_at else 1)] for l in layers}
        self.ab = {0: [Const(-emax, B)], **regs("a_bias", B, range(1, nl), 1)}
        self.ka = {0: [Const(0, B)], **regs("a_k", B, range(1, nl), 1)}
        self.cc = {0: [Const(0, cfg.fmt.bits)], **regs("a_c", cfg.fmt.bits, range(1, nl), 1)}
        self.eb = regs("e_bias", B, range(nl), 0)
        self.ke = regs("e_k", B, range(nl), 0)

    def build(self, m: Module) -> None:
        for v in self.vec.values():
            v.build(m)
