"""The output-layer loss gradient: softmax cross-entropy error from the logit accumulator words.

:class:`SoftmaxError` is the hardware twin of :func:`lnsmadam.golden.softmax.softmax_error`
(``LNSMLP._error_out`` of :mod:`lnsmadam.golden.mlp`): from the ``n_out`` accumulator
words ``S`` of the last layer, the logit tensor bias and the label it returns the error
codes and the error bias, bit for bit, for every input (golden's own int64 range: see "Domain" below).

Golden (``f = fmt.frac_bits``, ``gamma = 2**f``, ``Ws = softmax_window``,
``top = gamma*(Ws - 1)``): ``C = C[bias & (gamma-1)]``, ``sh = 16 - lsb_q - (bias >> f)``,
``z_i = round_half_up(S_i*C / 2**sh)`` (a left shift when ``sh <= 0``),
``pe_i = z_i - max z + top``, ``L_i = to_linear(pe_i)`` (0 for ``pe_i < 0``),
``xs``/``xr`` = ``from_linear`` of ``total = sum L`` and ``rest = total - L_label``,
``x_i = pe_i - xs`` (ZERO where ``L_i = 0``), ``x_label = xr - xs`` (negative; ZERO when
``rest = 0``), and the dynamic requantisation ``b = max(live x) - emax`` (0 if none).

How it avoids a wide multiplier and a wide shifter
--------------------------------------------------
With ``D_i = max S - S_i >= 0`` and the per-vector constant
``r0c = ~(max S * C + 2**(sh-1)) mod 2**sh``, exactly ``max z - z_i = (D_i*C + r0c) >> sh``.
An element is alive only if ``D_i*C < (top+1) * 2**sh``, so only small ``D_i`` matter.
``sh`` is clamped to ``[sh_lo, sh_hi]`` (golden's result does not change outside: below
``sh_lo`` only ties with the maximum are alive, above ``sh_hi`` every ``z`` is 0; see
:func:`softmax_constants`) and written ``E0 + 4k + e`` (``e`` in 0..3, ``E0 = sh_lo - 4``);
then ``D_i >= 2**(4k-1)`` is surely dead and ``D_i*C`` needs only the ``k`` low radix-16
Booth digits of ``D_i``:

* multiplier: digit-serial, least significant first, one Booth digit per two cycles. The
  signed partial product ``d*C`` (``d`` in -8..8) is read from a ``16*gamma``-entry table in
  the unit's memory, so the accumulator adder is only ``log2(9*max C)`` bits wide. The
  accumulator shifts right 4 bits per digit; the bits shifted out only matter through their
  carry against ``r0c``'s nibbles, read from the memory in the digit's second cycle (a
  4-bit add, the carry deferred to the next digit). After the ``k`` digits, ``n_hi`` more
  steps (digit 0 when alive) add ``r0c >> 4k`` the same way and put the nibbles of
  ``Y = acc + (r0c >> 4k)`` into the top of the accumulator (no wide adder); then
  ``max z - z_i = Y >> (E0 + e)``: a 4-way select of ``log2(top)`` bits;
* ``r0c`` comes from the same datapath once per vector: ``max S * C`` with the digits of
  ``max S``, its shifted-out nibbles complemented (bit ``sh-1`` kept), written to the
  memory (``k + n_hi`` words, no registers);
* ``L_i = T[r] << q`` as the product ``T[r] * 2**q`` (one SB_MAC16 under Yosys ``-dsp``;
  :class:`~lnsmadam.hw.convert.ToLinear` for windows over 16 octaves); ``Sum`` accumulates every ``L_i`` except
  the label's (``rest``), ``total = rest + L_label`` goes through the same adder once;
* ``from_linear`` of ``rest`` and ``total``: one serial normaliser (shift left by 1 while the
  MSB is zero, then the ``gamma`` midpoint comparisons on a fixed mantissa slice);
* requantisation: ``E_i = x_i - b = pe_i - M + emax`` with ``M`` the largest live ``pe_i``
  or ``xr``; ``xs`` only enters ``b = M - xs - emax``. ``E <= emax`` by construction.

Storage: one ``lib.memory.Memory`` (two iCE40 EBRs at 32 bits, ``n_out <= 111`` for
``gamma <= 8`` at the default ``K``): the partial-product table (``16*gamma`` words), then
``S_i`` (input), each overwritten in its low bits with ``(pe_i, alive_i)`` once used, a zero
word (digit 0 and ``max S - 0``), then from an aligned address the ``r0c`` nibbles (one per
word, in the low bits). Its single read port serves the table, the ``S`` reads, the ``r0c``
nibbles and the output;
``max S`` is found by reading each input word back through the ``D`` subtractor (no
comparator). The read port is asynchronous plus a register, and the memory carries Yosys's
``no_rw_check``: the register folds into the EBR and no read-before-write logic is emulated
(no read ever addresses the word being written; the tests check it). Everything else is
registers (about 237 flip-flops at the default).

Timing, in cycles at full rate from the first input beat to the last output beat, with
``k = (clamp(sh) - E0) >> 2`` (1..``K``), ``n_hi = ceil((E0 + 3 + log2(top))/4)`` (5 at
the default) and ``s_r``, ``s_t`` the normaliser's one-bit shifts (``s_t <= 4`` for
``n_out <= 16``, ``s_r < width(Sum)`` when the label carries nearly all mass)::

    n_out + 3            input (one beat per cycle), read back the last word, read 0
    k + n_hi             max S * C -> r0c
    n_out*(2(k+n_hi)+1)  per element: load, k digits and n_hi r0c >> 4k steps
    2 + 2 + s_r + s_t    drain; from_linear(rest), from_linear(total)
    n_out                output (one beat per cycle while o_stream.ready)

i.e. ``n_out*(2(k + n_hi) + 3) + k + n_hi + 7 + s_r + s_t``. At the default (``K`` = 11) a
10-class vector of the digits MLP (``sh`` = 39..40, ``k`` = 7..8) takes about 314 cycles;
any 10-class vector at most 404 (``k = K``). One vector at a time: ``i_stream.ready`` is high only
while a vector is being received, i.e. from the last output beat of the previous one.

Domain: golden computes ``z`` in int64; for ``sh < 0`` with large ``|S|`` its ``p << -sh``
overflows (``OverflowError``) or ``z - max z`` wraps. The unit computes the exact integer
result there (only ties with the maximum are alive).

Area (Yosys ``synth_ice40 -dsp``, nextpnr pack, default config, ``bias_bits=16``): 594 LUT4,
133 SB_CARRY, 237 FF, 708 LCs, 2 EBR, 1 SB_MAC16 (was 788 LCs at ~160 cycles, 959 LCs with
0 DSP at 117..130 cycles).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.format import check_int, midpoint_table, pow2_table
from ..golden.mlp import MLPConfig
from ..golden.softmax import SOFTMAX_P, logit_constants
from .convert import ToLinear
from .format import lns_layout, signed_bits
from .util.compare import ge_const

__all__ = ["SoftmaxError", "softmax_constants"]

#: largest supported ``fmt.frac_bits`` (the partial-product table has ``16 * gamma`` words)
MAX_FRAC_BITS = 4


def softmax_constants(cfg: MLPConfig) -> dict:
    """The elaboration-time constants of :class:`SoftmaxError` for ``cfg``.

    ``C`` (the ``gamma`` logit constants, computed as golden does), ``top``, ``sh_lo`` (the
    largest ``sh`` with ``(top+1) * 2**sh <= min C``: from there down a nonzero ``D*C``
    already exceeds the window, so only ties with the maximum are alive), ``sh_hi``
    (``acc_bits + bit_length(max C)``: from there up ``|S*C| < 2**(sh-1)``, every ``z`` is
    0), ``E0 = sh_lo - 4``, ``K`` (most Booth digits per element), ``n_hi`` (nibbles of
    ``acc + (r0c >> 4k)`` formed after the digits) and ``sum_bits`` (width of ``total``).
    """
    fmt, mac = cfg.fmt, cfg.mac
    g = fmt.gamma
    C = logit_constants(g)
    top = g * (cfg.softmax_window - 1)
    sh_lo = 0
    while (top + 1) << (sh_lo + 1) <= min(C):
        sh_lo += 1
    sh_hi = mac.acc_bits + max(C).bit_length()
    E0 = sh_lo - 4
    return {
        "C": C, "top": top, "sh_lo": sh_lo, "sh_hi": sh_hi, "E0": E0,
        "K": (sh_hi - E0) >> 2, "n_hi": -(-(E0 + 3 + max(top.bit_length(), 1)) // 4),
        "sum_bits": mac.lut_frac + cfg.softmax_window + (cfg.sizes[-1] - 1).bit_length(),
    }


class SoftmaxError(wiring.Component):
    """Softmax cross-entropy error at the output layer, bit-exact with ``LNSMLP._error_out``.

    Parameters
    ----------
    cfg : MLPConfig
        Uses ``sizes[-1]`` (``n_out``, 1..4096), ``fmt`` (any bits/underflow rule,
        ``frac_bits`` 0..4: the partial-product table has ``16*gamma`` words), ``mac``
        (``acc_bits``, ``lut_frac``, ``mid_bits``, ``lsb_q``) and ``softmax_window``.
    bias_bits : int
        Width of ``bias`` and ``o_bias``, 2..64 and at least wide enough for every error
        bias (``-gamma*sum_bits - emax .. 0``, 10 bits at the default; ``ValueError`` names
        the range otherwise).

    Members
    -------
    i_stream : In(stream.Signature(StructLayout({"S": signed(acc_bits)})))
        Exactly ``n_out`` beats per vector, the logits' accumulator words in index order.
        ``ready`` is high only while a vector is being received.
    bias : In(signed(bias_bits))
        The logit tensor bias (golden's ``bias`` argument).
    label : In(range(n_out))
        ``bias`` and ``label`` are held from the first input beat until the last output
        beat has been taken.
    o_stream : Out(stream.Signature(StructLayout({"code": ..., "index": range(n_out)})))
        ``n_out`` beats in index order: the error codes ``e.codes`` (``lns_layout(fmt)``).
        Honours ``ready``.
    o_bias : Out(signed(bias_bits))
        The error bias ``e.bias``, valid while the output beats are presented.
    argmax : Out(range(n_out))
        The index of the largest ``S`` (the lowest one on ties: ``LNSMLP.predict``), valid
        from the first output beat until the next vector's first input beat. It falls out
        of the search for ``max S`` (a register of ``bits(n_out - 1)`` flip-flops).

    Latency
    -------
    ``n_out*(2(k + n_hi) + 3) + k + n_hi + 7 + s_r + s_t`` cycles from the first input beat
    to the last output beat at full rate: about 314 for a 10-class vector of the digits MLP,
    at most 404 for any 10-class vector (module docstring, "Timing").

    Throughput
    ----------
    One vector at a time: the next is accepted from the cycle after the last output beat.

    Notes
    -----
    The module docstring describes the datapath (no wide multiplier or shifter), the
    storage (one memory) and the area.
    """

    def __init__(self, cfg: MLPConfig, bias_bits: int = 16):
        if not isinstance(cfg, MLPConfig):
            raise ValueError(f"cfg must be an MLPConfig, got {cfg!r}")
        self.cfg = cfg
        fmt, mac = cfg.fmt, cfg.mac
        check_int("cfg.fmt.frac_bits", fmt.frac_bits, 0, MAX_FRAC_BITS)
        self.n_out = n = cfg.sizes[-1]
        self.bias_bits = check_int("bias_bits", bias_bits, 2, 64)
        k = softmax_constants(cfg)
        self.C, self.top, self.sh_lo, self.sh_hi = k["C"], k["top"], k["sh_lo"], k["sh_hi"]
        self.E0, self.K, self.n_hi, self.sum_bits = k["E0"], k["K"], k["n_hi"], k["sum_bits"]
        g, F = fmt.gamma, mac.lut_frac
        # x of total/rest: gamma*(lz - F) + r with lz in [0, sum_bits - 1], r in [0, gamma]
        self.x_lo, self.x_hi = -g * F, g * (self.sum_bits - F)
        # error bias: M - xs - emax with M in [x_lo, max(top, x_hi)], xs <= x_hi; or 0
        b_lo = self.x_lo - self.x_hi - fmt.emax
        need = signed_bits(b_lo, 0)
        if bias_bits < need:
            raise ValueError(f"bias_bits must be in [{need}, 64] for this configuration "
                             f"(error biases down to {b_lo}), got {bias_bits}")
        self.pe_bits = max(self.top.bit_length(), 1)
        # partial-product table: entry Cat(r, |d| - 1, sign) is +-|d| * C[r], |d| in 1..8
        mags = [(j // g % 8 + 1) * self.C[j % g] for j in range(16 * g)]
        self.pp_bits = max(mags).bit_length() + 1
        #: the table as stored (two's complement in ``pp_bits``)
        self.pp_table = [(-v if j >= 8 * g else v) & ((1 << self.pp_bits) - 1)
                         for j, v in enumerate(mags)]
        # accumulator: |acc| <= C/2 + 1 and the partial product is at most 8*C
        self.acc_w = max(signed_bits(-9 * max(self.C), 9 * max(self.C)), 4 * self.n_hi + 1)
        self.x_bits = signed_bits(self.x_lo, self.x_hi)
        self.m_bits = signed_bits(self.x_lo - fmt.emax, max(self.top, self.x_hi))
        self.norm_pad = max(0, mac.mid_bits + 1 - self.sum_bits)
        #: memory map: the table, S_i (then pe_i, alive_i), a zero word
        self.SA = 16 * g
        self.ZA = self.SA + n
        #: r0c mod 2**(4k), nibble t in the low bits of word RA + t (t = K - k .. K - 1)
        self.tp_bits = (self.K + self.n_hi - 1).bit_length()
        self.RA = -(-(self.ZA + 1) >> self.tp_bits) << self.tp_bits
        self.mem_bits = max(mac.acc_bits, self.pp_bits, self.pe_bits + 1)
        super().__init__({
            "i_stream": In(stream.Signature(data.StructLayout({"S": signed(mac.acc_bits)}))),
            "bias": In(signed(bias_bits)),
            "label": In(range(n)),
            "o_stream": Out(stream.Signature(data.StructLayout({
                "code": lns_layout(fmt), "index": range(n)}))),
            "o_bias": Out(signed(bias_bits)),
            "argmax": Out(range(n)),
        })

    def elaborate(self, platform):
        m = Module()
        b = _Build(m, self)
        b.storage()
        b.shift()
        b.multiplier()
        b.r0c()
        b.extraction()
        b.accumulate()
        b.write_port()
        b.max_s()
        b.normaliser()
        b.outputs()
        b.read_address()
        with m.FSM():
            b.input_states()
            b.run_states()
            b.normaliser_states()
            b.output_state()
        return m


class _Build:
    """:class:`SoftmaxError`'s datapath and control, section by section, in ``m``: each
    method adds one part of the module docstring's datapath (or the FSM states of one
    step) and keeps the signals later parts use as attributes."""

    def __init__(self, m: Module, unit: SoftmaxError):
        self.m, self.u = m, unit
        cfg = unit.cfg
        self.fmt, self.mac = cfg.fmt, cfg.mac
        self.n, self.f, self.g = unit.n_out, cfg.fmt.frac_bits, cfg.fmt.gamma
        self.F, self.ab = cfg.mac.lut_frac, cfg.mac.acc_bits
        self.top, self.K, self.n_hi, self.E0 = unit.top, unit.K, unit.n_hi, unit.E0
        self.pe_bits = unit.pe_bits

    def storage(self):
        """The partial-product table, S_i then (pe_i, alive_i), a zero word, r0c."""
        m, u, K, n_hi, ab, pe_bits = self.m, self.u, self.K, self.n_hi, self.ab, self.pe_bits
        m.submodules.mem = mem = Memory(shape=unsigned(u.mem_bits), depth=u.RA + K + n_hi,
                                        init=u.pp_table, attrs={"no_rw_check": 1})
        wr = mem.write_port()
        # an asynchronous port plus a register, with no_rw_check: Yosys folds the register
        # into the EBR and, since no read here ever hits the word being written (the tests
        # check), does not emulate read-before-write (about 70 flip-flops and muxes)
        rda = mem.read_port(domain="comb")
        u._mem_ports = (wr, rda)             # for the tests' collision check
        rd = Signal.like(rda.data, name="rd_data")
        m.d.sync += rd.eq(rda.data)
        self.wr, self.rda, self.rd = wr, rda, rd
        self.rd_S = rd[:ab].as_signed()
        self.rd_pe = rd[:pe_bits]
        self.rd_alive = rd[pe_bits]

    def shift(self):
        """The per-vector shift from the bias (held during the whole vector): clamp(sh) =
        E0 + 4k + esel with sh = c0 - (bias >> f); only k and esel are kept."""
        m, u, f, E0, K = self.m, self.u, self.f, self.E0, self.K
        self.rb = u.bias[:f]
        qb = u.bias >> f
        c0 = SOFTMAX_P - self.mac.lsb_q
        vmax = u.sh_hi - E0
        v_bits = vmax.bit_length()
        v_mid = Signal(v_bits)               # clamp(sh) - E0 when no clamp applies
        m.d.comb += v_mid.eq(c0 - E0 - qb)
        self.v = Mux(ge_const(qb, c0 - u.sh_lo, m), 4,
                     Mux(ge_const(qb, c0 - u.sh_hi + 1, m), v_mid, vmax))
        self.v_r = v_r = Signal(v_bits)
        self.esel = v_r[:2]
        self.kstart = kstart = Signal(range(K + 1))     # first step count: K - k
        m.d.comb += kstart.eq(K - (v_r >> 2))

    def multiplier(self):
        """D: the multiplier, one radix-16 Booth digit per step; the table entry of digit t
        is read in step t - 1 (in the load cycle for t = 0), so D runs one digit ahead."""
        m, u, ab, rd = self.m, self.u, self.ab, self.rd
        Smax = Signal(signed(ab))
        dload = Signal(signed(ab + 1))
        m.d.comb += dload.eq(Smax - self.rd_S)
        D = Signal(signed(ab + 1))
        prev = Signal()
        loading = Signal()
        nib = Mux(loading, dload[:4], D[:4])
        pbit = Mux(loading, 0, prev)
        dig = Signal(signed(5))
        m.d.comb += dig.eq(nib[:3] + pbit - (nib[3] << 3))
        mag = Signal(4)
        m.d.comb += mag.eq(Mux(dig[-1], -dig, dig))
        # the signed entry d * C[rb]; d = 0 reads the zero word
        self.rom_addr = Mux(mag == 0, u.ZA, Cat(self.rb, (mag - 1)[:3], dig[-1]))
        acc = Signal(signed(u.acc_w))
        s = Signal(signed(u.acc_w))
        m.d.comb += s.eq(acc + rd[:u.pp_bits].as_signed())
        self.Smax, self.dload, self.D, self.prev, self.loading = Smax, dload, D, prev, loading
        self.acc, self.s, self.low = acc, s, s[:4]

        tp = Signal(u.tp_bits)               # step count, K - k .. K - 1 (+ n_hi in the run)
        # r0c mod 2**(4k) lives in the memory, nibble t of it at word RA + K - k + t: a digit
        # takes two cycles, the table entry's (acc, low nibble) and the r0c nibble's (carry)
        self.r0c_addr = Cat(tp, Const(u.RA >> u.tp_bits, 8))
        carry = Signal()
        lowr = Signal(4)
        w = Signal(5)
        m.d.comb += w.eq(lowr + rd[:4] + carry)
        self.tp, self.carry, self.lowr, self.w, self.c_next = tp, carry, lowr, w, w[4]

    def r0c(self):
        """r0c from max S * C's shifted-out nibbles: the bit at absolute position
        4*(tp - K + k) + b is ~U below sh - 1, U at sh - 1 and 0 above, i.e. compared with
        lim = 4K + E0 - 1 + esel at position 4*tp + b (lim >> 2 is lq or lq + 1: constant
        comparisons, no carry chain)."""
        m, K, E0, esel, tp, low = self.m, self.K, self.E0, self.esel, self.tp, self.low
        lq, lr0 = (4 * K + E0 - 1) >> 2, (E0 - 1) & 3
        bump = ge_const(esel, 4 - lr0, m) if lr0 else Const(0)
        lim_r = (esel + lr0)[:2]
        t_lt = Mux(bump, ~ge_const(tp, lq + 1, m), ~ge_const(tp, lq, m))
        t_eq = Mux(bump, tp == lq + 1, tp == lq)
        r0c_nib = Signal(4)
        for b in range(4):
            m.d.comb += r0c_nib[b].eq(Mux(t_lt | (t_eq & (b < lim_r)), ~low[b],
                                          t_eq & (b == lim_r) & low[b]))
        self.r0c_nib = r0c_nib
        D, dload, prev, acc, carry = self.D, self.dload, self.prev, self.acc, self.carry
        self.load = [D.eq(dload >> 4), prev.eq(dload[3]), acc.eq(0), carry.eq(0),
                     tp.eq(self.kstart)]
        self.step = [acc.eq(self.s >> 4), D.eq(D >> 4), prev.eq(D[3]), tp.eq(tp + 1)]

    def extraction(self):
        """In the next element's load cycle, from acc and carry:
        max z - z = (acc + (r0c >> 4k) + carry) >> (E0 + esel) = u; alive if u <= top."""
        m, n, E0, pe_bits, top, acc = self.m, self.n, self.E0, self.pe_bits, self.top, self.acc
        validX, deadX = Signal(), Signal()
        ix = Signal(range(n + 1))            # element index (input, multiplier, output)
        # the n_hi steps after the k digits add r0c >> 4k (digit 0 when alive) and put the
        # sum's nibbles in the top of acc: Y mod 2**(4 n_hi) = acc[yb:], Y >> 4 n_hi =
        # acc[:yb] + carry
        yb = self.u.acc_w - 4 * self.n_hi
        Yw = acc[yb + E0:yb + E0 + pe_bits + 3]
        # u = Y >> (E0 + esel) is only needed up to top: its pe_bits low bits from a 4-way
        # select, and the bits above must be zero
        above = ~self.carry & (acc[:yb] == 0)
        if E0 + pe_bits + 3 < 4 * self.n_hi:
            above &= acc[yb + E0 + pe_bits + 3:] == 0
        u = Signal(pe_bits)
        m.d.comb += u.eq(Array(Yw[e:e + pe_bits] for e in range(4))[self.esel])
        mid0 = Array((Yw[pe_bits + e:] == 0) if e < 3 else Const(1)
                     for e in range(4))[self.esel]
        pe_r = Signal(pe_bits)
        alive_r, validE = Signal(), Signal()
        idx_r = Signal(range(n))
        m.d.sync += [pe_r.eq(top - u),
                     alive_r.eq(~deadX & above & mid0 & ~ge_const(u, top + 1, m)),
                     validE.eq(validX), validX.eq(0)]
        self.validX, self.deadX, self.ix, self.pe_r = validX, deadX, ix, pe_r
        self.alive_r, self.validE, self.idx_r = alive_r, validE, idx_r

    def accumulate(self):
        """The accumulate stage: L = to_linear(pe), Sum, the label's pe, max pe."""
        m, u, f, F = self.m, self.u, self.f, self.F
        pe_bits, pe_r, alive_r = self.pe_bits, self.pe_r, self.alive_r
        Sum = Signal(u.sum_bits)
        pe_lab, al_lab = Signal(pe_bits), Signal()
        pmax, any_nl = Signal(pe_bits), Signal()
        # Sum = rest (the label is left out); total = Sum + L_label is formed once, through
        # the same converter and adder, straight into the normaliser
        conv_add = Signal()
        is_lab_r = self.idx_r == u.label
        tl_p = Mux(conv_add, pe_lab, pe_r)
        tl_zero = Mux(conv_add, ~al_lab, ~alive_r | is_lab_r)
        Ws = u.cfg.softmax_window
        if Ws <= 16 and F + 1 <= 16:
            # L = T[r] << q as T[r] * 2**q: one SB_MAC16 (Yosys -dsp) instead of a barrel
            # shifter; pe is in [0, top], so q = pe >> f is in [0, Ws - 1]
            T = pow2_table(f, F)
            t = Signal(F + 1)
            m.d.comb += t.eq(Mux(tl_zero, 0, Array(Const(int(v), F + 1) for v in T)[tl_p[:f]]))
            onehot = Signal(Ws)
            m.d.comb += onehot.eq(Const(1, Ws) << (tl_p >> f))
            lin = t * onehot
        else:
            m.submodules.tolin = tolin = ToLinear(self.fmt, F, 0, Ws)
            m.d.comb += [tolin.p.eq(tl_p), tolin.sign.eq(0), tolin.zero.eq(tl_zero)]
            lin = tolin.lin
        sum_next = Signal(u.sum_bits)
        m.d.comb += sum_next.eq(Sum + lin)
        with m.If(self.validE):
            m.d.sync += Sum.eq(sum_next)
            with m.If(is_lab_r):
                m.d.sync += [pe_lab.eq(pe_r), al_lab.eq(alive_r)]
            with m.Elif(alive_r & (~any_nl | (pe_r > pmax))):
                m.d.sync += [any_nl.eq(1), pmax.eq(pe_r)]
        self.Sum, self.pmax, self.any_nl = Sum, pmax, any_nl
        self.conv_add, self.sum_next = conv_add, sum_next

    def write_port(self):
        """The memory write port: S on input, (pe, alive) in the low bits once used, r0c."""
        m, u, wr = self.m, self.u, self.wr
        in_phase, r0c_we = Signal(), Signal()
        S_in = u.i_stream.payload.S
        lo_w = max(self.pe_bits + 1, 4)
        m.d.comb += [
            wr.en.eq((in_phase & u.i_stream.valid) | self.validE | r0c_we),
            wr.addr.eq(Mux(r0c_we, self.r0c_addr, u.SA + Mux(in_phase, self.ix, self.idx_r))),
            # the high bits are junk after use: only the low pe_bits + 1 (4 for r0c) are
            # read again
            wr.data.eq(Cat(Mux(r0c_we, self.r0c_nib,
                               Mux(in_phase, S_in[:lo_w], Cat(self.pe_r, self.alive_r))),
                           S_in[lo_w:])),
        ]
        self.in_phase, self.r0c_we = in_phase, r0c_we

    def max_s(self):
        """max S: each written word is read back and compared through dload."""
        m = self.m
        wrote, rvalid, smax_ok = Signal(), Signal(), Signal()
        m.d.sync += rvalid.eq(wrote)
        # the index of the word read back (its read address, one cycle earlier)
        rix = Signal(range(self.n + 1))
        with m.If(rvalid & (~smax_ok | self.dload[-1])):
            m.d.sync += [self.Smax.eq(self.rd_S), smax_ok.eq(1), self.u.argmax.eq(rix)]
        self.wrote, self.smax_ok, self.rix = wrote, smax_ok, rix

    def normaliser(self):
        """The serial from_linear of rest, then of total."""
        m, u, F, f, g = self.m, self.u, self.F, self.f, self.g
        mb = self.mac.mid_bits
        nw = u.sum_bits + u.norm_pad
        N = Signal(nw)
        lzc = Signal(signed(signed_bits(-F - u.norm_pad - 1, u.sum_bits)))  # lz-F at MSB
        # one bit per cycle: the mantissa is then a fixed slice (no leading-one select)
        self.msb = N[nw - 1]
        mant = Signal(mb + 1)
        m.d.comb += mant.eq(N[nw - 1 - mb:])
        # the comparisons are a thermometer code (the midpoints increase): r = its length
        therm = [ge_const(mant, mid, m) for mid in midpoint_table(f, mb)] + [Const(0)]
        r = Signal(range(g + 1))
        for j in range(g + 1):
            with m.If(therm[j] == 0) if j == 0 else m.Elif(therm[j] == 0):
                m.d.comb += r.eq(j)
        # x = gamma*(lz - F) + r, r = gamma carrying into the octave
        x_now = Signal(signed(u.x_bits))
        m.d.comb += x_now.eq(Cat(r[:f], lzc + r[f]))
        self.x_now = x_now
        self.xr = Signal(signed(u.x_bits))
        self.zr = Signal()
        self.N_load = [N.eq(Cat(Const(0, u.norm_pad), self.sum_next)),
                       lzc.eq(u.sum_bits - 1 - F)]
        self.N_shift = [N.eq(N << 1), lzc.eq(lzc - 1)]

    def outputs(self):
        """The error codes and bias: ``E_i = x_i - b = pe_i - M + emax`` (``xr - M + emax``
        at the label) ``<= emax``, so no saturation."""
        m, u, fmt = self.m, self.u, self.fmt
        Moff = Signal(signed(u.m_bits))      # max(live pe, xr) - emax
        # b = M - xs - emax, or 0 when nothing is live: a register, set once per vector
        ob = Signal(signed(signed_bits(u.x_lo - u.x_hi - fmt.emax, 0)))
        m.d.comb += u.o_bias.eq(ob)
        o = u.o_stream
        self.o_take = o.valid & o.ready
        is_lab = self.ix == u.label
        E = Signal(signed(u.m_bits + 1))
        m.d.comb += E.eq(Mux(is_lab, self.xr, self.rd_pe) - Moff)
        under = E[-1] | (E == 0)
        zero = Mux(is_lab, self.zr, ~self.rd_alive)
        if fmt.underflow == "flush":
            code = Mux(zero | under, 0, Cat(E[:fmt.exp_bits], is_lab))
        else:
            code = Mux(zero, 0, Cat(Mux(under, 1, E[:fmt.exp_bits]), is_lab))
        m.d.comb += [o.payload.code.as_value().eq(code), o.payload.index.eq(self.ix)]
        self.Moff, self.ob = Moff, ob

    def read_address(self):
        """The read address: a table entry, or word SA + ix + aoff."""
        m, ix = self.m, self.ix
        use_rom, use_r0c = Signal(), Signal()
        aoff = Signal(signed(2))
        m.d.comb += self.rda.addr.eq(Mux(use_rom, self.rom_addr,
                                         Mux(use_r0c, self.r0c_addr, self.u.SA + ix + aoff)))
        m.d.sync += self.rix.eq(ix + aoff)
        self.use_rom, self.use_r0c, self.aoff = use_rom, use_r0c, aoff

    # -- control ---------------------------------------------------------------------------
    def input_states(self):
        """IN, MAX1, MAX2: take the vector, find max S."""
        m, u, ix, aoff = self.m, self.u, self.ix, self.aoff
        with m.State("IN"):              # word ix - 1 (the last written) is read back
            m.d.comb += [self.in_phase.eq(1), u.i_stream.ready.eq(1), aoff.eq(-1)]
            with m.If(u.i_stream.valid):
                m.d.sync += [self.wrote.eq(1), ix.eq(ix + 1)]
                with m.If(ix == self.n - 1):
                    m.d.sync += self.v_r.eq(self.v)
                    m.next = "MAX1"
        with m.State("MAX1"):            # the last word is read back ...
            m.d.comb += aoff.eq(-1)
            m.d.sync += self.wrote.eq(0)
            m.next = "MAX2"
        with m.State("MAX2"):            # ... and compared; the zero word (ix = n) is read
            m.d.sync += ix.eq(0)
            m.next = "RUN_LOAD"

    def run_states(self):
        """RUN_LOAD, RUN (r0c from max S * C), then per element LOAD, MUL_A, MUL_B."""
        m, K, n_hi, ix, tp = self.m, self.K, self.n_hi, self.ix, self.tp
        use_rom, D, prev = self.use_rom, self.D, self.prev
        with m.State("RUN_LOAD"):        # D = max S - 0
            m.d.comb += [self.loading.eq(1), use_rom.eq(1)]
            m.d.sync += self.load
            m.d.sync += [self.Sum.eq(0), self.any_nl.eq(0), self.pmax.eq(0),
                         self.smax_ok.eq(0)]
            m.next = "RUN"
        with m.State("RUN"):             # max S * C: its low nibbles give r0c
            m.d.comb += use_rom.eq(1)
            m.d.sync += self.step
            m.d.comb += self.r0c_we.eq(1)
            with m.If(tp == K + n_hi - 1):
                m.d.comb += use_rom.eq(0)    # read S_0
                m.next = "LOAD"
        with m.State("LOAD"):            # D = max S - S_ix; digit 0's entry is read
            m.d.comb += [self.loading.eq(1), use_rom.eq(1)]
            m.d.sync += self.load
            m.next = "MUL_A"
        with m.State("MUL_A"):           # acc += d*C, shifted; r0c's nibble is read
            m.d.comb += self.use_r0c.eq(1)
            m.d.sync += [self.acc.eq(self.s >> 4), self.lowr.eq(self.low)]
            m.next = "MUL_B"
        with m.State("MUL_B"):           # the carry; the next digit's entry is read
            m.d.comb += use_rom.eq(1)
            m.d.sync += [D.eq(D >> 4), prev.eq(D[3]), tp.eq(tp + 1),
                         self.carry.eq(self.c_next)]
            m.next = "MUL_A"
            with m.If(tp == K - 1):
                # dead unless D < 2**(4k-1): D >> 4k is in D and bit 4k-1 in prev
                m.d.sync += self.deadX.eq((D != 0) | prev)
            with m.If(ge_const(tp, K, m)):
                m.d.sync += self.acc[self.u.acc_w - 4:].eq(self.w[:4])
            with m.If(tp == K + n_hi - 1):
                m.d.sync += [self.validX.eq(1), self.idx_r.eq(ix), ix.eq(ix + 1)]
                with m.If(ix == self.n - 1):
                    m.next = "DRAIN1"
                with m.Else():
                    m.d.comb += [use_rom.eq(0), self.aoff.eq(1)]     # read S_ix+1
                    m.next = "LOAD"

    def normaliser_states(self):
        """DRAIN1, DRAIN2, NORM_R, NORM_T: from_linear of rest and of total, the bias."""
        m, zr, msb = self.m, self.zr, self.msb
        with m.State("DRAIN1"):          # the last element is extracted ...
            m.next = "DRAIN2"
        with m.State("DRAIN2"):          # ... and accumulated: N <- rest
            m.d.comb += self.use_rom.eq(1)    # not the word being written (no_rw_check)
            m.d.sync += self.N_load + [zr.eq(self.sum_next == 0), self.ix.eq(0)]
            m.next = "NORM_R"
        with m.State("NORM_R"):          # from_linear(rest); then N <- total
            with m.If(~zr & ~msb):
                m.d.sync += self.N_shift
            with m.Else():
                m.d.comb += self.conv_add.eq(1)
                m.d.sync += [self.xr.eq(self.x_now)] + self.N_load
                m.next = "NORM_T"
        with m.State("NORM_T"):          # from_linear(total), then the error bias
            with m.If(~msb):
                m.d.sync += self.N_shift
            with m.Else():
                # M = max over the live exponents: pe of the others, xr at the label
                any_nl, pmax, xr = self.any_nl, self.pmax, self.xr
                Mx = Mux(any_nl & (zr | (pmax >= xr)), pmax, xr)
                moff = Signal.like(self.Moff)
                m.d.comb += moff.eq(Mx - self.fmt.emax)
                m.d.sync += [self.Moff.eq(moff),
                             self.ob.eq(Mux(any_nl | ~zr, moff - self.x_now, 0))]
                m.next = "OUT"

    def output_state(self):
        """OUT: one error code per cycle while ``o_stream.ready``."""
        m, ix, o = self.m, self.ix, self.u.o_stream
        with m.State("OUT"):
            m.d.comb += [o.valid.eq(1), self.aoff.eq(self.o_take)]
            with m.If(self.o_take):
                m.d.sync += ix.eq(ix + 1)
                with m.If(ix == self.n - 1):
                    m.d.sync += ix.eq(0)
                    m.next = "IN"
