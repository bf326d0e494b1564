"""The LNS word in hardware: its layout, the ZERO test, table ROMs and requantisation.

Twin of :mod:`lnsmadam.golden.format`. A code of an :class:`~lnsmadam.golden.format.LNSFormat`
is viewed through :func:`lns_layout`, whose packed value *is* the golden code
(``sign << (bits - 1) | E``), so codes cross module and file boundaries unchanged.

* :func:`lns_layout`, :func:`is_zero`: the word and its one-field ZERO test (``E == 0``).
* :func:`rom`: a combinational constant table (the ``2**(r/gamma)`` table, ...), whose
  contents come from :func:`~lnsmadam.golden.format.pow2_table` and friends.
* :func:`requantize` (expression) and :class:`Requantize` (component): an absolute integer
  exponent, a sign and a zero flag to a code with a runtime bias, exactly
  :meth:`LNSFormat.from_exponent <lnsmadam.golden.format.LNSFormat.from_exponent>`.
* :class:`RegisteredRead`: the synchronous read port the blocks' memories of codes use
  (an asynchronous port plus a register, which Yosys maps to a block RAM without any
  read-before-write logic).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from lnsmadam.golden.format import LNSFormat, check_int

__all__ = ["lns_layout", "is_zero", "rom", "signed_bits", "check_format", "check_bool",
           "requantize", "Requantize", "RegisteredRead"]


def check_format(name: str, fmt) -> LNSFormat:
    """Raise ``ValueError`` unless ``fmt`` is an :class:`LNSFormat` (which validated itself)."""
    if not isinstance(fmt, LNSFormat):
        raise ValueError(f"{name} must be an LNSFormat, got {fmt!r}")
    return fmt


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return value


def signed_bits(*values: int) -> int:
    """Smallest two's-complement width that holds every integer in ``values``."""
    return max(max(v.bit_length() if v >= 0 else (~v).bit_length() for v in values) + 1, 1)


def lns_layout(fmt: LNSFormat) -> data.StructLayout:
    """Layout of one code: ``exp`` (``bits - 1``, LSBs) then ``sign`` (the MSB).

    The packed word equals the golden code, so ``view.as_value()`` can be compared with
    (or driven from) :mod:`lnsmadam.golden` codes directly.
    """
    check_format("fmt", fmt)
    return data.StructLayout({"exp": unsigned(fmt.exp_bits), "sign": unsigned(1)})


def is_zero(view) -> Value:
    """1 when the code is ZERO (``E == 0``, either sign bit)."""
    return view.exp == 0


def rom(table, index, signed_entries: bool = False) -> Value:
    """Combinational lookup ``table[index]`` of integer constants (non-negative unless
    ``signed_entries``; then a signed value just wide enough for every entry); an index
    past the table reads 0.

    A small constant table synthesises into LUTs (γ = 8 entries for the ``2**(r/gamma)``
    table), so no memory primitive and no latency is involved. It is built as a binary
    tree of multiplexers on the index bits, which Yosys writes as continuous assignments:
    a ``case`` table in an ``always @*`` block (what an ``Array`` lookup becomes) is not
    evaluated at time 0 under SystemVerilog semantics (Icarus ``-g2012``), so with an
    index register that keeps its reset value it stays X; its unused codes also make
    Verilator infer a latch.
    """
    table = [int(t) for t in table]
    if not table or (not signed_entries and min(table) < 0):
        raise ValueError("rom table must be a non-empty list of non-negative integers")
    shape = (signed(signed_bits(*table)) if signed_entries
             else unsigned(max(max(table).bit_length(), 1)))
    if len(table) == 1:
        # a one-entry table has a zero-width index (gamma = 1)
        return Const(table[0], shape)
    index = Value.cast(index)
    need = (len(table) - 1).bit_length()
    level = [Const(t, shape) for t in table] + [Const(0, shape)] * ((1 << need) - len(table))
    for k in range(min(need, index.shape().width)):
        level = [Mux(index[k], level[j + 1], level[j]) for j in range(0, len(level), 2)]
    out = level[0]
    if index.shape().width > need:
        out = Mux(index[need:].any(), Const(0, shape), out)
    return out


