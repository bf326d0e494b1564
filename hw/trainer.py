"""The on-device trainer: :mod:`lnsmadam.golden.mlp`'s training step as a sequencer.

:class:`Trainer` holds the data set, the weights and the LNS-Madam state in
``lib.memory.Memory`` blocks and runs, per sample, exactly ``LNSMLP.step``:

====================  ===================================================================
phase                 what it computes (golden name)
====================  ===================================================================
``LOAD``              input codes of the sample plus the constant 1 (``input_codes``)
``FWD l``             ``S_l = MAC(W_l, a_l)``, ``W_l = forward_weights(U_l)`` on the fly;
                      hidden layers: ``x + biases``, ReLU, running max (``_hidden``)
``HREQ l``            dynamic requantisation into ``a_{l+1}`` (``_requant_dynamic``)
``SMX``               softmax cross-entropy error (:class:`~.softmax.SoftmaxError`)
``BWD l``             ``e_{l-1} = MAC(W_l[:, :-1]^T, e_l)``, ReLU mask; ``EREQ l`` requantises
``UPD l``             ``G_l = e_l (x) a_l`` on the fly and :class:`~.update.MadamUpdate`
                      (``madam_step``), written back in place
====================  ===================================================================

The epoch order comes from :class:`~.shuffle.Shuffler` (``golden.baseline.epoch_order``
of ``(seed, epoch_base + epoch)``). ``EVALUATE`` runs ``LOAD``/``FWD`` over the test set and
counts ``argmax(S_L) == label`` (lowest index on ties, as ``LNSMLP.predict``).

Lanes. Every weight row is stored in ``lanes`` banks (weight ``(i, j)`` in bank
``j % lanes`` at ``i * wpr + j // lanes``, ``wpr = ceil(cols / lanes)``; padding is ZERO and
stays ZERO), and so are the activation vectors. The forward pass and the update then take
``lanes`` weights per cycle (one :class:`~.mac.LNSMAC` of ``lanes`` lanes and ``lanes``
update engines); the backward pass reads columns, one weight per cycle. The accumulator is
required to be exact for the longest dot product (``MACConfig.exact_acc_bits``), so the
lane grouping cannot change a result.

Timing, per training sample of a ``n_0 - n_1 - ... - n_L`` MLP with ``c_l = n_l + 1``
columns: about ``n_0 + 1 + sum_l n_{l+1} * ceil(c_l / lanes)`` (forward)
``+ sum_{l>=1} n_l * n_{l+1}`` (backward) ``+ sum_l n_{l+1} * ceil(c_l / lanes)`` (update)
cycles, plus ~10-20 cycles of pipeline drain per phase (``bench/trainer_cycles.py``
measures it).

The host reaches everything through :data:`~.bus.MemBus` (only while idle) and
:data:`~.bus.ControlSignature`; the region map is ``docs/protocol.md`` §7 and
:meth:`Trainer.regions`.
"""

from __future__ import annotations

from dataclasses import replace

from amaranth.hdl import Array, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, fifo, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from lnsmadam.golden.format import check_int
from lnsmadam.golden.mlp import MLPConfig

# the region map (register addresses, record layout) is defined once, beside the host's
# packing functions; regs: REGS words, then 4 words per layer from LAYER_REGS
from lnsmadam.host.image import LAYER_REGS, REGS, record_words

from .bus import ControlSignature, MemBus
from .format import is_zero, lns_layout, requantize, signed_bits
from .mac import LNSMAC
from .update import MadamUpdate

__all__ = ["Trainer", "REGS", "record_words"]

#: width of every runtime tensor bias register
BIAS_BITS = 16


