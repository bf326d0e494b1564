"""The training engine: registers, host access, run control and the pass schedule.

Per sample of an ``n_0 - ... - n_L`` MLP (exact mode, ``docs/engine.md``)::

    UF_0 (layer 0's pending update fused with its forward; F_0 for a run's first sample)
    F_1 .. F_{L-1}   the softmax error   BU_{L-1} .. BU_1      (layer 0's update pending)

and before the engine goes idle (end of run, STOP, a refused record) the pending update
alone (``U_0``). The next record loads into an input buffer while the current one trains
(:class:`~.loader.Loader`). Its golden twin is :class:`lnsmadam.golden.trainer.DeviceTrainer`
around ``LNSMLP.step``: the schedule is a schedule only, every result is bit-exact.

Run control (the contract in ``docs/protocol.md``): ``START`` is refused (``error = 1``,
nothing changes) unless ``n_train >= 1``, ``n_train + n_test <= max_records`` (on the full
32-bit registers), ``epochs >= 1``, ``1 <= lr_step <= 64``, ``sample_base < n_train`` and
the ``mode`` is supported; ``EVALUATE`` also needs ``n_test >= 1``. A run's first epoch
starts at position ``sample_base`` of ``epoch_order(n_train, seed, epoch_base)``, later
epochs at 0. A record whose label is not below ``n_out`` stops the run before it is used
(``error = 2``, ``sample`` = its position). ``STOP`` finishes the sample in flight.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from ...golden.format import check_int
from ...golden.mlp import MLPConfig
from ...host.image import LAYER_REGS, record_words
from ...golden.trainer import REGS
from ..bus import ControlSignature, MemBus
from ..format import RegisteredRead
from ..shuffle import Shuffler
from .datapath import BIAS_BITS, KIND_BU, KIND_F, KIND_U, KIND_UF, PassUnit, wpr
from .loader import Loader

__all__ = ["Engine", "DESIGN_VERSION", "ERR_REFUSED", "ERR_LABEL"]

#: identify JSON design version of the SoC built around this engine
DESIGN_VERSION = "0.2.0"
ERR_REFUSED, ERR_LABEL = 1, 2
#: mode register bits
MODE_PIPELINED = 1


class Engine(wiring.Component):
    """Per-sample integer MLP training and evaluation, bit-exact with ``golden.mlp``.

    Parameters
    ----------
    cfg : MLPConfig
        The model. Supported: ``fmt.bits <= 8`` (two codes per data word), seeding mode
        (``madam.bias_correction`` False), an accumulator that cannot overflow
        (``mac.acc_bits >= mac.exact_acc_bits(longest dot product)``), layer widths up to
        1024.
    lanes : int, power of two, 1..64
        Weights per cycle in every pass.
    max_records : int, 1..65535
        Samples the data memory holds, ``max_records * record_words(n_in) <= 65536``.
    read_reg, conv_pipeline, mac_pipeline, update_pipeline : int
        Register stages (:class:`~.datapath.PassUnit`): 0..1, 0..4, 0..2 + log2(lanes),
        0..7; fewer cost fewer flip-flops and a lower clock.
    softmax : "serial" or "parallel"
        The softmax-error unit (:class:`~.datapath.PassUnit`).
    bias_lane : bool
        A lane of its own for every layer's bias column (:class:`~.datapath.PassUnit`); its
        weights and state are the regions ``u{l}.{lanes}`` / ``v{l}.{lanes}``.
    fast_shuffle : bool
        The epoch order's multiplies by a multiplier (:class:`~lnsmadam.hw.shuffle.Shuffler`
        ``fast``): 4 instead of ``bits(max_records) + 3`` cycles per training sample and
        epoch.

    Members
    -------
    bus : In(MemBus)
        Host access to the regions (:meth:`regions`), only while idle.
    ctl : In(ControlSignature)
        START / STOP / EVALUATE and the status.

    Latency
    -------
    Per training sample about ``visits / lanes`` cycles plus each pass's drain and the
    softmax unit (``docs/engine.md``, measured by ``bench/trainer_cycles.py``).

    Throughput
    ----------
    One sample at a time (exact mode); ``lanes`` weight visits per cycle.

    Notes
    -----
    The region map is ``docs/protocol.md`` §7 (column banks, as ``host/image.py`` packs).
    """

    def __init__(self, cfg: MLPConfig, lanes: int = 1, max_records: int = 1797,
                 read_reg: int = 1, conv_pipeline: int = 3, mac_pipeline: int = 2,
                 update_pipeline: int = 5, softmax: str = "serial", bias_lane: bool = False,
                 fast_shuffle: bool = False):
        # a rejected configuration is not an unused elaboratable (no warning for it)
        self._MustUse__silence = True
        if not isinstance(cfg, MLPConfig):
            raise ValueError(f"cfg must be an MLPConfig, got {cfg!r}")
        self.lanes = check_int("lanes", lanes, 1, 64)
        if lanes & (lanes - 1):
            raise ValueError(f"lanes must be a power of two in 1..64, got {lanes}")
        self.max_records = check_int("max_records", max_records, 1, 65535)
        fmt = cfg.fmt
        if fmt.bits > 8:
            raise ValueError(f"the engine stores two codes per 16-bit word: fmt.bits must be "
                             f"3..8, got {fmt.bits}")
        if cfg.madam.bias_correction:
            raise ValueError("the engine implements the seeding mode: "
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
        self.n_layers = len(cfg.sizes) - 1
        self.rows = [cfg.sizes[l + 1] for l in range(self.n_layers)]
        self.cols = [cfg.sizes[l] + 1 for l in range(self.n_layers)]
        self.mac_pipeline = check_int("mac_pipeline", mac_pipeline, 0,
                                      2 + (lanes - 1).bit_length())
        self.unit = PassUnit(cfg, lanes, read_reg=read_reg, conv_pipeline=conv_pipeline,
                             mac_pipeline=mac_pipeline, update_pipeline=update_pipeline,
                             softmax=softmax, bias_lane=bias_lane)
        self.bias_lane = bool(bias_lane)
        if not isinstance(fast_shuffle, bool):
            raise ValueError(f"fast_shuffle must be a bool, got {fast_shuffle!r}")
        self.fast_shuffle = fast_shuffle
        self.wpr = self.unit.wpr
        self.unit._MustUse__silence = True
        self.unit.mac._MustUse__silence = True
        self.read_reg, self.conv_pipeline = read_reg, conv_pipeline
        self.update_pipeline, self.softmax = update_pipeline, softmax
        super().__init__({"bus": In(MemBus), "ctl": In(ControlSignature)})
        self._MustUse__silence = False

    # -- region map -------------------------------------------------------------------------
    def regions(self) -> list[tuple[int, str, int, int]]:
        """``(id, name, width, depth)`` of every host-visible region, in id order."""
        md = self.cfg.madam
        out = [(0, "regs", 32, LAYER_REGS + 4 * self.n_layers),
               (1, "data", 16, self.max_records * self.rec)]
        for l in range(self.n_layers):
            depth = [self.rows[l] * self.wpr[l]] * self.lanes + [self.rows[l]] * self.bias_lane
            for b, d in enumerate(depth):
                out.append((len(out), f"u{l}.{b}", md.weight.bits, d))
            for b, d in enumerate(depth):
                out.append((len(out), f"v{l}.{b}", md.state.bits, d))
        return out

    def describe(self) -> dict:
        """The ``config`` object of the identify JSON."""
        d = self.cfg.to_dict()
        d.update({"lanes": self.lanes, "max_records": self.max_records,
                  "record_words": self.rec, "fmt_underflow": self.cfg.fmt.underflow,
                  "weight_underflow": self.cfg.madam.weight.underflow,
                  "engine": {"read_reg": self.read_reg, "conv_pipeline": self.conv_pipeline,
                             "mac_pipeline": self.mac_pipeline,
                             "update_pipeline": self.update_pipeline,
                             "softmax": self.softmax, "fast_shuffle": self.fast_shuffle},
                  "pipelined": False, "bias_lane": self.bias_lane,
                  "regs": {**REGS, "layer_base": LAYER_REGS, "layer_stride": 4,
                           "layer_fields": ["u_bias", "f_bias", "e_clamp"]}})
        return d

    # -- elaboration ------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        cfg, nl, L = self.cfg, self.n_layers, self.lanes
        n_in, n_out = cfg.sizes[0], cfg.sizes[-1]
        bus, ctl = self.bus, self.ctl
        unit = m.submodules.unit = self.unit
        shuf = m.submodules.shuffle = Shuffler(self.max_records, fast=self.fast_shuffle)
        loader = m.submodules.loader = Loader(n_in, L, self.max_records, cfg.fmt.bits,
                                              w0=self.wpr[0])

        data_mem = Memory(shape=unsigned(16), depth=self.max_records * self.rec, init=[])
        m.submodules.data_mem = data_mem
        d_addr = Signal(range(data_mem.depth))
        d_rp, d_wp = data_mem.read_port(), data_mem.write_port()
        # one address for both ports and no read while writing: the shape Yosys maps to
        # the iCE40UP5K's single-port SPRAM
        m.d.comb += [d_rp.addr.eq(d_addr), d_wp.addr.eq(d_addr), d_rp.en.eq(~d_wp.en),
                     loader.d_rdata.eq(d_rp.data), shuf.rd_addr.eq(loader.sh_addr),
                     loader.sh_data.eq(shuf.rd_data), unit.a0_we.eq(loader.a0_we),
                     unit.a0_waddr.eq(loader.a0_waddr), unit.a0_wdata.eq(loader.a0_wdata)]

        # ---- registers (host) --------------------------------------------------------------
        # The host reads back exactly what it wrote: the 32-bit words live in a small
        # memory (:meth:`_bus`). The logic keeps only what it uses: a count's low 16 bits
        # and whether any higher bit is set (such a value is always refused, so the checks
        # stay exact), epoch_base's low 16 bits (the shuffle), mode's bit 0 and whether any
        # other bit is set, and each per-layer constant in its own width.
        lo = {k: Signal(16, name=k) for k in ("n_train", "n_test", "sample_base", "epoch_base")}
        big = {k: Signal(name=f"{k}_big") for k in ("n_train", "n_test", "sample_base")}
        mode0, mode_rest = Signal(), Signal()
        u_bias = [Signal(signed(BIAS_BITS), name=f"u_bias{l}") for l in range(nl)]
        f_bias = [Signal(signed(BIAS_BITS), name=f"f_bias{l}") for l in range(nl)]
        e_clamp = [Signal(cfg.madam.weight.exp_bits, name=f"e_clamp{l}") for l in range(nl)]
        for l in range(nl):
            m.d.comb += [unit.u_bias[l].eq(u_bias[l]), unit.f_bias[l].eq(f_bias[l]),
                         unit.e_clamp[l].eq(e_clamp[l])]
        wd = bus.cmd_wdata
        regmap = {REGS[k]: [lo[k].eq(wd[:16])] + ([big[k].eq(wd[16:] != 0)] if k in big else [])
                  for k in lo}
        regmap[REGS["mode"]] = [mode0.eq(wd[0]), mode_rest.eq(wd[1:] != 0)]
        for l in range(nl):
            regmap[LAYER_REGS + 4 * l] = [u_bias[l].eq(wd)]
            regmap[LAYER_REGS + 4 * l + 1] = [f_bias[l].eq(wd)]
            regmap[LAYER_REGS + 4 * l + 2] = [e_clamp[l].eq(wd)]
        n_train, n_test = lo["n_train"], lo["n_test"]

        # ---- run state and status ----------------------------------------------------------
        epochs, seed, lr_step = Signal(16), Signal(32), Signal(7, init=cfg.madam.lr_step)
        evaluating, stop_req, pending = Signal(), Signal(), Signal()
        n_rec = range(self.max_records + 1)
        epoch, pos, correct = Signal(16), Signal(n_rec), Signal(n_rec)
        last_correct, steps, error, state = Signal(n_rec), Signal(32), Signal(2), Signal(2)
        n_run = Signal(n_rec)
        cur = Signal(2)              # input buffer of the sample in flight
        label = Signal(range(max(n_out, 2)))
        lay = Signal(range(max(nl, 2)))
        m.d.comb += [ctl.state.eq(state), ctl.error.eq(error), ctl.epoch.eq(epoch),
                     ctl.sample.eq(pos), ctl.correct.eq(correct),
                     ctl.last_correct.eq(last_correct), ctl.steps.eq(steps),
                     ctl.busy.eq(state != 0), unit.lr_step.eq(lr_step),
                     unit.label.eq(label), shuf.n.eq(n_train), shuf.seed.eq(seed),
                     shuf.epoch.eq(lo["epoch_base"] + epoch), loader.n_train.eq(n_train),
                     loader.eval.eq(evaluating)]
        with m.If(ctl.stop):
            m.d.sync += stop_req.eq(1)

        # ---- host access (idle only) -------------------------------------------------------
        idle = Signal()
        self._bus(m, idle, regmap, d_rp, d_wp, steps)
        m.d.comb += d_addr.eq(Mux(idle, bus.cmd_addr, loader.d_addr))

        # ---- the schedule ------------------------------------------------------------------
        ld_start, ld_pos, ld_buf = Signal(), Signal(16), Signal(2)
        m.d.comb += [loader.start.eq(ld_start), loader.pos.eq(ld_pos), loader.buf.eq(ld_buf)]
        u_start, u_kind, u_layer = Signal(), Signal(2), Signal(range(max(nl, 2)))
        a0_cur = Signal(2)
        m.d.comb += [a0_cur.eq(cur), unit.start.eq(u_start), unit.kind.eq(u_kind),
                     unit.layer.eq(u_layer), unit.a0_cur.eq(a0_cur),
                     unit.a0_prev.eq(a0_cur - 1)]

        def run_pass(kind, layer):
            m.d.comb += [u_start.eq(1), u_kind.eq(kind), u_layer.eq(layer)]
            m.d.sync += lay.eq(layer)

        def begin_sample(p, buf, pend, last):
            """Take the sample at position ``p`` (loaded into input buffer ``buf``; its label
            checked): prefetch the next record, forward through layer 0 (with the pending
            update, if any)."""
            m.d.sync += label.eq(loader.label)
            with m.If(~last):
                m.d.comb += [ld_start.eq(1), ld_pos.eq(p + 1), ld_buf.eq(buf + 1)]
            m.d.comb += a0_cur.eq(buf)
            run_pass(Mux(pend, KIND_UF, KIND_F), 0)
            m.next = "FWD"

        last_of_run = pos == n_run - 1
        label_ok = loader.label < n_out

        def complete_sample():
            """A sample is finished (training: its layer-0 update pending): the counters, then
            the next sample at once when its record is in, else the slower paths."""
            m.d.sync += [pos.eq(pos + 1), cur.eq(cur + 1)]
            with m.If(~evaluating):
                m.d.sync += [steps.eq(steps + 1), pending.eq(1)]
            with m.If(last_of_run):
                m.d.sync += [last_correct.eq(correct), pos.eq(0)]
                with m.If(evaluating):
                    m.next = "DRAIN"
                with m.Else():
                    m.d.sync += [epoch.eq(epoch + 1), correct.eq(0)]
                    with m.If((epoch == epochs - 1) | stop_req):
                        m.next = "DRAIN"
                    with m.Else():
                        m.next = "SHUF"
            with m.Elif(stop_req):
                m.next = "DRAIN"
            with m.Elif(~loader.busy & label_ok):
                begin_sample(pos + 1, cur + 1, ~evaluating, pos + 1 == n_run - 1)
            with m.Else():
                m.next = "SAMPLE_WAIT"

        rec_ok = (~big["n_train"] & ~big["n_test"] & (n_train != 0)
                  & (n_train + n_test <= self.max_records))
        mode_ok = ~mode_rest & ~mode0          # this build runs exact mode only
        with m.FSM(name="seq"):
            with m.State("IDLE"):
                m.d.comb += idle.eq(1)
                # (EVALUATE leaves epoch as the last run left it)
                accept = [stop_req.eq(0), correct.eq(0), error.eq(0), pending.eq(0), cur.eq(0)]
                with m.If(ctl.start | ctl.evaluate):
                    # a refused command changes nothing but the error
                    with m.If(ctl.start):
                        ok = (rec_ok & (ctl.epochs != 0) & (ctl.lr_step >= 1)
                              & (ctl.lr_step <= 64) & ~big["sample_base"]
                              & (lo["sample_base"] < n_train) & mode_ok)
                        with m.If(ok):
                            m.d.sync += accept + [epoch.eq(0), epochs.eq(ctl.epochs),
                                                  seed.eq(ctl.seed), lr_step.eq(ctl.lr_step),
                                                  evaluating.eq(0), n_run.eq(n_train),
                                                  pos.eq(lo["sample_base"]), state.eq(1)]
                            m.next = "SHUF"
                        with m.Else():
                            m.d.sync += error.eq(ERR_REFUSED)
                    with m.Else():
                        with m.If(rec_ok & (n_test != 0)):
                            m.d.sync += accept + [evaluating.eq(1), n_run.eq(n_test),
                                                  pos.eq(0), state.eq(2)]
                            m.next = "LOAD"
                        with m.Else():
                            m.d.sync += error.eq(ERR_REFUSED)

            with m.State("SHUF"):
                m.d.comb += shuf.start.eq(1)
                m.next = "SHUF_GO"
            with m.State("SHUF_GO"):
                m.next = "SHUF_WAIT"
            with m.State("SHUF_WAIT"):
                with m.If(~shuf.busy):
                    m.next = "LOAD"

            # the first sample of a run or an epoch: load it, nothing to overlap with
            with m.State("LOAD"):
                m.d.comb += [ld_start.eq(1), ld_pos.eq(pos), ld_buf.eq(cur)]
                m.next = "SAMPLE_WAIT"
            with m.State("SAMPLE_WAIT"):
                with m.If(~loader.busy & ~ld_start):
                    m.next = "SAMPLE"

            # a sample starts: STOP or a bad label end the run before it is used
            with m.State("SAMPLE"):
                with m.If(stop_req | ~label_ok):
                    with m.If(~stop_req):
                        m.d.sync += error.eq(ERR_LABEL)
                    m.next = "DRAIN"
                with m.Elif(unit.can_start):
                    begin_sample(pos, cur, pending, last_of_run)

            with m.State("FWD"):
                with m.If(unit.can_start):
                    if nl > 1:
                        with m.If(lay != nl - 1):
                            run_pass(KIND_F, lay + 1)
                        with m.Else():
                            m.next = "SMX"
                    else:
                        m.next = "SMX"

            # the softmax error: the prediction with its first code; the output layer's
            # backward pass may start then (it reads each code after it is written)
            with m.State("SMX"):
                with m.If(unit.smx_first):
                    with m.If(unit.argmax == label):
                        m.d.sync += correct.eq(correct + 1)
                    if nl == 1:
                        m.next = "SMX_END"
                    else:
                        with m.If(evaluating):
                            m.next = "SMX_END"
                        with m.Else():
                            run_pass(KIND_BU, nl - 1)
                            m.next = "BWD"
            with m.State("SMX_END"):
                with m.If(unit.smx_done):
                    complete_sample()

            with m.State("BWD"):
                with m.If(unit.can_start):
                    with m.If(lay == 1):
                        complete_sample()
                    with m.Else():
                        run_pass(KIND_BU, lay - 1)

            # before idle: layer 0's pending update, alone
            with m.State("DRAIN"):
                with m.If(pending):
                    with m.If(unit.can_start):
                        m.d.comb += [u_start.eq(1), u_kind.eq(KIND_U), u_layer.eq(0),
                                     a0_cur.eq(cur)]
                        m.d.sync += pending.eq(0)
                        m.next = "DRAIN_WAIT"
                with m.Else():
                    m.next = "DRAIN_WAIT"
            with m.State("DRAIN_WAIT"):
                with m.If(unit.ready):
                    m.d.sync += state.eq(0)
                    m.next = "IDLE"
        return m

    def _bus(self, m, idle, regmap, d_rp, d_wp, steps):
        """Serve the host's accesses while idle: registers, data, weight and state banks."""
        bus, unit = self.bus, self.unit
        regions = self.regions()
        nl = self.n_layers
        rd_pending, rd_kind = Signal(self.read_reg + 1), Signal(2)
        wr_ack = Signal()
        n_reg = LAYER_REGS + 4 * nl
        regfile = Memory(shape=unsigned(32), depth=n_reg, init=[], attrs={"no_rw_check": 1})
        m.submodules.regfile = regfile
        reg_wp = regfile.write_port()
        reg_rd = RegisteredRead(m, regfile, "regfile", enable=True)
        accept = bus.cmd_valid & bus.cmd_ready
        m.d.comb += [reg_wp.addr.eq(bus.cmd_addr), reg_wp.data.eq(bus.cmd_wdata),
                     reg_rd.addr.eq(bus.cmd_addr), reg_rd.en.eq(accept)]
        reg_rdata = reg_rd.data
        rd_layer = Signal(range(max(nl, 2)))
        rd_bank = Signal(range(max(self.lanes + self.bias_lane, 2)))
        m.d.sync += [rd_pending.eq(rd_pending << 1), wr_ack.eq(0)]
        done = rd_pending[-1]
        m.d.comb += [bus.rsp_valid.eq(done | wr_ack), unit.b_addr.eq(bus.cmd_addr),
                     unit.b_wdata.eq(bus.cmd_wdata), unit.b_rlayer.eq(rd_layer),
                     unit.b_rbank.eq(rd_bank), d_wp.data.eq(bus.cmd_wdata)]
        rsp = Signal(32)
        # the data memory's port follows the address every cycle: keep the word read
        d_word = d_rp.data
        if self.read_reg:
            d_word = Signal(16)
            with m.If(rd_pending[0]):
                m.d.sync += d_word.eq(d_rp.data)
        with m.Switch(rd_kind):
            with m.Case(0):
                m.d.comb += rsp.eq(reg_rdata)
            with m.Case(1):
                m.d.comb += rsp.eq(d_word)
            with m.Case(2):
                m.d.comb += rsp.eq(unit.b_rdata_u)
            with m.Case(3):
                m.d.comb += rsp.eq(unit.b_rdata_v)
        m.d.comb += bus.rsp_rdata.eq(Mux(done, rsp, 0))
        # the link waits for each response before its next access
        m.d.comb += bus.cmd_ready.eq(idle)
        with m.If(bus.cmd_valid & bus.cmd_ready):
            with m.If(bus.cmd_write):
                m.d.sync += wr_ack.eq(1)
            with m.Else():
                m.d.sync += rd_pending.eq(1)
            with m.Switch(bus.cmd_region[:(len(regions) - 1).bit_length()]):
                with m.Case(0):
                    m.d.sync += rd_kind.eq(0)
                    # only the mapped words are written (the others read back 0)
                    with m.Switch(bus.cmd_addr[:(n_reg - 1).bit_length()]):
                        for adr, updates in regmap.items():
                            with m.Case(adr):
                                with m.If(bus.cmd_write):
                                    m.d.comb += reg_wp.en.eq(1)
                                    m.d.sync += updates
                with m.Case(1):
                    m.d.sync += rd_kind.eq(1)
                    m.d.comb += d_wp.en.eq(bus.cmd_write)
                for rid, name, _, _ in regions[2:]:
                    kind, rest = name[0], name[1:]
                    l, b = (int(t) for t in rest.split("."))
                    with m.Case(rid):
                        m.d.sync += [rd_kind.eq(2 if kind == "u" else 3), rd_layer.eq(l),
                                     rd_bank.eq(b)]
                        m.d.comb += [(unit.b_we_u if kind == "u" else unit.b_we_v).eq(
                            bus.cmd_write), unit.b_layer.eq(l), unit.b_bank.eq(b)]
                        with m.If(bus.cmd_write):
                            m.d.sync += steps.eq(0)
