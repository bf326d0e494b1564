"""The engine's datapath: one pass over one layer's weights at ``lanes`` weights per cycle.

Pass kinds (``docs/engine.md``), for layer ``l`` with ``R`` rows and ``W`` words per row
(weight ``(i, j)`` in bank ``j % lanes`` at ``i * W + j // lanes``):

======  ============  ========================================================================
kind    order         what it computes
======  ============  ========================================================================
``F``   rows outer    ``S = MAC(fwd(U_l), a_l)``: hidden layers write ``a_{l+1}`` (exponent
                      form) and its bias; the output layer streams ``S`` into the softmax
``UF``  rows outer    layer 0 only: the pending update ``U' = madam(U, V, e_0 (x) a_0^prev)``,
                      written back, and ``S = MAC(fwd(U'), a_0)`` of the next sample
``U``   rows outer    layer 0 only: the pending update alone (before idle)
``BU``  words outer   ``e_{l-1}[j] = MAC_j(fwd(U_l)[:, j], e_l)`` in lane ``j % lanes``'s own
                      accumulator (rows inner), masked by ``S_{l-1}[j] > 0``, and the update
                      ``U' = madam(U, V, e_l (x) a_l)`` from the same read
======  ============  ========================================================================

Stages, in cycles after a visit is counted (``RL`` memory read latency, ``Pc`` the read
converter's pipeline when backward errors are stored in linear form, ``Lu`` the update
engine's latency): the error element ``e_l[i]`` is read at 0 and requantised into a
register at ``X = RL + Pc + 1``; weights, state and ``a_l[j]`` are read at ``X - RL - 1``
and requantised at ``X``; the MAC takes its operands at ``X`` (``F``, ``BU``) or, behind the
update engines, at ``X + Lu + 2`` (``UF``: the new weight goes straight into the MAC); the
update engines take ``(U, V, G = e (x) a)`` at ``X + 1`` and their results are written back
at ``X + 1 + Lu``.

A unit serves a range of layers: all of them, or (a pipelined build) layer 0 in one unit,
stage A, and the others in a second, stage B. The vectors and tensor biases the two share
are :class:`~.vectors.Shared`, with two buffers of ``a_1`` and ``e_0`` (``hsel``, ``esel``).
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...golden.format import check_int
from ...golden.image import words_per_row
from ...golden.mlp import MLPConfig
from ..convert import FromLinear
from ..format import is_zero, lns_layout, requantize
from ..util.registered_read import RegisteredRead
from ..softmax import SoftmaxError
from ..update import MadamUpdate
from .mac import LaneMAC
from .pipe import VisitCounter, delay, table
from .softmax import ParallelSoftmax
from .vectors import Shared, exp_entry, lin_entry, read_exp, requant_pos

__all__ = ["PassUnit", "KIND_F", "KIND_UF", "KIND_U", "KIND_BU", "BIAS_BITS",
           "unit_geometry"]

KIND_F, KIND_UF, KIND_U, KIND_BU = 0, 1, 2, 3
#: width of every runtime tensor bias register
BIAS_BITS = 16


def pick(m: Module, values, index, name: str) -> Signal:
    """``values[index]`` for a list of equally shaped values (a mux; no mux for one)."""
    values = [Value.cast(v) for v in values]
    sig = Signal(values[0].shape(), name=name)
    m.d.comb += sig.eq(values[0] if len(values) == 1 else Array(values)[index])
    return sig


def unit_geometry(cfg: MLPConfig, lanes: int, bias_lane: bool) -> dict:
    """``rows``, ``cols``, ``wpr`` per layer, ``acc_bits`` (exact), ``x_bits`` and whether
    backward errors of hidden layers are stored in linear form (``e_linear``)."""
    nl = len(cfg.sizes) - 1
    cols = [cfg.sizes[l] + 1 for l in range(nl)]
    longest = max(max(cfg.sizes[:-1]) + 1, max(cfg.sizes[1:]))
    acc_bits = cfg.mac.exact_acc_bits(max(longest, 2))
    return {"rows": [cfg.sizes[l + 1] for l in range(nl)], "cols": cols,
            # the banked columns: all of them, or the inputs only when the bias has a lane
            "wpr": [words_per_row(c, lanes, bias_lane) for c in cols],
            "acc_bits": acc_bits,
            "x_bits": FromLinear.x_bits_for(acc_bits, cfg.fmt.frac_bits, cfg.mac.lsb_q),
            # backward errors of hidden layers leave `lanes` accumulators at once: linear
            # form, one converter where they are read (broadcast), unless there is one lane
            "e_linear": lanes > 1 and nl > 1}


class PassUnit(wiring.Component):
    """Weight banks, MAC, update engines (and, with the output layer, the softmax unit) of a
    range of layers, and one pass at a time over them (the pass kinds and stage timing are
    in the module docstring).

    Parameters
    ----------
    cfg : MLPConfig
        The model; ``fmt.bits <= 8``, seeding mode, layer widths up to 1024 (checked by
        :class:`~.engine.Engine`).
    lanes : int, a power of two, 1..64
        Weights per cycle (column banks of every layer).
    read_reg : int, 0..1
        Extra register after every memory read port (for the clock).
    conv_pipeline : int, 0..4
        Register stages of the converters (:class:`~lnsmadam.hw.convert.FromLinear`).
    mac_pipeline : int, 0..2 + log2(lanes)
        :class:`~.mac.LaneMAC` cuts.
    update_pipeline : int, 0..7
        :class:`~lnsmadam.hw.update.MadamUpdate` cuts.
    softmax : "serial" or "parallel"
        The digit-serial :class:`~lnsmadam.hw.softmax.SoftmaxError` (small, ~300 cycles
        for 10 classes) or :class:`~.softmax.ParallelSoftmax` (a multiplier and per-class
        logic, ~16 + n_out cycles).
    bias_lane : bool
        A lane of its own for each layer's bias column (``docs/engine.md``): the column
        banks then hold the ``n_l`` input columns only (``W = ceil(n_l / lanes)`` words per
        row, where the bias column costs a whole word when ``lanes`` divides ``n_l``), and
        the bias lane visits the row's bias weight beside the row's first word.
    layers : (first, last)
        The layers this unit serves (default all); ``layer`` and ``b_*layer`` count from
        ``first``.
    shared : Shared or None
        The vectors and tensor biases (default: the unit's own, single-buffered).

    Members
    -------
    start : In(1)
        Pulse, only while ``can_start``: begin a pass of ``kind`` (``KIND_*``) on ``layer``;
        ``a0_cur`` / ``a0_prev`` select the input buffers of the sample forwarded and of
        the sample whose layer-0 update is pending, ``hsel`` / ``esel`` the buffers of
        ``a_1`` / ``e_0`` (double-buffered shared vectors only).
    ready : Out(1)
        No pass in flight: its results, the new vector's bias and its weight writes are
        complete (the output layer's forward: its last logit is in the softmax unit).
    can_start : Out(1)
        The next pass may start: every visit of this one has passed the MAC and the update
        engines, its weights are written, and its bias step (if any) ends within ``X - 2``
        cycles, before the next pass first requantises with that bias.
    label : In(range(n_out))
        The sample's class, held from the output layer's forward until ``smx_done``.
    smx_first, smx_done : Out(1)
        Pulses: one cycle after the softmax unit's first error code (its bias is then in
        place, and the backward pass of the output layer may start: it reads each code
        after it is written), and its last. ``argmax`` (the prediction, first index on
        ties) is valid from ``smx_first`` until the next forward of the output layer.
    lr_step : In(7); u_bias, f_bias : In(ArrayLayout(signed(16), layers));
    e_clamp : In(ArrayLayout(weight exp_bits, layers))
        Run and per-layer constants (of this unit's layers), held while passes run.
    a0_we : In(lanes), a0_waddr, a0_wdata : In
        Write port of the input buffers (the loader's; a unit serving layer 0): bank
        enables, one word address (``buffer * W_0 + j // lanes``), a code per bank.
    b_host : In(1)
        The banks' ports serve the host's accesses below: high whenever the host may access
        (the engine is idle), low in every cycle of a pass. ``ready`` qualifies; the engine
        gives a register where it can (``ready`` is a wide function of the pipelines, and
        as the select of every bank port it was on the ECP5 critical path).
    b_addr, b_wdata, b_layer, b_bank, b_we_u, b_we_v, b_rlayer, b_rbank : In;
    b_rdata_u, b_rdata_v : Out
        The host's access to the weight / state banks while ``b_host``: a write of bank
        ``b_bank`` of layer ``b_layer`` in the cycle of ``b_we_*``; read data ``1 +
        read_reg`` cycles after ``b_addr``, of bank ``b_rbank`` of layer ``b_rlayer`` (held
        from the cycle after the address on: registers, so that the host's decode is not
        in the datapath's timing).

    Latency
    -------
    A pass of ``R x W`` visits keeps ``ready`` low for ``R * W`` cycles plus its drain:
    ``X + 1 + Lu`` for the weight writes, or for its results the MAC, the result converter
    and two bias cycles (backward at several lanes: the ``|S|`` maximum tree and the read
    converter too).

    Throughput
    ----------
    ``lanes`` weight visits per cycle in every pass kind.

    Notes
    -----
    Every pass needs the complete previous vector for its dynamic requantisation, so within
    a sample the passes run one after the other; ``can_start`` overlaps a pass's start with
    the previous pass's drain (``docs/engine.md``: the dependency chain).
    """

    def __init__(self, cfg: MLPConfig, lanes: int, read_reg: int = 1, conv_pipeline: int = 3,
                 mac_pipeline: int = 2, update_pipeline: int = 5, softmax: str = "serial",
                 bias_lane: bool = False, layers: tuple | None = None,
                 shared: Shared | None = None):
        self._MustUse__silence = True
        self.cfg = cfg
        if softmax not in ("serial", "parallel"):
            raise ValueError(f"softmax must be 'serial' or 'parallel', got {softmax!r}")
        self.softmax = softmax
        self.B = int(bool(bias_lane))
        self.lanes = L = lanes
        self.lb = lanes.bit_length() - 1
        self.nl = nl = len(cfg.sizes) - 1
        self.first, self.last = (0, nl - 1) if layers is None else layers
        self.own = list(range(self.first, self.last + 1))
        g = unit_geometry(cfg, lanes, bias_lane)
        self.rows, self.cols, self.wpr = g["rows"], g["cols"], g["wpr"]
        self.acc_bits, self.x_bits, self.e_linear = g["acc_bits"], g["x_bits"], g["e_linear"]
        self.read_reg = check_int("read_reg", read_reg, 0, 1)
        self.conv_pipeline = check_int("conv_pipeline", conv_pipeline, 0, len(FromLinear.CUTS))
        self.update_pipeline = check_int("update_pipeline", update_pipeline, 0, 7)
        self.mac = LaneMAC(cfg.mac, L, self.acc_bits, pipeline=mac_pipeline, tree_only=self.B)
        self.mac._MustUse__silence = True
        self.pc_e = self.conv_pipeline if self.e_linear else 0
        self.RL = 1 + self.read_reg
        self.X = self.RL + self.pc_e + 1
        self.Lu = self.update_pipeline + 1
        self.shared = shared
        Wf, Vf = cfg.madam.weight, cfg.madam.state
        n_out, n_own = cfg.sizes[-1], len(self.own)
        lay = range(max(n_own, 2))
        super().__init__({
            "start": In(1), "kind": In(2), "layer": In(lay), "a0_cur": In(2),
            "a0_prev": In(2), "hsel": In(1), "esel": In(1),
            "ready": Out(1, init=1), "can_start": Out(1, init=1),
            "label": In(range(max(n_out, 2))), "smx_first": Out(1), "smx_done": Out(1),
            "argmax": Out(range(max(n_out, 2))), "lr_step": In(7),
            "u_bias": In(data.ArrayLayout(signed(BIAS_BITS), n_own)),
            "f_bias": In(data.ArrayLayout(signed(BIAS_BITS), n_own)),
            "e_clamp": In(data.ArrayLayout(Wf.exp_bits, n_own)),
            "a0_we": In(L), "a0_waddr": In(range(max(4 * self.wpr[0], 2))),
            "a0_wdata": In(data.ArrayLayout(cfg.fmt.bits, L)),
            "b_host": In(1), "b_addr": In(16), "b_wdata": In(32), "b_layer": In(lay),
            "b_bank": In(range(max(L + self.B, 2))), "b_we_u": In(1), "b_we_v": In(1),
            "b_rlayer": In(lay), "b_rbank": In(range(max(L + self.B, 2))),
            "b_rdata_u": Out(Wf.bits), "b_rdata_v": Out(Vf.bits),
        })
        self._MustUse__silence = False

    @property
    def has_output(self) -> bool:
        """Whether this unit serves the output layer (and holds the softmax unit)."""
        return self.last == self.nl - 1

    # -- memories ---------------------------------------------------------------------------
    def _banks(self, m: Module) -> list:
        """``banks[i][b][kind] = (read address, read data, write port)`` of the unit's ``i``-th
        layer, kind u / v; bank ``lanes`` is the bias lane's (one word per row)."""
        cfg = self.cfg
        out = []
        for l in self.own:
            row = []
            for b in range(self.lanes + self.B):
                depth = max(self.rows[l] * (self.wpr[l] if b < self.lanes else 1), 2)
                ports = {}
                for kind, width in (("u", cfg.madam.weight.bits), ("v", cfg.madam.state.bits)):
                    mem = Memory(shape=unsigned(width), depth=depth, init=[],
                                 attrs={"no_rw_check": 1})
                    m.submodules[f"{kind}{l}_{b}"] = mem
                    rd = RegisteredRead(m, mem, f"{kind}{l}_{b}")
                    ports[kind] = (rd.addr, delay(m, rd.data, self.read_reg, f"{kind}{l}_{b}"),
                                   mem.write_port())
                row.append(ports)
            out.append(row)
        return out

    # -- elaboration ------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        cfg, L = self.cfg, self.lanes
        md = cfg.madam
        c = SimpleNamespace()
        sh = self.shared
        if sh is None:
            sh = Shared(cfg, L, self.wpr, bool(self.B), self.x_bits, self.acc_bits,
                        self.e_linear, self.read_reg, double=False, bias_bits=BIAS_BITS)
            sh.build(m)
        c.sh, c.vec = sh, sh.vec
        if self.first == 0:
            a0 = c.vec["a0"]
            m.d.comb += [a0.w_addr.eq(self.a0_waddr)]
            for b in range(L):
                m.d.comb += [a0.w_en[b].eq(self.a0_we[b]), a0.w_data[b].eq(self.a0_wdata[b])]
        c.banks = self._banks(m)
        m.submodules.mac = self.mac
        c.engines = []
        for b in range(L + self.B):
            eng = MadamUpdate(md, pipeline=self.update_pipeline, bias_bits=BIAS_BITS + 2,
                              runtime_lr=True)
            m.submodules[f"update{b}"] = eng
            m.d.comb += [eng.o_stream.ready.eq(1), eng.lr_step.eq(self.lr_step)]
            c.engines.append(eng)

        self._dbg = c                # for tests that look inside
        self._pass_registers(m, c)
        self._counter(m, c)
        self._read_side(m, c)
        self._update_side(m, c)
        self._mac_side(m, c)
        self._results(m, c)
        if self.has_output:
            self._softmax(m, c)
        else:
            c.logits_in = Const(0)
        self._bias_steps(m, c)
        # ready once the pass's results and its weight writes are complete; the next pass
        # may start (can_start) once every visit has passed the MAC and the update engines
        # and the bias step ends within X - 2 cycles: its requantisation, the first use of
        # the new vector, comes X cycles after its start
        with m.If(c.sw):
            m.d.sync += c.res_ok.eq(Mux(self.start, self.kind, c.kind) == KIND_U)
        with m.If(self.start):
            m.d.sync += c.wr_ok.eq(self.kind == KIND_F)
        with m.Elif(c.engines[0].o_stream.valid & c.wvc.end):
            m.d.sync += c.wr_ok.eq(1)
        near = c.step & (c.post <= self.X - 2) if self.X >= 2 else Const(0)
        m.d.comb += [self.ready.eq(c.res_ok & c.wr_ok & ~c.pend & c.pipe_empty),
                     self.can_start.eq(~c.pend & c.pipe_empty & c.wr_ok & (c.res_ok | near))]
        return m

    # -- the pass ---------------------------------------------------------------------------
    @staticmethod
    def _bias_read(regs, l, sel):
        """The value of a shared bias register of layer ``l`` (a buffer by ``sel`` when it
        has two)."""
        bufs = regs[l]
        return bufs[0] if len(bufs) == 1 else Mux(sel, bufs[1], bufs[0])

    @staticmethod
    def _bias_write(m, bufs, sel, value):
        """``value`` into the buffer ``sel`` of a shared bias register (sync)."""
        if len(bufs) == 1:
            m.d.sync += bufs[0].eq(value)
            return
        for k, reg in enumerate(bufs):
            with m.If(sel == k):
                m.d.sync += reg.eq(value)

    def _pass_registers(self, m, c):
        """The pass (kind, layer, buffers) and its constants, latched at ``start``; the
        per-sample tensor biases it reads."""
        cfg, nl = self.cfg, self.nl
        emax = cfg.fmt.emax
        own, n_own = self.own, len(self.own)
        c.kind, c.lay = Signal(2), Signal(range(max(n_own, 2)))
        c.a0_cur, c.a0_prev, c.hsel, c.esel = Signal(2), Signal(2), Signal(), Signal()
        with m.If(self.start):
            m.d.sync += [c.kind.eq(self.kind), c.lay.eq(self.layer), c.a0_cur.eq(self.a0_cur),
                         c.a0_prev.eq(self.a0_prev), c.hsel.eq(self.hsel),
                         c.esel.eq(self.esel)]
        c.is_f, c.is_uf, c.is_u, c.is_bu = (c.kind == k for k in (KIND_F, KIND_UF, KIND_U,
                                                                   KIND_BU))
        c.row_major = ~c.is_bu
        c.updating = c.is_uf | c.is_u | c.is_bu
        c.rows_m1 = table(m, [self.rows[l] - 1 for l in own], c.lay, "rows_m1")
        c.wpr_m1 = table(m, [self.wpr[l] - 1 for l in own], c.lay, "wpr_m1")
        c.wpr_t = table(m, [self.wpr[l] for l in own], c.lay, "wpr_t")
        c.res_ok, c.wr_ok = Signal(init=1), Signal(init=1)
        #: is the unit's layer `lay` absolute layer l
        c.at_layer = lambda lay, l: (lay == l - self.first) if l in own else Const(0)

        # the result side's pass (MAC results, the new vector, its bias step): it takes the
        # pass at its start, or, when the pass started early, once the previous pass's
        # results are complete (c.sw)
        c.t_kind, c.t_lay = Signal(2), Signal(range(max(n_own, 2)))
        c.t_hsel, c.t_esel = Signal(), Signal()
        c.pend, c.res_fin, c.sw = Signal(), Signal(), Signal()
        m.d.comb += c.sw.eq((self.start & (c.res_ok | c.res_fin)) | (c.pend & c.res_fin))
        with m.If(c.sw):
            new = lambda port, reg: Mux(self.start, port, reg)       # noqa: E731
            m.d.sync += [c.t_kind.eq(new(self.kind, c.kind)), c.t_lay.eq(new(self.layer, c.lay)),
                         c.t_hsel.eq(new(self.hsel, c.hsel)), c.t_esel.eq(new(self.esel, c.esel)),
                         c.pend.eq(0)]
        with m.Elif(self.start):
            m.d.sync += c.pend.eq(1)
        c.t_bu = c.t_kind == KIND_BU
        c.t_tree = (c.t_kind == KIND_F) | (c.t_kind == KIND_UF)
        c.t_last = c.at_layer(c.t_lay, nl - 1)
        c.t_rows_m1 = table(m, [self.rows[l] - 1 for l in own], c.t_lay, "t_rows_m1")
        c.t_wpr_m1 = table(m, [self.wpr[l] - 1 for l in own], c.t_lay, "t_wpr_m1")

        # the tensor biases this unit reads: of its layers' inputs a_l and errors e_l
        sh, B = c.sh, signed(BIAS_BITS)
        rd = self._bias_read
        c.ab = {l: rd(sh.ab, l, c.hsel) for l in own}
        c.ab_t = {l: rd(sh.ab, l, c.t_hsel) for l in own}
        c.ka = [rd(sh.ka, l, c.hsel) for l in own]
        c.cc = [rd(sh.cc, l, c.hsel) for l in own]
        c.eb = {l: rd(sh.eb, l, c.esel) for l in own}
        c.ke = [rd(sh.ke, l, c.esel) for l in own]
        ub = [self.u_bias[i] for i in range(n_own)]
        fb = [self.f_bias[i] for i in range(n_own)]
        # fwd(U) = round((E + ub) / 2**s) - fb = (E + kf) >> s with one per-pass constant
        # kf = ub + 2**(s-1) - fb * 2**s (fb is a whole number of steps of 2**s)
        sf = cfg.madam.weight.frac_bits - cfg.fmt.frac_bits
        c.kf = Signal(signed(BIAS_BITS + sf + 2))
        n = self.layer
        with m.If(self.start):
            m.d.sync += c.kf.eq(pick(m, ub, n, "ub_n") + ((1 << sf) >> 1)
                                - (pick(m, fb, n, "fb_n") << sf))
        # gb: the gradient's bias (eb + ab + emax), for the update engines; pb: a forward
        # result's (fb + ab) and bb: a backward result's less emax (fb + eb - emax), for the
        # bias step. Registers that follow the bias registers every cycle: a pass may start
        # before the previous one's bias step has written them (they are needed later)
        wide = signed(BIAS_BITS + 2)
        c.pb, c.gb, c.bb = Signal(wide), Signal(wide), Signal(wide)
        fb_t = pick(m, fb, c.t_lay, "fb_t")
        ab_t = pick(m, [c.ab_t[l] for l in own], c.t_lay, "ab_t")
        eb_t = pick(m, [c.eb[l] for l in own], c.t_lay, "eb_t")
        eb_i = pick(m, [c.eb[l] for l in own], c.lay, "eb_i")
        ab_i = pick(m, [c.ab[l] for l in own], c.lay, "ab_i")
        m.d.sync += [c.gb.eq(eb_i + ab_i + emax), c.pb.eq(fb_t + ab_t),
                     c.bb.eq(fb_t + eb_t - emax)]
        c.ka_p = pick(m, c.ka, c.lay, "ka_p")
        c.cc_p = pick(m, c.cc, c.lay, "cc_p")
        c.ke_p = pick(m, c.ke, c.lay, "ke_p")
        c.ecl = pick(m, [self.e_clamp[i] for i in range(n_own)], c.lay, "ecl")

    def _counter(self, m, c):
        """Stage 0: the visit counter, and ``c.at(s)`` = (valid, first, last) of the visit
        counted ``s`` cycles ago."""
        rows = [self.rows[l] for l in self.own]
        wpr_ = [self.wpr[l] for l in self.own]
        n_max = max(max(r * w for r, w in zip(rows, wpr_)), 4 * self.wpr[0], max(rows) + 1)
        c.issuing = Signal()
        c.vc = VisitCounter(m, "vc", c.row_major, c.rows_m1, c.wpr_m1, c.wpr_t, self.start,
                            c.issuing, n_max)
        c.wvc = VisitCounter(m, "wvc", c.row_major, c.rows_m1, c.wpr_m1, c.wpr_t, self.start,
                             c.engines[0].o_stream.valid, n_max)
        with m.If(self.start):
            m.d.sync += c.issuing.eq(1)
        with m.Elif(c.issuing & c.vc.end):
            m.d.sync += c.issuing.eq(0)
        # (valid, first, last, w0: the bias lane's visit) of each visit up to the update
        # engines' stage X + 1, beyond it only valid (the fused UF pass frames its MAC
        # vectors with its own word counter)
        stages = [Cat(c.issuing, c.vc.first, c.vc.last, c.vc.w == 0)]
        for s in range(1, self.X + self.Lu + 3):
            prev = stages[-1] if s <= self.X + 1 else stages[-1][0]
            stages.append(delay(m, prev, 1, f"ctl{s}"))
        c.at = lambda s: (stages[s][0], stages[s][1], stages[s][2]) if s <= self.X + 1 \
            else (stages[s][0], None, None)
        c.w0_at = lambda s: stages[s][3]
        c.pipe_empty = Signal()
        m.d.comb += c.pipe_empty.eq(~c.issuing & ~Cat(*(st[0] for st in stages[1:])).any())

    def _vec_base(self, name, sel):
        """Word offset of the buffer ``sel`` of a shared vector (0 when it has one)."""
        sh = self.shared
        if sh is None or not sh.double or name not in ("h1", "e0"):
            return 0
        return Mux(sel, sh.depth[name], 0)

    def _read_side(self, m, c):
        """Operand registers at stage X: ``u_x``, ``v_x`` (stored weight, state), ``wf_x``
        (forward weight), ``a_x`` (activation code), ``live_x`` (its ReLU flag), ``e_x``
        (the broadcast error code)."""
        cfg, L, own = self.cfg, self.lanes, self.own
        fmt, Wf, Vf = cfg.fmt, cfg.madam.weight, cfg.madam.state
        DA = self.X - self.RL - 1
        c.e_x = Signal(fmt.bits)
        lin_d = delay(m, c.vc.lin, DA, "lin_ra")
        w_d = delay(m, c.vc.w, DA, "w_ra")
        c.i_d = i_d = delay(m, c.vc.i, DA, "i_ra")
        self._error_read(m, c, i_d)
        NB = L + self.B
        for i in range(len(own)):
            for b in range(NB):
                # the bias lane's bank holds one word per row
                adr = lin_d if b < L else i_d
                for k in ("u", "v"):
                    m.d.comb += c.banks[i][b][k][0].eq(Mux(self.b_host, self.b_addr, adr))
        nown = range(len(own))
        # with read_reg the host's read data leave through muxes of their own (bank, then
        # layer), so that the host select does not sit in front of every lane's
        # forward-weight conversion: lay -> host-select LUT -> every lane's layer pick ->
        # wf_x was the 32-lane ULX3S-85F critical path (29.2 ns, 20.5 of them routing). It
        # costs one bank mux more per layer, so the iCEBreaker (read_reg = 0) shares them.
        lsel = c.lay if self.read_reg else Mux(self.b_host, self.b_rlayer, c.lay)
        u_rd = [pick(m, [c.banks[i][b]["u"][1] for i in nown], lsel, f"u_rd{b}")
                for b in range(NB)]
        v_rd = [pick(m, [c.banks[i][b]["v"][1] for i in nown], lsel, f"v_rd{b}")
                for b in range(NB)]
        if self.read_reg:
            for k, port in (("u", self.b_rdata_u), ("v", self.b_rdata_v)):
                per_layer = [pick(m, [c.banks[i][b][k][1] for b in range(NB)], self.b_rbank,
                                  f"b_{k}{i}") for i in nown]
                m.d.comb += port.eq(pick(m, per_layer, self.b_rlayer, f"b_{k}"))
        else:
            m.d.comb += [self.b_rdata_u.eq(pick(m, u_rd, self.b_rbank, "b_u")),
                         self.b_rdata_v.eq(pick(m, v_rd, self.b_rbank, "b_v"))]

        # a_0 from the input buffers (codes), a_l (l >= 1) requantised where read
        if self.first == 0:
            a0 = c.vec["a0"]
            c.buf_base = Array(Const(k * self.wpr[0], range(4 * self.wpr[0] + 1))
                               for k in range(4))
            m.d.comb += a0.r_addr[0].eq(c.buf_base[Mux(c.is_uf | c.is_u, c.a0_prev,
                                                       c.a0_cur)] + w_d)
        for l in own:
            if l >= 1:
                m.d.comb += c.vec[f"h{l}"].r_addr[0].eq(self._vec_base(f"h{l}", c.hsel) + w_d)
        c.u_x = [Signal(Wf.bits, name=f"u_x{b}") for b in range(NB)]
        c.v_x = [Signal(Vf.bits, name=f"v_x{b}") for b in range(NB)]
        c.wf_x = [Signal(fmt.bits, name=f"wf_x{b}") for b in range(NB)]
        c.a_x = [Signal(fmt.bits, name=f"a_x{b}") for b in range(NB)]
        c.live_x = Signal(L)
        if self.B:
            # the bias lane's input is the constant 1 (a_0's code emax, or the requantised
            # constant of a_l), beside the row's first word only; ZERO otherwise
            one = Mux(c.at_layer(c.lay, 0), fmt.emax, c.cc_p)
            m.d.sync += [c.u_x[L].eq(u_rd[L]), c.v_x[L].eq(v_rd[L]),
                         c.wf_x[L].eq(self._fwd(u_rd[L], c.kf)),
                         c.a_x[L].eq(Mux(c.w0_at(self.X - 1), one, 0))]
        for b in range(L):
            codes, lives = [], []
            for l in own:
                if l == 0:
                    codes.append(c.vec["a0"].r_data[0][b])
                    lives.append(Const(1))
                else:
                    ent = c.vec[f"h{l}"].view(0, b)
                    codes.append(read_exp(fmt, ent, c.ka_p, c.cc_p))
                    lives.append(ent.live)
            m.d.sync += [c.u_x[b].eq(u_rd[b]), c.v_x[b].eq(v_rd[b]),
                         c.wf_x[b].eq(self._fwd(u_rd[b], c.kf)),
                         c.a_x[b].eq(pick(m, codes, c.lay, f"a_rd{b}")),
                         c.live_x[b].eq(pick(m, lives, c.lay, f"live_rd{b}"))]

    def _error_read(self, m, c, i_d):
        """``c.e_x`` (registered at X): the code of ``e_lay[i]`` with offset ``ke``. Linear
        form: read at 0, the read converter, requantised; exponent form: read at X - RL - 1."""
        cfg, nl, lb, own = self.cfg, self.nl, self.lb, self.own
        fmt = cfg.fmt
        i = c.vc.i
        c.conv_e = None
        lin_layers = [l for l in own if self.e_linear and l < nl - 1]
        outs = []
        if lin_layers:
            # the read converter: the element read, or (in a bias step) the largest |S|
            c.conv_e = m.submodules.conv_e = FromLinear(
                self.acc_bits, fmt.frac_bits, cfg.mac.mid_bits, cfg.mac.lsb_q,
                pipeline=self.conv_pipeline)
            c.conv_e_in, c.conv_e_sel = Signal(signed(self.acc_bits)), Signal()
            bank = delay(m, i[:lb], self.RL, "e_bank")
            ents = []
            for l in lin_layers:
                v = c.vec[f"e{l}"]
                m.d.comb += v.r_addr[0].eq(self._vec_base(f"e{l}", c.esel) + (i >> lb))
                ents.append(data.View(lin_entry(self.acc_bits),
                                      pick(m, v.r_data[0], bank, f"e{l}_rd")))
            # the lin layers are the unit's first ones (all but the output layer)
            ent = ents[0] if len(ents) == 1 else data.View(
                lin_entry(self.acc_bits),
                pick(m, [e.as_value() for e in ents] + [Const(0, ents[0].shape().size)] *
                     (len(own) - len(ents)), c.lay, "e_lin_rd"))
            m.d.comb += c.conv_e.S.eq(Mux(c.conv_e_sel, c.conv_e_in, ent.S))
            dead = delay(m, ent.dead, self.conv_pipeline, "e_dead")
            conv = c.conv_e
            lin_code = requant_pos(fmt, conv.sign, conv.x + c.ke_p, conv.zero | dead)
        for l in own:
            if l in lin_layers:
                outs.append(lin_code)
            else:
                v = c.vec[f"e{l}"]
                m.d.comb += v.r_addr[0].eq(self._vec_base(f"e{l}", c.esel) + i_d)
                outs.append(read_exp(fmt, v.view(0, 0), c.ke_p, 0))
        m.d.sync += c.e_x.eq(pick(m, outs, c.lay, "e_code"))

    def _update_side(self, m, c):
        """Update engines: ``(U, V, G = e (x) a)`` at X + 1, written back at X + 1 + Lu;
        ``c.wf2``: the forward weights of their results (UF), at X + 2 + Lu."""
        fmt, L = self.cfg.fmt, self.lanes
        code_l = lns_layout(fmt)
        v1 = c.at(self.X + 1)[0]
        ev = data.View(code_l, c.e_x)
        NB = len(c.engines)
        u_x1 = [delay(m, c.u_x[b], 1, f"u_x1_{b}") for b in range(NB)]
        v_x1 = [delay(m, c.v_x[b], 1, f"v_x1_{b}") for b in range(NB)]
        c.wf2 = [Signal(fmt.bits, name=f"wf2_{b}") for b in range(NB)]
        for b, eng in enumerate(c.engines):
            # the bias lane updates once per row, beside the row's first word
            valid = v1 & c.updating & (c.w0_at(self.X + 1) if b == L else 1)
            av = data.View(code_l, c.a_x[b])
            g = Signal(fmt.bits, name=f"g{b}")
            m.d.sync += g.eq(requantize(fmt, ev.sign ^ av.sign, ev.exp + av.exp - fmt.emax,
                                        is_zero(ev) | is_zero(av)))
            p = eng.i_stream.payload
            m.d.comb += [eng.i_stream.valid.eq(valid), p.w.as_value().eq(u_x1[b]),
                         p.v.as_value().eq(v_x1[b]), p.g.as_value().eq(g),
                         eng.g_bias.eq(c.gb), eng.e_clamp.eq(c.ecl)]
            o = eng.o_stream.payload
            m.d.sync += c.wf2[b].eq(self._fwd(o.w_new.as_value(), c.kf))
            hit = self.b_bank == b
            for i in range(len(self.own)):
                for k, val, we in (("u", o.w_new.as_value(), self.b_we_u),
                                   ("v", o.v_new.as_value(), self.b_we_v)):
                    wp = c.banks[i][b][k][2]
                    adr = c.wvc.lin if b < L else c.wvc.i
                    # (while the engine runs and this unit is between passes its
                    # update engines are empty: no write is due)
                    m.d.comb += [wp.addr.eq(Mux(self.b_host, self.b_addr, adr)),
                                 wp.data.eq(Mux(self.b_host, self.b_wdata, val)),
                                 wp.en.eq(Mux(self.b_host, we & hit & (self.b_layer == i),
                                              eng.o_stream.valid & (c.lay == i)))]

    def _mac_side(self, m, c):
        """MAC operands: F and BU at X (forward weight with the activation / the error), UF
        at X + Lu + 2 (the updated weight's forward weight with a_0 of the next sample, read
        from the input buffer RL cycles before)."""
        L, RL, W0 = self.lanes, self.RL, self.wpr[0]
        mac = self.mac
        sU = self.X + self.Lu + 2
        vX, fX, lX = c.at(self.X)
        if self.first == 0:
            a0 = c.vec["a0"]
            w2 = Signal(range(W0 + 1))
            with m.If(self.start):
                m.d.sync += w2.eq(0)
            with m.Elif(c.at(sU - RL)[0]):
                m.d.sync += w2.eq(Mux(w2 == W0 - 1, 0, w2 + 1))
            m.d.comb += a0.r_addr[1].eq(c.buf_base[c.a0_cur] + w2)
            a_uf = [a0.r_data[1][b] for b in range(L)]
            vU = c.at(sU)[0]
            fl = delay(m, Cat(w2 == 0, w2 == W0 - 1), RL, "w2_fl")
            fU, lU = fl[0], fl[1]
            is_uf = c.is_uf
        else:
            a_uf, vU, fU, lU, is_uf = [0] * L, Const(0), Const(0), Const(0), Const(0)
        for b in range(L):
            m.d.comb += [mac.a[b].as_value().eq(Mux(is_uf, c.wf2[b], c.wf_x[b])),
                         mac.b[b].as_value().eq(Mux(is_uf, a_uf[b],
                                                    Mux(c.is_bu, c.e_x, c.a_x[b])))]
        if self.B:
            # the bias lane: its (new) weight times the constant 1 beside the first word
            m.d.comb += [mac.a[L].as_value().eq(Mux(is_uf, c.wf2[L], c.wf_x[L])),
                         mac.b[L].as_value().eq(Mux(is_uf, Mux(fU, self.cfg.fmt.emax, 0),
                                                    c.a_x[L]))]
        m.d.comb += [mac.valid.eq(Mux(is_uf, vU, vX & (c.is_f | c.is_bu))),
                     mac.first.eq(Mux(is_uf, fU, fX)), mac.last.eq(Mux(is_uf, lU, lX)),
                     mac.lane_mode.eq(c.t_bu)]

    def _results(self, m, c):
        """MAC results into the next vector and its running maximum: exponent form through
        the result converter (hidden forward results; backward results at one lane), linear
        form straight from the lane accumulators (backward results at several lanes)."""
        cfg, nl, L, lb, own = self.cfg, self.nl, self.lanes, self.lb, self.own
        fmt, mac, Pc = cfg.fmt, self.mac, self.conv_pipeline
        conv = m.submodules.conv_o = FromLinear(self.acc_bits, fmt.frac_bits, cfg.mac.mid_bits,
                                                cfg.mac.lsb_q, pipeline=Pc)
        m.d.comb += conv.S.eq(mac.acc[0])
        live_mac = delay(m, c.live_x, mac.latency(True), "live_mac")
        exp_bwd = c.t_bu if not self.e_linear else Const(0)
        c.rv = rv = delay(m, mac.done & ((c.t_tree & ~c.t_last) | exp_bwd), Pc, "res_v")
        live_r = delay(m, live_mac[0], Pc, "res_live")
        lin_done = mac.done & c.t_bu if self.e_linear else Const(0)
        c.rc = rc = Signal(range(max(max(self.rows), max(self.wpr)) + 2))
        with m.If(c.sw):
            m.d.sync += rc.eq(0)
        with m.Elif(rv | lin_done):
            m.d.sync += rc.eq(rc + 1)
        n_res_m1 = Mux(c.t_bu, c.t_wpr_m1, c.t_rows_m1)
        c.last_res = (rv | lin_done) & (rc == n_res_m1)

        # exponent form: hidden forward (ReLU: live = S > 0), one-lane backward (the column
        # mask: live = S != 0 and S_{l-1}[j] > 0)
        live = ~conv.zero & Mux(c.t_bu, live_r, ~conv.sign)
        w = Signal(exp_entry(self.x_bits))
        m.d.comb += [w.x.eq(conv.x), w.sign.eq(c.t_bu & conv.sign), w.live.eq(live)]
        c.mx, c.any = Signal(signed(self.x_bits)), Signal()
        with m.If(c.sw):
            m.d.sync += c.any.eq(0)
        with m.Elif(rv & live & (~c.any | (conv.x > c.mx))):
            m.d.sync += [c.mx.eq(conv.x), c.any.eq(1)]
        for l in own:
            if l < nl - 1:                   # hidden layer l writes a_{l+1}
                h = c.vec[f"h{l + 1}"]
                m.d.comb += h.w_addr.eq(self._vec_base(f"h{l + 1}", c.t_hsel) + (rc >> lb))
                for b in range(L):
                    m.d.comb += [h.w_data[b].eq(w.as_value()),
                                 h.w_en[b].eq(rv & ~c.t_bu & c.at_layer(c.t_lay, l)
                                              & ((rc[:lb] == b) if lb else 1))]
            if l >= 1 and not self.e_linear:     # layer l's backward writes e_{l-1}
                e = c.vec[f"e{l - 1}"]
                m.d.comb += [e.w_addr.eq(self._vec_base(f"e{l - 1}", c.t_esel) + rc),
                             e.w_data[0].eq(w.as_value()),
                             e.w_en[0].eq(rv & c.t_bu & c.at_layer(c.t_lay, l))]

        # linear form: every lane's word at once, and max |S| over the live lanes through a
        # tree with one register level per comparison
        c.smax, c.any_l, c.tree_lat = Signal(self.acc_bits), Signal(), 0
        bwd = [l for l in own if l >= 1]
        if not self.e_linear or not bwd:
            return
        level = []
        for b in range(L):
            S = mac.acc[b]
            ew = Signal(lin_entry(self.acc_bits), name=f"e_w{b}")
            m.d.comb += [ew.S.eq(S), ew.dead.eq(~live_mac[b] | (S == 0))]
            for l in bwd:
                e = c.vec[f"e{l - 1}"]
                m.d.comb += [e.w_data[b].eq(ew.as_value()),
                             e.w_en[b].eq(lin_done & c.at_layer(c.t_lay, l))]
            mag = Signal(self.acc_bits, name=f"smag{b}")
            m.d.comb += mag.eq(Mux(ew.dead, 0, Mux(S[-1], -S, S)))
            level.append(mag)
        for l in bwd:
            m.d.comb += c.vec[f"e{l - 1}"].w_addr.eq(self._vec_base(f"e{l - 1}", c.t_esel)
                                                      + rc)
        while len(level) > 1:
            nxt = []
            for k in range(0, len(level) - 1, 2):
                r = Signal(self.acc_bits, name=f"smax{c.tree_lat}_{k}")
                m.d.sync += r.eq(Mux(level[k] > level[k + 1], level[k], level[k + 1]))
                nxt.append(r)
            if len(level) % 2:
                nxt.append(delay(m, level[-1], 1, f"smax{c.tree_lat}_odd"))
            level = nxt
            c.tree_lat += 1
        vt = delay(m, lin_done, c.tree_lat, "smax_v")
        with m.If(c.sw):
            m.d.sync += [c.smax.eq(0), c.any_l.eq(0)]
        with m.Elif(vt & (level[0] > c.smax)):
            m.d.sync += [c.smax.eq(level[0]), c.any_l.eq(1)]

    def _softmax(self, m, c):
        """The output layer's words stream into the softmax unit as they are finished; its
        error codes go to the last error memory (exponent form, offset 0)."""
        cfg, nl = self.cfg, self.nl
        mac = self.mac
        n_out = self.rows[-1]
        if self.softmax == "serial":
            smx = SoftmaxError(cfg, bias_bits=BIAS_BITS)
        else:
            smx = ParallelSoftmax(cfg, bias_bits=BIAS_BITS, conv_pipeline=self.conv_pipeline)
        m.submodules.softmax = smx
        m.d.comb += [smx.i_stream.valid.eq(mac.done & c.t_tree & c.t_last),
                     smx.i_stream.payload.S.eq(mac.acc[0]), smx.label.eq(self.label),
                     smx.o_stream.ready.eq(1), self.argmax.eq(smx.argmax)]
        # the logit bias: it only changes at the bias step of the layer below, which never
        # overlaps the softmax unit's vector
        bias = Signal(signed(BIAS_BITS))
        m.d.sync += bias.eq(self.f_bias[nl - 1 - self.first] + c.ab[nl - 1])
        m.d.comb += smx.bias.eq(bias)
        n_logit = Signal(range(n_out + 1))
        with m.If(c.sw):
            m.d.sync += n_logit.eq(0)
        with m.Elif(smx.i_stream.valid):
            m.d.sync += n_logit.eq(n_logit + 1)
        c.logits_in = smx.i_stream.valid & (n_logit == n_out - 1)
        so = smx.o_stream
        e = c.vec[f"e{nl - 1}"]
        sw = Signal(exp_entry(self.x_bits))
        m.d.comb += [sw.x.eq(so.payload.code.exp), sw.sign.eq(so.payload.code.sign),
                     sw.live.eq(~is_zero(so.payload.code)),
                     e.w_addr.eq(so.payload.index), e.w_data[0].eq(sw.as_value()),
                     e.w_en[0].eq(so.valid), c.sh.ke[nl - 1][0].eq(0)]
        first_out = so.valid & (so.payload.index == 0)
        m.d.sync += [self.smx_first.eq(first_out),
                     self.smx_done.eq(so.valid & (so.payload.index == n_out - 1))]
        with m.If(first_out):
            m.d.sync += c.sh.eb[nl - 1][0].eq(smx.o_bias)

    def _bias_steps(self, m, c):
        """After a pass's last result: the new vector's bias and read offset.

        Forward into ``a_{l+1}``: ``t = max x + fb + ab``, ``M = max(t, 0)`` (the constant 1
        has ``x = 0``), ``a_bias = M - emax``, read offset ``k = fb + ab - a_bias``, constant
        code ``requant(emax - M)``. Backward into ``e_{l-1}``: ``e_bias = x_max + fb + eb -
        emax`` (0 when nothing is live), read offset ``emax - x_max``.
        """
        cfg, nl, sh, own = self.cfg, self.nl, c.sh, self.own
        fmt, emax, Pc = cfg.fmt, cfg.fmt.emax, self.conv_pipeline
        lin = self.e_linear and any(l >= 1 for l in own)
        # countdown from the last result: the exponent maximum is settled one cycle after
        # it; the linear one after the tree, then it passes the read converter (of the
        # layer below, in this unit when it serves that layer's error too)
        wait = c.tree_lat + 2 + Pc if lin else 1
        post = Signal(range(max(wait, 2) + 1))
        step = Signal()
        with m.If(c.sw):
            m.d.sync += step.eq(0)
        with m.Elif(c.last_res):
            m.d.sync += [step.eq(1), post.eq(Mux(c.t_bu, wait, 2))]
        with m.Elif(step):
            m.d.sync += post.eq(post - 1)
            with m.If(post == 0):
                m.d.sync += step.eq(0)
        fin = step & (post == 0)
        c.step, c.post = step, post
        m.d.comb += c.res_fin.eq(fin | c.logits_in)
        conv = self._max_converter(m, c, lin)
        if lin:
            m.d.comb += [conv.S.eq(c.smax) if conv is not c.conv_e else c.conv_e_in.eq(c.smax)]
            if conv is c.conv_e:
                m.d.comb += c.conv_e_sel.eq(step & c.t_bu & (post == Pc))
        with m.If(c.logits_in):
            m.d.sync += c.res_ok.eq(1)

        # t and M are registers: the bias step is two cycles after the last result's max
        t = Signal(signed(BIAS_BITS + 3))
        m.d.sync += t.eq(c.mx + c.pb)
        M = Signal(signed(BIAS_BITS + 3))
        m.d.sync += M.eq(Mux(c.any & (t > 0), t, 0))
        wr = self._bias_write
        for l in own:
            if l < nl - 1:
                with m.If(fin & ~c.t_bu & c.at_layer(c.t_lay, l)):
                    wr(m, sh.ab[l + 1], c.t_hsel, M - emax)
                    wr(m, sh.ka[l + 1], c.t_hsel, c.pb + emax - M)
                    wr(m, sh.cc[l + 1], c.t_hsel, requant_pos(fmt, 0, emax - M, 0))
                    m.d.sync += c.res_ok.eq(1)
        xm, anyb = (conv.x, c.any_l) if lin else (c.mx, c.any)
        for l in own:
            if l >= 1:
                with m.If(fin & c.t_bu & c.at_layer(c.t_lay, l)):
                    wr(m, sh.eb[l - 1], c.t_esel, Mux(anyb, xm + c.bb, 0))
                    wr(m, sh.ke[l - 1], c.t_esel, emax - xm)
                    m.d.sync += c.res_ok.eq(1)

    def _max_converter(self, m, c, lin):
        """The converter that turns max |S| into the backward error's exponent: the unit's
        read converter when it reads that error itself, else one of its own."""
        if not lin:
            return None
        if c.conv_e is not None:
            return c.conv_e
        cfg = self.cfg
        conv = m.submodules.conv_max = FromLinear(self.acc_bits, cfg.fmt.frac_bits,
                                                  cfg.mac.mid_bits, cfg.mac.lsb_q,
                                                  pipeline=self.conv_pipeline)
        return conv

    def _fwd(self, u_code, kf):
        """``forward_weights`` of one stored weight code (round to the forward format, the
        layer's biases folded into ``kf``)."""
        fmt, Wf = self.cfg.fmt, self.cfg.madam.weight
        s = Wf.frac_bits - fmt.frac_bits
        w = data.View(lns_layout(Wf), u_code)
        return requantize(fmt, w.sign, (w.exp + kf) >> s, is_zero(w))
