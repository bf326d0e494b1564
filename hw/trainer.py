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

Its golden twin is :class:`lnsmadam.golden.trainer.DeviceTrainer` (records, registers,
``START``/``EVALUATE`` and the status counters) around ``LNSMLP.step``.

The epoch order comes from :class:`~.shuffle.Shuffler` (``golden.baseline.epoch_order``
of ``(seed, epoch_base + epoch)``). ``EVALUATE`` runs ``LOAD``/``FWD``/``SMX`` over the test
set and counts ``argmax(S_L) == label`` (lowest index on ties, as ``LNSMLP.predict``; the
softmax unit's search for ``max S`` yields the index, so training and evaluation count with
the same logic).

Structure. One sequencer serves every layer: ``FWD``, ``HREQ``, ``BWD``, ``EREQ`` and
``UPD`` are single FSM states and a layer register selects the per-layer constants, biases
and memories; one-hot phase flags steer one shared datapath (counters, memory ports, bias
adder, requantisers), so each register and port has one short mux. A copy of the control
per layer cost about 750 iCE40 logic cells per layer; the whole trainer of the default
64-16-10 MLP (with its MAC, update engine, softmax unit and shuffler) packs into about
4,100 iCE40 logic cells.

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
cycles, plus ~10-20 cycles of pipeline drain per phase and the softmax unit's ~300 cycles
(``bench/trainer_cycles.py`` measures it).