def _wpr(cols: int, lanes: int) -> int:
    return -(-cols // lanes)


class Trainer(wiring.Component):
    """Per-sample integer MLP training and evaluation, bit-exact with ``golden.mlp``.

    Parameters
    ----------
    cfg : MLPConfig
        The model (sizes, formats, MAC, LNS-Madam). Supported: ``fmt.bits <= 8`` (two codes
        per data word), seeding mode (``madam.bias_correction`` False), an accumulator that
        cannot overflow (``acc_bits >= mac.exact_acc_bits(longest dot product)``), layer
        widths up to 1024.
    lanes : int, 1..16
        Weights per cycle in the forward pass and the update.
    max_records : int, 1..65535
        Samples the data memory holds (training plus test set); the memory is
        ``max_records * record_words(n_in)`` words of 16 bits and at most 65536 words.
    mac_pipeline, update_pipeline : int
        Passed to :class:`~.mac.LNSMAC` (``pipeline``) and :class:`~.update.MadamUpdate`.

    Ports: ``bus`` (:data:`~.bus.MemBus`, target) and ``ctl``
    (:data:`~.bus.ControlSignature`, target).
    """

    def __init__(self, cfg: MLPConfig, lanes: int = 1, max_records: int = 1797,
                 mac_pipeline: int = 2, update_pipeline: int = 5):
        if not isinstance(cfg, MLPConfig):
            raise ValueError(f"cfg must be an MLPConfig, got {cfg!r}")
        self.lanes = check_int("lanes", lanes, 1, 16)
        if lanes & (lanes - 1):
            raise ValueError(f"lanes must be a power of two in 1..16, got {lanes}")
        self.lane_bits = lanes.bit_length() - 1
        self.max_records = check_int("max_records", max_records, 1, 65535)
        fmt = cfg.fmt
        if fmt.bits > 8:
            raise ValueError(f"the trainer stores two codes per 16-bit word: fmt.bits must be "
                             f"3..8, got {fmt.bits}")
        if cfg.madam.bias_correction:
            raise ValueError("the trainer implements the seeding mode: "
                             "madam.bias_correction must be False")
        for i, s in enumerate(cfg.sizes):
            check_int(f"sizes[{i}]", s, 1, 1024)
        longest = max(max(cfg.sizes[:-1]) + 1, max(cfg.sizes[1:]))
        need = cfg.mac.exact_acc_bits(longest)
        if cfg.mac.acc_bits < need:
            raise ValueError(f"mac.acc_bits must be >= {need} (exact for {longest}-term dot "
                             f"products), got {cfg.mac.acc_bits}")
        self.rec = record_words(cfg.sizes[0])
        if self.max_records * self.rec > 65536:
            raise ValueError(f"max_records must be <= {65536 // self.rec} for "
                             f"{cfg.sizes[0]} inputs (65536 data words), got {max_records}")
        self.cfg = cfg
        self.mac_cfg = replace(cfg.mac, lanes=self.lanes)
        self.mac_pipeline = mac_pipeline
        self.update_pipeline = update_pipeline
        self.n_layers = len(cfg.sizes) - 1
        self.rows = [cfg.sizes[l + 1] for l in range(self.n_layers)]
        self.cols = [cfg.sizes[l] + 1 for l in range(self.n_layers)]
        self.wpr = [_wpr(c, self.lanes) for c in self.cols]
        super().__init__({"bus": In(MemBus), "ctl": In(ControlSignature)})

    # -- region map ---------------------------------------------------------------------
    def regions(self) -> list[tuple[int, str, int, int]]:
        """``(id, name, width, depth)`` of every host-visible region, in id order."""
        md = self.cfg.madam
        out = [(0, "regs", 32, LAYER_REGS + 4 * self.n_layers),
               (1, "data", 16, self.max_records * self.rec)]
        for l in range(self.n_layers):
            depth = self.rows[l] * self.wpr[l]
            for b in range(self.lanes):
                out.append((len(out), f"u{l}.{b}", md.weight.bits, depth))
            for b in range(self.lanes):
                out.append((len(out), f"v{l}.{b}", md.state.bits, depth))
        return out

    def describe(self) -> dict:
        """The ``config`` object of the identify JSON."""
        d = self.cfg.to_dict()
        d.update({"lanes": self.lanes, "max_records": self.max_records,
                  "record_words": self.rec, "fmt_underflow": self.cfg.fmt.underflow,
                  "weight_underflow": self.cfg.madam.weight.underflow,
                  "mac_pipeline": self.mac_pipeline, "update_pipeline": self.update_pipeline,
                  "regs": {**REGS, "layer_base": LAYER_REGS, "layer_stride": 4,
                           "layer_fields": ["u_bias", "f_bias", "e_clamp"]}})
        return d

    # -- elaboration --------------------------------------------------------------------
    def elaborate(self, platform):
        from .shuffle import Shuffler
        from .softmax import SoftmaxError
        m = Module()
        cfg, L, nl = self.cfg, self.lanes, self.n_layers
        fmt, md = cfg.fmt, cfg.madam
        W, V = md.weight, md.state
        emax = fmt.emax
        code_l = lns_layout(fmt)
        wcode_l = lns_layout(W)
        rows, cols, wpr = self.rows, self.cols, self.wpr
        bus, ctl = self.bus, self.ctl
        lb = self.lane_bits

        def bank(x):
            return x[:lb] if lb else Const(0, 1)

        def word(x):
            return x >> lb

        # ---- memories ----------------------------------------------------------------
        def mem(name, width, depth):
            mm = Memory(shape=unsigned(width), depth=max(depth, 2), init=[])
            m.submodules[name] = mm
            return mm, mm.read_port(), mm.write_port()

        data_mem = Memory(shape=unsigned(16), depth=self.max_records * self.rec, init=[])
        m.submodules.data_mem = data_mem
        d_addr = Signal(range(data_mem.depth))
        d_rp = data_mem.read_port()
        d_wp = data_mem.write_port()
        # one address for both ports and no read while writing: the shape Yosys maps to
        # the iCE40UP5K's single-port SPRAM
        m.d.comb += [d_rp.addr.eq(d_addr), d_wp.addr.eq(d_addr), d_rp.en.eq(~d_wp.en)]

        U = [[mem(f"u{l}_{b}", W.bits, rows[l] * wpr[l]) for b in range(L)] for l in range(nl)]
        Vm = [[mem(f"v{l}_{b}", V.bits, rows[l] * wpr[l]) for b in range(L)] for l in range(nl)]
        # a_l, the input vector of layer l (constant 1 included), banked like the weights
        A = [[mem(f"a{l}_{b}", fmt.bits, wpr[l]) for b in range(L)] for l in range(nl)]
        # e_l, the error at the output of layer l
        E = [mem(f"e{l}", fmt.bits, rows[l]) for l in range(nl)]
        # ReLU derivative (S > 0) of the hidden layers
        MASK = [mem(f"mask{l}", 1, rows[l]) for l in range(nl - 1)]
        x_bits = BIAS_BITS + 2
        xt_layout = data.StructLayout({"x": signed(x_bits), "sign": 1, "zero": 1})
        XT = mem("xt", xt_layout.size, max(max(rows) + 1, 2))
        SB = mem("sbuf", self.mac_cfg.acc_bits, rows[-1])

        # ---- registers visible to the host ------------------------------------------
        n_train = Signal(16)
        n_test = Signal(16)
        epoch_base = Signal(16)
        u_bias = [Signal(signed(BIAS_BITS), name=f"u_bias{l}") for l in range(nl)]
        f_bias = [Signal(signed(BIAS_BITS), name=f"f_bias{l}") for l in range(nl)]
        e_clamp = [Signal(W.exp_bits, name=f"e_clamp{l}") for l in range(nl)]
        # runtime tensor biases
        a_bias = [Signal(signed(BIAS_BITS), name=f"a_bias{l}", init=-emax) for l in range(nl)]
        e_bias = [Signal(signed(BIAS_BITS), name=f"e_bias{l}") for l in range(nl)]

        # ---- datapath units ----------------------------------------------------------
        mac = m.submodules.mac = LNSMAC(self.mac_cfg, pipeline=self.mac_pipeline)
        engines = [MadamUpdate(md, pipeline=self.update_pipeline, bias_bits=BIAS_BITS + 2,
                               runtime_lr=True) for _ in range(L)]
        for b, eng in enumerate(engines):
            m.submodules[f"update{b}"] = eng
        smx = m.submodules.softmax = SoftmaxError(cfg, bias_bits=BIAS_BITS)
        shuf = m.submodules.shuffle = Shuffler(self.max_records)
        maskq = m.submodules.maskq = fifo.SyncFIFO(width=1, depth=16)

        m.d.comb += mac.o_stream.ready.eq(1)
        for eng in engines:
            m.d.comb += eng.o_stream.ready.eq(1)

        # ---- run control / status ----------------------------------------------------
        epochs = Signal(16)
        seed = Signal(32)
        lr_step = Signal(7, init=md.lr_step)
        mode_eval = Signal()
        stop_req = Signal()
        epoch = Signal(16)
        sample = Signal(16)
        correct = Signal(16)
        last_correct = Signal(16)
        steps = Signal(32)
        error = Signal(8)
        state = Signal(8)
        m.d.comb += [ctl.state.eq(state), ctl.error.eq(error), ctl.epoch.eq(epoch),
                     ctl.sample.eq(sample), ctl.correct.eq(correct),
                     ctl.last_correct.eq(last_correct), ctl.steps.eq(steps),
                     ctl.busy.eq(state != 0)]
        for eng in engines:
            m.d.comb += eng.lr_step.eq(lr_step)
        with m.If(ctl.stop):
            m.d.sync += stop_req.eq(1)

        record = Signal(16)          # the data record of the current sample
        label = Signal(range(max(rows[-1], 2)))
        pred = Signal(range(max(rows[-1], 2)))
        best = Signal(signed(self.mac_cfg.acc_bits))

        # ---- streaming counters ------------------------------------------------------
        # issue side: outer/inner counters, a linear address and a column address; one
        # cycle later the memory data is valid together with the d1_* copies
        oc = Signal(16)
        ic = Signal(16)
        lin = Signal(16)
        cadr = Signal(16)
        issuing = Signal()
        d1_valid = Signal()
        d1_first = Signal()
        d1_last = Signal()
        d1_idx = Signal(16)
        d1_bank = Signal(range(max(L, 2)))
        d1_const = Signal()
        co = Signal(16)              # results handled in this phase
        mx = Signal(signed(x_bits))  # running max of the live exponents
        any_live = Signal()
        rb = Signal(signed(BIAS_BITS))  # the dynamic bias being applied by a REQ phase
        m.d.sync += [d1_valid.eq(0), d1_first.eq(0), d1_last.eq(0), d1_const.eq(0)]

        def start_stream():
            return [oc.eq(0), ic.eq(0), lin.eq(0), cadr.eq(0), co.eq(0), issuing.eq(1)]

        def advance(n_outer, n_inner):
            """One issue step of an ``n_outer x n_inner`` loop (counters, d1_* copies)."""
            first = ic == 0
            last_in = ic == n_inner - 1
            with m.If(issuing):
                m.d.sync += [d1_valid.eq(1), d1_first.eq(first), d1_last.eq(last_in),
                             d1_idx.eq(oc), lin.eq(lin + 1)]
                with m.If(last_in):
                    m.d.sync += [ic.eq(0), oc.eq(oc + 1)]
                    with m.If(oc == n_outer - 1):
                        m.d.sync += issuing.eq(0)
                with m.Else():
                    m.d.sync += ic.eq(ic + 1)

        def track_max(x, live):
            with m.If(live & (~any_live | (x > mx))):
                m.d.sync += [mx.eq(x), any_live.eq(1)]

        # Shared datapath, built once: the states only steer its inputs. Per lane,
        # forward_weights of one stored weight code (FWD, BWD: fq_*), and the gradient
        # G = e (x) a (UPD: g_*); idle inputs are ZERO codes, whose results are ZERO.
        fq_in = [Signal(W.bits, name=f"fq_in{b}") for b in range(L)]
        fq_ub = Signal(signed(BIAS_BITS))
        fq_fb = Signal(signed(BIAS_BITS))
        fq_out = []
        s_fw = W.frac_bits - fmt.frac_bits
        for b in range(L):
            w = data.View(wcode_l, fq_in[b])
            xf = (w.exp + fq_ub + ((1 << s_fw) >> 1)) >> s_fw
            fq_out.append(requantize(fmt, w.sign, xf - fq_fb, is_zero(w)))
        g_e = Signal(fmt.bits)
        g_a = [Signal(fmt.bits, name=f"g_a{b}") for b in range(L)]
        g_out = []
        for b in range(L):
            ev, av = data.View(code_l, g_e), data.View(code_l, g_a[b])
            g_out.append(requantize(fmt, ev.sign ^ av.sign, ev.exp + av.exp - emax,
                                    is_zero(ev) | is_zero(av)))

        def xt_write(idx, x, sign, zero):
            rp, wp = XT[1], XT[2]
            v = data.View(xt_layout, wp.data)
            m.d.comb += [wp.en.eq(1), wp.addr.eq(idx), v.x.eq(x), v.sign.eq(sign),
                         v.zero.eq(zero)]

        mac_in = mac.i_stream.payload
        for b in range(L):
            m.d.comb += mac_in.a[b].as_value().eq(fq_out[b])

        # dynamic requantisation (HREQ, EREQ) of the XT entry read last cycle; the
        # constant 1 of the next layer's bias column enters as d1_const
        bnew = Mux(any_live, mx, emax) - emax
        xv = data.View(xt_layout, XT[1].data)
        req_code = requantize(fmt, Mux(d1_const, 0, xv.sign), Mux(d1_const, 0, xv.x) - bnew,
                              Mux(d1_const, 0, xv.zero))

        def req_issue(n_items, const_at=None):
            """Read XT[0 .. n_items-1], one per cycle (d1_idx: the entry being written)."""
            with m.If(issuing):
                m.d.comb += XT[1].addr.eq(oc)
                m.d.sync += [d1_valid.eq(1), d1_idx.eq(oc), oc.eq(oc + 1)]
                if const_at is not None:
                    m.d.sync += d1_const.eq(oc == const_at)
                with m.If(oc == n_items - 1):
                    m.d.sync += issuing.eq(0)

        # ---- bus (idle only) ---------------------------------------------------------
        regions = self.regions()
        rd_pending = Signal()
        rd_region = Signal(8)
        wr_ack = Signal()
        reg_rdata = Signal(32)
        m.d.sync += [rd_pending.eq(0), wr_ack.eq(0)]
        m.d.comb += bus.rsp_valid.eq(rd_pending | wr_ack)
        # read data: the region's read port (addressed in the accepting cycle)
        rsp = Signal(32)
        with m.Switch(rd_region):
            with m.Case(0):
                m.d.comb += rsp.eq(reg_rdata)
            with m.Case(1):
                m.d.comb += rsp.eq(d_rp.data)
            for rid, name, _, _ in regions[2:]:
                kind, rest = name[0], name[1:]
                l, b = (int(t) for t in rest.split("."))
                port = (U if kind == "u" else Vm)[l][b][1]
                with m.Case(rid):
                    m.d.comb += rsp.eq(port.data)
        m.d.comb += bus.rsp_rdata.eq(Mux(rd_pending, rsp, 0))

        def serve_bus():
            m.d.comb += bus.cmd_ready.eq(1)
            with m.If(bus.cmd_valid):
                m.d.sync += rd_region.eq(bus.cmd_region)
                with m.If(bus.cmd_write):
                    m.d.sync += wr_ack.eq(1)
                with m.Else():
                    m.d.sync += rd_pending.eq(1)
                a, wd = bus.cmd_addr, bus.cmd_wdata
                with m.Switch(bus.cmd_region):
                    with m.Case(0):
                        # registers
                        regmap = {REGS["n_train"]: n_train, REGS["n_test"]: n_test,
                                  REGS["epoch_base"]: epoch_base}
                        for l in range(nl):
                            regmap[LAYER_REGS + 4 * l] = u_bias[l]
                            regmap[LAYER_REGS + 4 * l + 1] = f_bias[l]
                            regmap[LAYER_REGS + 4 * l + 2] = e_clamp[l]
                        with m.Switch(a):
                            for adr, sig in regmap.items():
                                with m.Case(adr):
                                    with m.If(bus.cmd_write):
                                        m.d.sync += sig.eq(wd)
                                    m.d.sync += reg_rdata.eq(sig)   # sign-extended
                            with m.Default():
                                m.d.sync += reg_rdata.eq(0)
                    with m.Case(1):
                        m.d.comb += [d_addr.eq(a), d_wp.en.eq(bus.cmd_write),
                                     d_wp.data.eq(wd)]
                    for rid, name, _, _ in regions[2:]:
                        kind, rest = name[0], name[1:]
                        l, b = (int(t) for t in rest.split("."))
                        _, rp, wp = (U if kind == "u" else Vm)[l][b]
                        with m.Case(rid):
                            m.d.comb += [rp.addr.eq(a), wp.addr.eq(a),
                                         wp.en.eq(bus.cmd_write), wp.data.eq(wd)]
                            with m.If(bus.cmd_write):
                                m.d.sync += steps.eq(0)

        # ---- the sequencer -----------------------------------------------------------
        n_run = Signal(16)           # samples in this epoch / evaluation

        with m.FSM(name="seq"):
            with m.State("IDLE"):
                m.d.comb += state.eq(0)
                serve_bus()
                with m.If(ctl.start | ctl.evaluate):
                    m.d.sync += [stop_req.eq(0), epoch.eq(0), sample.eq(0), correct.eq(0),
                                 error.eq(0)]
                    ok = (n_train != 0) & (n_train + n_test <= self.max_records)
                    with m.If(ctl.start):
                        with m.If(ok & (ctl.epochs != 0) & (ctl.lr_step >= 1)
                                  & (ctl.lr_step <= 64)):
                            m.d.sync += [epochs.eq(ctl.epochs), seed.eq(ctl.seed),
                                         lr_step.eq(ctl.lr_step), mode_eval.eq(0),
                                         n_run.eq(n_train)]
                            m.next = "SHUF"
                        with m.Else():
                            m.d.sync += error.eq(1)
                    with m.Else():
                        with m.If(ok & (n_test != 0)):
                            m.d.sync += [mode_eval.eq(1), n_run.eq(n_test)]
                            m.next = "FETCH"
                        with m.Else():
                            m.d.sync += error.eq(1)

            with m.State("SHUF"):
                m.d.comb += [state.eq(1), shuf.start.eq(1), shuf.n.eq(n_train),
                             shuf.seed.eq(seed), shuf.epoch.eq(epoch_base + epoch)]
                m.next = "SHUF_GO"
            with m.State("SHUF_GO"):
                m.d.comb += [state.eq(1), shuf.n.eq(n_train), shuf.seed.eq(seed),
                             shuf.epoch.eq(epoch_base + epoch)]
                m.next = "SHUF_WAIT"
            with m.State("SHUF_WAIT"):
                m.d.comb += [state.eq(1), shuf.n.eq(n_train), shuf.seed.eq(seed),
                             shuf.epoch.eq(epoch_base + epoch)]
                with m.If(~shuf.busy):
                    m.next = "FETCH"

            # sample index -> data record (the shuffled order, or the test set)
            with m.State("FETCH"):
                m.d.comb += [state.eq(Mux(mode_eval, 2, 1)), shuf.rd_addr.eq(sample)]
                m.next = "FETCH2"
            with m.State("FETCH2"):
                m.d.comb += [state.eq(Mux(mode_eval, 2, 1)), shuf.rd_addr.eq(sample)]
                m.d.sync += record.eq(Mux(mode_eval, n_train + sample, shuf.rd_data))
                m.d.sync += start_stream()
                m.next = "LOAD"

            # LOAD: features j = 0..n_in-1 from the record, then the label word
            n_in = cfg.sizes[0]
            with m.State("LOAD"):
                m.d.comb += state.eq(Mux(mode_eval, 2, 1))
                base = Signal(16)
                m.d.comb += base.eq(record * self.rec)
                m.d.comb += d_addr.eq(base + Mux(issuing, oc >> 1, 0))
                with m.If(issuing):
                    m.d.comb += d_addr.eq(base + Mux(oc == n_in, self.rec - 1, oc >> 1))
                    m.d.sync += [d1_valid.eq(1), d1_idx.eq(oc), oc.eq(oc + 1)]
                    with m.If(oc == n_in):
                        m.d.sync += issuing.eq(0)
                with m.If(d1_valid):
                    j = d1_idx
                    byte = Mux(j[0], d_rp.data[8:16], d_rp.data[0:8])
                    with m.If(j == n_in):
                        m.d.sync += label.eq(d_rp.data)
                        # the constant 1 of the bias column: exponent emax at bias -emax
                        for b in range(L):
                            if n_in % L == b:
                                wp_ = A[0][b][2]
                                m.d.comb += [wp_.en.eq(1), wp_.addr.eq(n_in // L),
                                             wp_.data.eq(emax)]
                        m.d.sync += start_stream()
                        m.d.sync += [mx.eq(0), any_live.eq(1)]
                        m.next = "FWD0"
                    with m.Else():
                        for b in range(L):
                            wp_ = A[0][b][2]
                            m.d.comb += [wp_.en.eq(bank(j) == b),
                                         wp_.addr.eq(word(j)),
                                         wp_.data.eq(byte[:fmt.bits])]

            for l in range(nl):
                last_layer = l == nl - 1
                # ---- forward through layer l -------------------------------------
                with m.State(f"FWD{l}"):
                    m.d.comb += state.eq(Mux(mode_eval, 2, 1))
                    advance(rows[l], wpr[l])
                    for b in range(L):
                        m.d.comb += [U[l][b][1].addr.eq(lin), A[l][b][1].addr.eq(ic)]
                    m.d.comb += [mac.i_stream.valid.eq(d1_valid), mac_in.first.eq(d1_first),
                                 mac_in.last.eq(d1_last), fq_ub.eq(u_bias[l]),
                                 fq_fb.eq(f_bias[l])]
                    for b in range(L):
                        m.d.comb += [fq_in[b].eq(U[l][b][1].data),
                                     mac_in.b[b].as_value().eq(A[l][b][1].data)]
                    o = mac.o_stream
                    with m.If(o.valid):
                        m.d.sync += co.eq(co + 1)
                        if not last_layer:
                            x = o.payload.exp + f_bias[l] + a_bias[l]
                            live = ~o.payload.zero & ~o.payload.sign
                            xt_write(co, x, 0, ~live)
                            wpm = MASK[l][2]
                            m.d.comb += [wpm.en.eq(1), wpm.addr.eq(co), wpm.data.eq(live)]
                            track_max(x, live)
                            with m.If(co == rows[l] - 1):
                                m.d.sync += start_stream()
                                m.next = f"HREQ{l}"
                        else:
                            wps = SB[2]
                            m.d.comb += [wps.en.eq(1), wps.addr.eq(co),
                                         wps.data.eq(o.payload.acc)]
                            with m.If((co == 0) | (o.payload.acc > best)):
                                m.d.sync += [best.eq(o.payload.acc), pred.eq(co)]
                            with m.If(co == rows[l] - 1):
                                m.d.sync += start_stream()
                                is_best = (co == 0) | (o.payload.acc > best)
                                p_fin = Mux(is_best, co, pred)
                                hit = p_fin == label
                                with m.If(hit):
                                    m.d.sync += correct.eq(correct + 1)
                                with m.If(mode_eval):
                                    m.next = "DONE"
                                with m.Else():
                                    m.next = "SMX"

                if not last_layer:
                    # ---- requantise a_{l+1} (hidden outputs, then the constant 1) --
                    with m.State(f"HREQ{l}"):
                        m.d.comb += state.eq(Mux(mode_eval, 2, 1))
                        n_items = rows[l] + 1
                        req_issue(n_items, const_at=rows[l])
                        with m.If(d1_valid):
                            for b in range(L):
                                wp_ = A[l + 1][b][2]
                                m.d.comb += [wp_.en.eq(bank(d1_idx) == b),
                                             wp_.addr.eq(word(d1_idx)),
                                             wp_.data.eq(req_code)]
                            with m.If(d1_idx == n_items - 1):
                                m.d.sync += a_bias[l + 1].eq(bnew)
                                m.d.sync += start_stream()
                                m.d.sync += [mx.eq(0), any_live.eq(1)]
                                m.next = f"FWD{l + 1}"

            # ---- softmax cross-entropy error ---------------------------------------
            with m.State("SMX"):
                m.d.comb += state.eq(1)
                n_out = rows[-1]
                m.d.comb += [smx.bias.eq(f_bias[-1] + a_bias[-1]), smx.label.eq(label)]
                # stall-able read of the logits: the read port holds while not advancing
                s_valid = Signal()
                adv = ~s_valid | smx.i_stream.ready
                m.d.comb += [SB[1].en.eq(adv), SB[1].addr.eq(oc),
                             smx.i_stream.valid.eq(s_valid),
                             smx.i_stream.payload.S.eq(SB[1].data)]
                with m.If(adv):
                    m.d.sync += s_valid.eq(issuing)
                    with m.If(issuing):
                        m.d.sync += oc.eq(oc + 1)
                        with m.If(oc == n_out - 1):
                            m.d.sync += issuing.eq(0)
                m.d.comb += smx.o_stream.ready.eq(1)
                with m.If(smx.o_stream.valid):
                    wpe = E[-1][2]
                    m.d.comb += [wpe.en.eq(1), wpe.addr.eq(smx.o_stream.payload.index),
                                 wpe.data.eq(Value.cast(smx.o_stream.payload.code))]
                    m.d.sync += [co.eq(co + 1), e_bias[-1].eq(smx.o_bias)]
                    with m.If(co == n_out - 1):
                        m.d.sync += start_stream()
                        m.d.sync += s_valid.eq(0)
                        if nl > 1:
                            m.d.sync += [mx.eq(0), any_live.eq(0)]
                            m.next = f"BWD{nl - 1}"
                        else:
                            m.next = "UPD0"

            for l in range(nl - 1, 0, -1):
                # ---- backward: e_{l-1}[j] = sum_i W_l[i, j] e_l[i], j < cols-1 -------
                with m.State(f"BWD{l}"):
                    m.d.comb += state.eq(1)
                    n_j, n_i = rows[l - 1], rows[l]
                    advance(n_j, n_i)
                    jb = bank(oc)
                    # cadr = i * wpr + j // lanes, advanced by wpr per inner step
                    with m.If(issuing):
                        with m.If(ic == n_i - 1):
                            m.d.sync += cadr.eq(word(oc + 1))
                        with m.Else():
                            m.d.sync += cadr.eq(cadr + wpr[l])
                        m.d.sync += d1_bank.eq(jb)
                    for b in range(L):
                        m.d.comb += U[l][b][1].addr.eq(cadr)
                    m.d.comb += [E[l][1].addr.eq(ic), MASK[l - 1][1].addr.eq(oc)]
                    # the mask bit of column j joins a queue read back with its result
                    m.d.comb += [maskq.w_en.eq(d1_valid & d1_first),
                                 maskq.w_data.eq(MASK[l - 1][1].data)]
                    wsel = Array(U[l][b][1].data for b in range(L))[d1_bank]
                    # lane 0 only; the other lanes see ZERO operands
                    m.d.comb += [mac.i_stream.valid.eq(d1_valid), mac_in.first.eq(d1_first),
                                 mac_in.last.eq(d1_last), fq_ub.eq(u_bias[l]),
                                 fq_fb.eq(f_bias[l]), fq_in[0].eq(wsel),
                                 mac_in.b[0].as_value().eq(E[l][1].data)]
                    o = mac.o_stream
                    with m.If(o.valid):
                        m.d.comb += maskq.r_en.eq(1)
                        m.d.sync += co.eq(co + 1)
                        x = o.payload.exp + f_bias[l] + e_bias[l]
                        live = ~o.payload.zero & maskq.r_data
                        xt_write(co, x, o.payload.sign, ~live)
                        track_max(x, live)
                        with m.If(co == n_j - 1):
                            m.d.sync += start_stream()
                            m.next = f"EREQ{l}"

                with m.State(f"EREQ{l}"):
                    m.d.comb += state.eq(1)
                    n_items = rows[l - 1]
                    req_issue(n_items)
                    with m.If(d1_valid):
                        wpe = E[l - 1][2]
                        m.d.comb += [wpe.en.eq(1), wpe.addr.eq(d1_idx), wpe.data.eq(req_code)]
                        with m.If(d1_idx == n_items - 1):
                            m.d.sync += e_bias[l - 1].eq(bnew)
                            m.d.sync += start_stream()
                            if l > 1:
                                m.d.sync += [mx.eq(0), any_live.eq(0)]
                                m.next = f"BWD{l - 1}"
                            else:
                                m.next = "UPD0"

            for l in range(nl):
                # ---- update: G = e_l (x) a_l on the fly, LNS-Madam, write back -------
                with m.State(f"UPD{l}"):
                    m.d.comb += state.eq(1)
                    advance(rows[l], wpr[l])
                    for b in range(L):
                        m.d.comb += [U[l][b][1].addr.eq(lin), Vm[l][b][1].addr.eq(lin),
                                     A[l][b][1].addr.eq(ic)]
                    m.d.comb += [E[l][1].addr.eq(oc), g_e.eq(E[l][1].data)]
                    for b, eng in enumerate(engines):
                        p = eng.i_stream.payload
                        m.d.comb += [eng.i_stream.valid.eq(d1_valid), g_a[b].eq(A[l][b][1].data),
                                     p.w.as_value().eq(U[l][b][1].data),
                                     p.v.as_value().eq(Vm[l][b][1].data),
                                     p.g.as_value().eq(g_out[b]),
                                     eng.g_bias.eq(e_bias[l] + a_bias[l] + emax),
                                     eng.e_clamp.eq(e_clamp[l])]
                    o0 = engines[0].o_stream
                    with m.If(o0.valid):
                        m.d.sync += co.eq(co + 1)
                        for b, eng in enumerate(engines):
                            wpu, wpv = U[l][b][2], Vm[l][b][2]
                            m.d.comb += [wpu.en.eq(1), wpu.addr.eq(co),
                                         wpu.data.eq(eng.o_stream.payload.w_new),
                                         wpv.en.eq(1), wpv.addr.eq(co),
                                         wpv.data.eq(eng.o_stream.payload.v_new)]
                        with m.If(co == rows[l] * wpr[l] - 1):
                            m.d.sync += start_stream()
                            m.next = f"UPD{l + 1}" if l < nl - 1 else "DONE"

            with m.State("DONE"):
                m.d.comb += state.eq(Mux(mode_eval, 2, 1))
                with m.If(~mode_eval):
                    m.d.sync += steps.eq(steps + 1)
                m.d.sync += sample.eq(sample + 1)
                with m.If(sample == n_run - 1):
                    m.d.sync += [last_correct.eq(correct), sample.eq(0)]
                    with m.If(mode_eval):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [epoch.eq(epoch + 1), correct.eq(0)]
                        with m.If((epoch == epochs - 1) | stop_req):
                            m.next = "IDLE"
                        with m.Else():
                            m.next = "SHUF"
                with m.Elif(stop_req):
                    m.next = "IDLE"
                with m.Else():
                    m.next = "FETCH"
        return m