def requantize(fmt: LNSFormat, sign, e, zero) -> Value:
    """Packed code for the biased exponent ``e = x - bias`` (signed), ``sign`` and ``zero``.

    ``e > emax`` saturates (sign kept); ``e < 1`` flushes to ZERO or becomes ``E = 1``
    (``fmt.underflow``); ``zero`` gives the canonical ZERO (code 0, sign bit clear too).
    """
    e = Value.cast(e)
    low = e < 1
    field = Mux(e > fmt.emax, fmt.emax, e)[:fmt.exp_bits]
    if fmt.underflow == "flush":
        field = Mux(low, 0, field)
    else:
        field = Mux(low, 1, field)
    field = Mux(zero, 0, field)
    # the golden join() clears the sign of every ZERO result (canonical code 0)
    return Mux(field == 0, 0, Cat(field, Value.cast(sign)[0]))


class Requantize(wiring.Component):
    """Integer exponent to an LNS code with a runtime bias (``LNSFormat.from_exponent``).

    Computes ``code = from_exponent(sign, x, zero, bias)`` of ``fmt``: ``E = x - bias``,
    saturation at ``emax``, flush to ZERO or clamp to ``E = 1`` per ``fmt.underflow``.
    Combinational (latency 0), one conversion per cycle.

    Parameters
    ----------
    fmt : LNSFormat
        Output format (its ``underflow`` rule is used; its default bias is not: the bias
        is the ``bias`` input, e.g. a per-tensor dynamic bias).
    x_bits : int, 2..64
        Width of the signed exponent input ``x``.
    bias_bits : int, 2..64
        Width of the signed ``bias`` input (32 holds every legal bias, ±2**30).

    Ports: ``sign``, ``x`` (``signed(x_bits)``), ``zero``, ``bias`` (``signed(bias_bits)``)
    in; ``code`` (:func:`lns_layout`) out.
    """

    def __init__(self, fmt: LNSFormat, x_bits: int = 16, bias_bits: int = 32):
        self.fmt = check_format("fmt", fmt)
        self.x_bits = check_int("x_bits", x_bits, 2, 64)
        self.bias_bits = check_int("bias_bits", bias_bits, 2, 64)
        super().__init__({
            "sign": In(1),
            "x": In(signed(self.x_bits)),
            "zero": In(1),
            "bias": In(signed(self.bias_bits)),
            "code": Out(lns_layout(fmt)),
        })

    def elaborate(self, platform):
        m = Module()
        code = requantize(self.fmt, self.sign, self.x - self.bias, self.zero)
        m.d.comb += self.code.as_value().eq(code)
        return m


class RegisteredRead:
    """A synchronous read port of ``mem``: ``addr`` in, ``data`` one cycle later, the old
    word when the same address is written. With ``enable``, an ``en`` input (default 1):
    ``data`` holds while it is low.

    Built from an asynchronous port and a register. With the memory's Yosys attribute
    ``no_rw_check`` (required), Yosys folds the register into the block RAM and adds no logic
    to emulate read-before-write, which a plain ``read_port()`` costs (about 20 logic cells
    per memory on iCE40). The attribute makes a read of the word being written in the same
    cycle undefined on the FPGA: use the port only where such a read is never used.
    """

    def __init__(self, m: Module, mem: Memory, name: str = "mem", enable: bool = False):
        if not mem.attrs.get("no_rw_check"):
            raise ValueError(f"{name}: RegisteredRead needs a Memory with "
                             f"attrs={{'no_rw_check': 1}}")
        port = mem.read_port(domain="comb")
        self.addr = Signal.like(port.addr, name=f"{name}_raddr")
        self.data = Signal(mem.shape, name=f"{name}_rdata")
        m.d.comb += port.addr.eq(self.addr)
        if enable:
            self.en = Signal(init=1, name=f"{name}_ren")
            with m.If(self.en):
                m.d.sync += self.data.eq(port.data)
        else:
            m.d.sync += self.data.eq(port.data)