The host reaches everything through :data:`~.bus.MemBus` (only while idle) and
:data:`~.bus.ControlSignature`; the region map is ``docs/protocol.md`` §7 and
:meth:`Trainer.regions`.
"""

from __future__ import annotations

from dataclasses import replace

from amaranth.hdl import Array, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from lnsmadam.golden.format import check_int
from lnsmadam.golden.mlp import MLPConfig

# the region map (register addresses, record layout) is defined once, beside the host's
# packing functions; regs: REGS words, then 4 words per layer from LAYER_REGS
from lnsmadam.host.image import LAYER_REGS, REGS, record_words

from .bus import ControlSignature, MemBus
from .format import RegisteredRead, is_zero, lns_layout, requantize
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
    mac_pipeline, mac_out_pipeline, update_pipeline : int
        Passed to :class:`~.mac.LNSMAC` (``pipeline`` 1..2 + log2(lanes), ``out_pipeline``
        0..4) and :class:`~.update.MadamUpdate` (``pipeline`` 0..6); fewer stages cost
        fewer flip-flops and a lower clock.

    Ports: ``bus`` (:data:`~.bus.MemBus`, target) and ``ctl``
    (:data:`~.bus.ControlSignature`, target).
    """

    def __init__(self, cfg: MLPConfig, lanes: int = 1, max_records: int = 1797,
                 mac_pipeline: int = 2, update_pipeline: int = 5, mac_out_pipeline: int = 3):
        # a rejected configuration is not an unused elaboratable (no warning for it)
        self._MustUse__silence = True
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
        self.mac_pipeline = check_int("mac_pipeline", mac_pipeline, 1,
                                      2 + (self.lanes - 1).bit_length())
        self.mac_out_pipeline = check_int("mac_out_pipeline", mac_out_pipeline, 0, 4)
        self.update_pipeline = check_int("update_pipeline", update_pipeline, 0, 6)
        self.n_layers = len(cfg.sizes) - 1
        self.rows = [cfg.sizes[l + 1] for l in range(self.n_layers)]
        self.cols = [cfg.sizes[l] + 1 for l in range(self.n_layers)]
        self.wpr = [_wpr(c, self.lanes) for c in self.cols]
        super().__init__({"bus": In(MemBus), "ctl": In(ControlSignature)})
        self._MustUse__silence = False

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
                  "mac_out_pipeline": self.mac_out_pipeline,
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
        rows, wpr = self.rows, self.wpr
        n_in = cfg.sizes[0]
        bus, ctl = self.bus, self.ctl
        lb = self.lane_bits

        def bank(x):
            return x[:lb] if lb else Const(0, 1)

        def word(x):
            return x >> lb

        # One sequencer for every layer: the phases FWD/HREQ/BWD/EREQ/UPD are single states
        # and the layer index ``lay`` selects the constants, biases and memories (a copy of
        # the control per layer cost about 750 logic cells per layer on iCE40).
        lay = Signal(range(max(nl, 2)))

        def table(values, name):
            """``values[lay]``: per-layer constants as a small mux."""
            values = [int(v) for v in values]
            width = max(max(values).bit_length(), 1)
            sig = Signal(width, name=name)
            m.d.comb += sig.eq(Array(Const(v, width) for v in values)[lay])
            return sig

        def pick(sigs, name, index=None):
            """``sigs[index]`` (default ``lay``) for a per-layer list of signals."""
            sig = Signal.like(sigs[0], name=name)
            m.d.comb += sig.eq(Array(sigs)[lay if index is None else index])
            return sig

        # ---- memories ----------------------------------------------------------------
        def mem(name, width, depth):
            # RegisteredRead saves about 100 logic cells in all on iCE40; the sequencer
            # never uses a read of the word being written in the same cycle (the bus's
            # write cycles ignore the read)
            mm = Memory(shape=unsigned(width), depth=max(depth, 2), init=[],
                        attrs={"no_rw_check": 1})
            m.submodules[name] = mm
            return mm, RegisteredRead(m, mm, name, enable=True), mm.write_port()

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
        # the small vectors of all layers share one memory per kind (one EBR each on iCE40
        # instead of one per layer), at per-layer base offsets:
        # a_l, the input vector of layer l (constant 1 included), banked like the weights
        a_base = [sum(wpr[:l]) for l in range(nl)]
        A = [mem(f"act{b}", fmt.bits, sum(wpr)) for b in range(L)]
        # e_l, the error at the output of layer l
        e_base = [sum(rows[:l]) for l in range(nl)]
        E = mem("err", fmt.bits, sum(rows))
        # ReLU derivative (S > 0) of the hidden layers (their own offsets, not e_base: for
        # one hidden layer they are constant 0 and cost no adder)
        k_base = [sum(rows[:l]) for l in range(nl - 1)]
        MASK = mem("mask", 1, sum(rows[:-1])) if nl > 1 else None
        # scratch: a hidden layer's exponents before requantisation (XT entries, FWD/HREQ
        # and BWD/EREQ), or the output layer's accumulator words (FWD/SMX); never both live
        x_bits = BIAS_BITS + 2
        xt_layout = data.StructLayout({"x": signed(x_bits), "sign": 1, "zero": 1})
        acc_bits = self.mac_cfg.acc_bits
        XT = mem("scratch", max(xt_layout.size, acc_bits), max(max(rows) + 1, 2))

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
        ub, fb, ab, eb = (pick(u_bias, "ub"), pick(f_bias, "fb"), pick(a_bias, "ab"),
                          pick(e_bias, "eb"))

        # ---- datapath units ----------------------------------------------------------
        # the output layer's words come from the tap, so the stream need not carry them
        mac = m.submodules.mac = LNSMAC(self.mac_cfg, pipeline=self.mac_pipeline,
                                        out_pipeline=self.mac_out_pipeline,
                                        out_acc=False, acc_tap=True)
        engines = [MadamUpdate(md, pipeline=self.update_pipeline, bias_bits=BIAS_BITS + 2,
                               runtime_lr=True) for _ in range(L)]
        for b, eng in enumerate(engines):
            m.submodules[f"update{b}"] = eng
        smx = m.submodules.softmax = SoftmaxError(cfg, bias_bits=BIAS_BITS)
        shuf = m.submodules.shuffle = Shuffler(self.max_records)

        m.d.comb += mac.o_stream.ready.eq(1)
        for eng in engines:
            m.d.comb += eng.o_stream.ready.eq(1)

        # ---- run control / status ----------------------------------------------------
        # START's arguments are valid with the pulse only (ControlSignature)
        epochs = Signal(16)
        seed = Signal(32)
        lr_step = Signal(7, init=md.lr_step)
        mode_eval = Signal()
        stop_req = Signal()
        epoch = Signal(16)
        n_rec = range(self.max_records + 1)
        sample = Signal(n_rec)
        correct = Signal(n_rec)
        last_correct = Signal(n_rec)
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

        record = Signal(range(self.max_records))     # the data record of the current sample
        label = Signal(range(max(rows[-1], 2)))

        # ---- phases ------------------------------------------------------------------
        # The FSM below only chooses the phase and moves between phases; the datapath,
        # the counters and the memory ports are steered by these one-hot phase flags, so
        # that every register and port has one short mux instead of one branch per state.
        ph_idle, ph_load, ph_fwd, ph_hreq, ph_smx, ph_bwd, ph_ereq, ph_upd = (
            Signal(name=f"ph_{n}") for n in
            ("idle", "load", "fwd", "hreq", "smx", "bwd", "ereq", "upd"))
        restart = Signal()           # start the next phase's stream (set on its way in)
        co_inc = Signal()            # one result of this phase handled

        # ---- streaming counters ------------------------------------------------------
        # issue side: outer/inner counters, a linear address and a column address; one
        # cycle later the memory data is valid together with the d1_* copies
        n_max = max(max(r * w for r, w in zip(rows, wpr)), n_in + 1, max(rows) + 1)
        cnt = range(n_max + 1)
        oc = Signal(cnt)
        ic = Signal(cnt)
        lin = Signal(cnt)
        cadr = Signal(cnt)
        issuing = Signal()
        d1_valid = Signal()
        d1_first = Signal()
        d1_last = Signal()
        d1_idx = Signal(cnt)
        d1_bank = Signal(range(max(L, 2)))
        d1_const = Signal()
        co = Signal(cnt)             # results handled in this phase
        mx = Signal(signed(x_bits))  # running max of the live exponents
        any_live = Signal()

        # per-layer loop bounds (minus one, for the end tests)
        rows_t = table(rows, "rows_t")
        rows_m1 = table([r - 1 for r in rows], "rows_m1")
        wpr_m1 = table([w - 1 for w in wpr], "wpr_m1")
        words_m1 = table([r * w - 1 for r, w in zip(rows, wpr)], "words_m1")
        wpr_t = table(wpr, "wpr_t")
        prev_m1 = table([rows[l - 1] - 1 if l else 0 for l in range(nl)], "prev_m1")
        a_base_t = table(a_base, "a_base")
        a_next_t = table(a_base[1:] + [0], "a_next")
        e_base_t = table(e_base, "e_base")
        e_prev_t = table([e_base[l - 1] if l else 0 for l in range(nl)], "e_prev")
        k_base_t = table(k_base + [0], "k_base") if nl > 1 else None
        k_prev_t = table([k_base[l - 1] if l else 0 for l in range(nl)], "k_prev") \
            if nl > 1 else None
        is_last = Signal()
        m.d.comb += is_last.eq(lay == nl - 1)
        # the one bias sum each phase needs, from one adder: FWD fb + ab (the exponent of a
        # result), SMX the same for the output layer (the softmax's logit bias), BWD fb + eb,
        # UPD eb + ab + emax (the gradient's bias)
        pb = Signal(signed(BIAS_BITS + 2))
        m.d.comb += pb.eq(Mux(ph_upd, eb, fb) + Mux(ph_bwd, eb, ab) + Mux(ph_upd, emax, 0))
        ecl = pick(e_clamp, "ecl")

        # FWD, UPD: rows x words-per-row; BWD: columns x rows; the others are 1-D:
        # LOAD n_in + 1 items (features, label), HREQ rows + 1 (outputs, the constant 1),
        # EREQ the previous layer's rows, SMX the output layer's rows
        two_d = ph_fwd | ph_bwd | ph_upd
        outer_m1 = Mux(ph_bwd, prev_m1, rows_m1)
        inner_m1 = Mux(ph_bwd, rows_m1, wpr_m1)
        smx_adv = Signal()           # SMX: the softmax unit takes the next logit
        end_1d = Signal(cnt)
        with m.If(ph_load):
            m.d.comb += end_1d.eq(n_in)
        with m.Elif(ph_hreq):
            m.d.comb += end_1d.eq(rows_t)
        with m.Elif(ph_ereq):
            m.d.comb += end_1d.eq(prev_m1)
        with m.Else():
            m.d.comb += end_1d.eq(rows[-1] - 1)
        step = issuing & (~ph_smx | smx_adv)
        last_in = ic == inner_m1
        m.d.sync += [d1_valid.eq(step & ~ph_smx), d1_first.eq(ic == 0), d1_last.eq(last_in),
                     d1_idx.eq(oc), d1_bank.eq(bank(oc)),
                     d1_const.eq(ph_hreq & (oc == rows_t))]
        with m.If(restart):
            m.d.sync += [oc.eq(0), ic.eq(0), lin.eq(0), cadr.eq(0), issuing.eq(1)]
        with m.Elif(step):
            with m.If(two_d):
                m.d.sync += lin.eq(lin + 1)
                with m.If(last_in):
                    m.d.sync += [ic.eq(0), oc.eq(oc + 1)]
                    with m.If(oc == outer_m1):
                        m.d.sync += issuing.eq(0)
                with m.Else():
                    m.d.sync += ic.eq(ic + 1)
                # BWD: cadr = i * wpr + j // lanes, advanced by wpr per inner step
                with m.If(last_in):
                    m.d.sync += cadr.eq(word(oc + 1))
                with m.Else():
                    m.d.sync += cadr.eq(cadr + wpr_t)
            with m.Else():
                m.d.sync += oc.eq(oc + 1)
                with m.If(oc == end_1d):
                    m.d.sync += issuing.eq(0)
        with m.If(restart):
            m.d.sync += co.eq(0)
        with m.Elif(co_inc):
            m.d.sync += co.eq(co + 1)

        def track_max(x, live):
            with m.If(live & (~any_live | (x > mx))):
                m.d.sync += [mx.eq(x), any_live.eq(1)]

        # Shared datapath, built once. Per lane, forward_weights of one stored weight
        # code (FWD, BWD: fq_*), and the gradient G = e (x) a (UPD: g_*).
        fq_in = [Signal(W.bits, name=f"fq_in{b}") for b in range(L)]
        fq_out = []
        s_fw = W.frac_bits - fmt.frac_bits
        for b in range(L):
            w = data.View(wcode_l, fq_in[b])
            xf = (w.exp + ub + ((1 << s_fw) >> 1)) >> s_fw
            fq_out.append(requantize(fmt, w.sign, xf - fb, is_zero(w)))
        g_e = Signal(fmt.bits)
        g_a = [Signal(fmt.bits, name=f"g_a{b}") for b in range(L)]
        g_out = []
        for b in range(L):
            ev, av = data.View(code_l, g_e), data.View(code_l, g_a[b])
            g_out.append(requantize(fmt, ev.sign ^ av.sign, ev.exp + av.exp - emax,
                                    is_zero(ev) | is_zero(av)))

        # every layer's weight and state memories see the same read address (the bus's,
        # or the sequencer's); reads are harmless, writes are enabled per layer
        w_raddr = Signal(cnt)
        m.d.comb += w_raddr.eq(Mux(ph_idle, bus.cmd_addr, Mux(ph_bwd, cadr, lin)))
        for l in range(nl):
            for b in range(L):
                m.d.comb += [U[l][b][1].addr.eq(w_raddr), Vm[l][b][1].addr.eq(w_raddr)]
        # the layer whose weights are read: the sequencer's, or (idle) the bus's, so that
        # bus reads share these muxes
        rd_layer = Signal(range(max(nl, 2)))
        lsel = Signal(range(max(nl, 2)))
        m.d.comb += lsel.eq(Mux(ph_idle, rd_layer, lay))
        u_rd = [pick([U[l][b][1].data for l in range(nl)], f"u_rd{b}", lsel) for b in range(L)]
        v_rd = [pick([Vm[l][b][1].data for l in range(nl)], f"v_rd{b}", lsel) for b in range(L)]

        bnew = Mux(any_live, mx, emax) - emax
        xv = data.View(xt_layout, XT[1].data[:xt_layout.size])
        # dynamic requantisation (HREQ, EREQ) of the XT entry read last cycle; the
        # constant 1 of the next layer's bias column enters as d1_const
        req_code = requantize(fmt, Mux(d1_const, 0, xv.sign), Mux(d1_const, 0, xv.x) - bnew,
                              Mux(d1_const, 0, xv.zero))
        # activations: read by FWD and UPD (layer lay), written by LOAD (layer 0; the
        # constant 1 at index n_in) and HREQ (layer lay + 1, the constant 1 at rows)
        byte = Mux(d1_idx[0], d_rp.data[8:16], d_rp.data[0:8])
        load_const = d1_idx == n_in
        a_wdata = Mux(ph_hreq, req_code, Mux(load_const, emax, byte[:fmt.bits]))
        a_waddr = Mux(ph_hreq, a_next_t, 0) + word(d1_idx)
        for b in range(L):
            rp, wp = A[b][1], A[b][2]
            m.d.comb += [rp.addr.eq(a_base_t + ic), wp.addr.eq(a_waddr),
                         wp.data.eq(a_wdata),
                         wp.en.eq(d1_valid & (ph_load | ph_hreq) & (bank(d1_idx) == b))]

        # errors: read by BWD (layer lay, by row) and UPD (layer lay, by output), written
        # by SMX (output layer) and EREQ (layer lay - 1)
        smx_o = smx.o_stream
        m.d.comb += [E[1].addr.eq(e_base_t + Mux(ph_bwd, ic, oc)),
                     E[2].addr.eq(Mux(ph_smx, e_base[-1] + smx_o.payload.index,
                                      e_prev_t + d1_idx)),
                     E[2].data.eq(Mux(ph_smx, Value.cast(smx_o.payload.code), req_code)),
                     E[2].en.eq(Mux(ph_smx, smx_o.valid, ph_ereq & d1_valid))]

        # scratch: XT entries (FWD of a hidden layer, BWD) or logits (FWD of the output
        # layer) at index co; read at oc (HREQ, EREQ, SMX)
        o = mac.o_stream
        # the exponent of a MAC result with its tensor biases
        x_res = o.payload.exp + pb
        # hidden FWD: ReLU (live = positive); BWD: the ReLU derivative of the column
        mask_bit = MASK[1].data if MASK is not None else Const(1)
        live = ~o.payload.zero & Mux(ph_bwd, mask_bit, ~o.payload.sign)
        xt_w = Signal(xt_layout)
        m.d.comb += [xt_w.x.eq(x_res), xt_w.sign.eq(ph_bwd & o.payload.sign),
                     xt_w.zero.eq(~live)]
        m.d.comb += [XT[1].addr.eq(oc), XT[2].addr.eq(co),
                     XT[2].data.eq(Mux(ph_fwd & is_last, mac.tap_acc, xt_w.as_value()))]

        mac_in = mac.i_stream.payload
        for b in range(L):
            m.d.comb += mac_in.a[b].as_value().eq(fq_out[b])
        m.d.comb += [mac.i_stream.valid.eq(d1_valid & (ph_fwd | ph_bwd)),
                     mac_in.first.eq(d1_first), mac_in.last.eq(d1_last)]
        # BWD reads one weight per cycle (a column), through lane 0; the other lanes see
        # ZERO operands
        wsel = Array(u_rd)[d1_bank]
        for b in range(L):
            if b == 0:
                m.d.comb += [fq_in[0].eq(Mux(ph_bwd, wsel, u_rd[0])),
                             mac_in.b[0].as_value().eq(Mux(ph_bwd, E[1].data, A[0][1].data))]
            else:
                m.d.comb += [fq_in[b].eq(Mux(ph_bwd, 0, u_rd[b])),
                             mac_in.b[b].as_value().eq(Mux(ph_bwd, 0, A[b][1].data))]

        if MASK is not None:
            # BWD: the mask bit of the column whose result comes next (co after this
            # cycle), read one cycle ahead of it
            m.d.comb += [MASK[1].addr.eq(k_prev_t + co + (ph_bwd & o.valid)),
                         MASK[2].addr.eq(k_base_t + co), MASK[2].data.eq(live)]

        # update engines (UPD)
        m.d.comb += g_e.eq(E[1].data)
        for b, eng in enumerate(engines):
            p = eng.i_stream.payload
            m.d.comb += [eng.i_stream.valid.eq(ph_upd & d1_valid), g_a[b].eq(A[b][1].data),
                         p.w.as_value().eq(u_rd[b]), p.v.as_value().eq(v_rd[b]),
                         p.g.as_value().eq(g_out[b]), eng.g_bias.eq(pb),
                         eng.e_clamp.eq(ecl)]
        o0 = engines[0].o_stream
        upd_we = ph_upd & o0.valid
        for l in range(nl):
            for b, eng in enumerate(engines):
                wpu, wpv = U[l][b][2], Vm[l][b][2]
                m.d.comb += [wpu.addr.eq(Mux(ph_idle, bus.cmd_addr, co)),
                             wpv.addr.eq(Mux(ph_idle, bus.cmd_addr, co)),
                             wpu.data.eq(Mux(ph_idle, bus.cmd_wdata,
                                             eng.o_stream.payload.w_new)),
                             wpv.data.eq(Mux(ph_idle, bus.cmd_wdata,
                                             eng.o_stream.payload.v_new)),
                             wpu.en.eq(upd_we & (lay == l)), wpv.en.eq(upd_we & (lay == l))]

        # softmax (SMX): stall-able read of the logits, the read port holds while the
        # softmax unit does not take one
        s_valid = Signal()
        m.d.comb += [smx_adv.eq(~s_valid | smx.i_stream.ready),
                     smx.bias.eq(pb), smx.label.eq(label),
                     XT[1].en.eq(~ph_smx | smx_adv),
                     smx.i_stream.valid.eq(s_valid),
                     smx.i_stream.payload.S.eq(XT[1].data[:acc_bits]),
                     smx_o.ready.eq(1)]
        with m.If(ph_smx & smx_adv):
            m.d.sync += s_valid.eq(issuing)

        # ---- bus (idle only) ---------------------------------------------------------
        regions = self.regions()
        rd_pending = Signal()
        rd_kind = Signal(2)          # 0 registers, 1 data, 2 weights, 3 state
        rd_bank = Signal(range(max(L, 2)))
        wr_ack = Signal()
        reg_rdata = Signal(signed(BIAS_BITS + 1))   # every register fits, sign-extended
        m.d.sync += [rd_pending.eq(0), wr_ack.eq(0)]
        m.d.comb += bus.rsp_valid.eq(rd_pending | wr_ack)
        # read data: the region's read port (addressed in the accepting cycle)
        rsp = Signal(32)
        with m.Switch(rd_kind):
            with m.Case(0):
                m.d.comb += rsp.eq(reg_rdata)
            with m.Case(1):
                m.d.comb += rsp.eq(d_rp.data)
            with m.Case(2):
                m.d.comb += rsp.eq(Array(u_rd)[rd_bank])
            with m.Case(3):
                m.d.comb += rsp.eq(Array(v_rd)[rd_bank])
        m.d.comb += bus.rsp_rdata.eq(Mux(rd_pending, rsp, 0))

        def serve_bus():
            m.d.comb += bus.cmd_ready.eq(1)
            with m.If(bus.cmd_valid):
                with m.If(bus.cmd_write):
                    m.d.sync += wr_ack.eq(1)
                with m.Else():
                    m.d.sync += rd_pending.eq(1)
                a, wd = bus.cmd_addr, bus.cmd_wdata
                # the link only issues region ids and addresses of the region table, so
                # the low bits decode them
                n_reg = LAYER_REGS + 4 * nl
                with m.Switch(bus.cmd_region[:(len(regions) - 1).bit_length()]):
                    with m.Case(0):
                        m.d.sync += rd_kind.eq(0)
                        # registers
                        regmap = {REGS["n_train"]: n_train, REGS["n_test"]: n_test,
                                  REGS["epoch_base"]: epoch_base}
                        for l in range(nl):
                            regmap[LAYER_REGS + 4 * l] = u_bias[l]
                            regmap[LAYER_REGS + 4 * l + 1] = f_bias[l]
                            regmap[LAYER_REGS + 4 * l + 2] = e_clamp[l]
                        with m.Switch(a[:(n_reg - 1).bit_length()]):
                            for adr, sig in regmap.items():
                                with m.Case(adr):
                                    with m.If(bus.cmd_write):
                                        m.d.sync += sig.eq(wd)
                                    m.d.sync += reg_rdata.eq(sig)   # sign-extended
                            with m.Default():
                                m.d.sync += reg_rdata.eq(0)
                    with m.Case(1):
                        m.d.sync += rd_kind.eq(1)
                        m.d.comb += [d_addr.eq(a), d_wp.en.eq(bus.cmd_write),
                                     d_wp.data.eq(wd)]
                    for rid, name, _, _ in regions[2:]:
                        kind, rest = name[0], name[1:]
                        l, b = (int(t) for t in rest.split("."))
                        wp = (U if kind == "u" else Vm)[l][b][2]
                        with m.Case(rid):
                            m.d.sync += [rd_kind.eq(2 if kind == "u" else 3),
                                         rd_layer.eq(l), rd_bank.eq(b)]
                            m.d.comb += wp.en.eq(bus.cmd_write)
                            with m.If(bus.cmd_write):
                                m.d.sync += steps.eq(0)

        # ---- the sequencer -----------------------------------------------------------
        n_run = Signal(n_rec)        # samples in this epoch / evaluation
        ep = Signal(16)
        m.d.comb += [shuf.n.eq(n_train), shuf.seed.eq(seed), ep.eq(epoch_base + epoch),
                     shuf.epoch.eq(ep), shuf.rd_addr.eq(sample)]
        run_state = Mux(mode_eval, 2, 1)
        base = Signal(range(data_mem.depth))
        m.d.comb += base.eq(record * self.rec)

        with m.FSM(name="seq"):
            with m.State("IDLE"):
                m.d.comb += [state.eq(0), ph_idle.eq(1)]
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
                m.d.comb += [state.eq(1), shuf.start.eq(1)]
                m.next = "SHUF_GO"
            with m.State("SHUF_GO"):
                m.d.comb += state.eq(1)
                m.next = "SHUF_WAIT"
            with m.State("SHUF_WAIT"):
                m.d.comb += state.eq(1)
                with m.If(~shuf.busy):
                    m.next = "FETCH"

            # sample index -> data record (the shuffled order, or the test set)
            with m.State("FETCH"):
                m.d.comb += state.eq(run_state)
                m.next = "FETCH2"
            with m.State("FETCH2"):
                m.d.comb += [state.eq(run_state), restart.eq(1)]
                m.d.sync += record.eq(Mux(mode_eval, n_train + sample, shuf.rd_data))
                m.next = "LOAD"

            # LOAD: features j = 0..n_in-1 from the record, then the label word
            with m.State("LOAD"):
                m.d.comb += [state.eq(run_state), ph_load.eq(1),
                             d_addr.eq(base + Mux(issuing & (oc == n_in), self.rec - 1,
                                                  oc >> 1))]
                with m.If(d1_valid & load_const):
                    m.d.sync += [label.eq(d_rp.data), mx.eq(0), any_live.eq(1), lay.eq(0)]
                    m.d.comb += restart.eq(1)
                    m.next = "FWD"

            # ---- forward through layer lay -----------------------------------------
            with m.State("FWD"):
                m.d.comb += [state.eq(run_state), ph_fwd.eq(1)]
                if nl > 1:
                    with m.If(~is_last):
                        # hidden layer: XT entry, ReLU mask, running max
                        with m.If(o.valid):
                            m.d.comb += [co_inc.eq(1), XT[2].en.eq(1), MASK[2].en.eq(1)]
                            track_max(x_res, live)
                            with m.If(co == rows_m1):
                                m.d.comb += restart.eq(1)
                                m.next = "HREQ"
                # output layer: the logits (accumulator words), then SMX also in evaluation,
                # since the softmax unit's search for max S gives the prediction
                with m.If(is_last & mac.tap_valid):
                    m.d.comb += [co_inc.eq(1), XT[2].en.eq(1)]
                    with m.If(co == rows[-1] - 1):
                        m.d.comb += restart.eq(1)
                        m.next = "SMX"

            if nl > 1:
                # ---- requantise a_{lay+1} (hidden outputs, then the constant 1) --------
                with m.State("HREQ"):
                    m.d.comb += [state.eq(run_state), ph_hreq.eq(1)]
                    with m.If(d1_valid & (d1_idx == rows_t)):
                        for l in range(nl - 1):
                            with m.If(lay == l):
                                m.d.sync += a_bias[l + 1].eq(bnew)
                        m.d.comb += restart.eq(1)
                        m.d.sync += [mx.eq(0), any_live.eq(1), lay.eq(lay + 1)]
                        m.next = "FWD"

            # ---- softmax cross-entropy error ---------------------------------------
            with m.State("SMX"):
                m.d.comb += [state.eq(run_state), ph_smx.eq(1)]
                with m.If(smx_o.valid):
                    m.d.comb += co_inc.eq(1)
                    m.d.sync += e_bias[-1].eq(smx.o_bias)
                    with m.If(co == rows[-1] - 1):
                        m.d.comb += restart.eq(1)
                        m.d.sync += s_valid.eq(0)
                        # the prediction: the first largest logit (LNSMLP.predict)
                        with m.If(smx.argmax == label):
                            m.d.sync += correct.eq(correct + 1)
                        with m.If(mode_eval):
                            m.next = "DONE"
                        with m.Else():
                            if nl > 1:
                                m.d.sync += [mx.eq(0), any_live.eq(0), lay.eq(nl - 1)]
                                m.next = "BWD"
                            else:
                                m.d.sync += lay.eq(0)
                                m.next = "UPD"

            if nl > 1:
                # ---- backward: e_{lay-1}[j] = sum_i W_lay[i, j] e_lay[i], j < cols-1 ---
                with m.State("BWD"):
                    m.d.comb += [state.eq(1), ph_bwd.eq(1)]
                    with m.If(o.valid):
                        m.d.comb += [co_inc.eq(1), XT[2].en.eq(1)]
                        track_max(x_res, live)
                        with m.If(co == prev_m1):
                            m.d.comb += restart.eq(1)
                            m.next = "EREQ"

                with m.State("EREQ"):
                    m.d.comb += [state.eq(1), ph_ereq.eq(1)]
                    with m.If(d1_valid & (d1_idx == prev_m1)):
                        for l in range(1, nl):
                            with m.If(lay == l):
                                m.d.sync += e_bias[l - 1].eq(bnew)
                        m.d.comb += restart.eq(1)
                        with m.If(lay == 1):
                            m.d.sync += lay.eq(0)
                            m.next = "UPD"
                        with m.Else():
                            m.d.sync += [mx.eq(0), any_live.eq(0), lay.eq(lay - 1)]
                            m.next = "BWD"

            # ---- update: G = e_lay (x) a_lay on the fly, LNS-Madam, write back -------
            with m.State("UPD"):
                m.d.comb += [state.eq(1), ph_upd.eq(1)]
                with m.If(o0.valid):
                    m.d.comb += co_inc.eq(1)
                    with m.If(co == words_m1):
                        m.d.comb += restart.eq(1)
                        with m.If(is_last):
                            m.next = "DONE"
                        with m.Else():
                            m.d.sync += lay.eq(lay + 1)

            with m.State("DONE"):
                m.d.comb += state.eq(run_state)
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
