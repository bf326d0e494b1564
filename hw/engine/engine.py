"""The training engine: registers, host access, run control and the pass schedule.

Per sample of an ``n_0 - ... - n_L`` MLP (``docs/engine.md``, ``docs/protocol.md`` §9) the
passes split into two stages, as ``golden/pipeline.py`` does::

    stage A   UF_0 (layer 0's pending update fused with its forward; F_0 when nothing is
              pending)
    stage B   F_1 .. F_{L-1}, the softmax error, BU_{L-1} .. BU_1 (layer 0's gradient
              becomes the pending update)

and before the engine goes idle (end of a run, STOP, a refused record; in pipelined mode
at every epoch's end) the pending updates alone (``U_0``). **Exact mode** runs stage A then
stage B of each sample: bit-exact with ``LNSMLP.step``. **Pipelined mode** (a build with
``pipelined=True``: one datapath for layer 0, one for the others) runs stage A of sample
``k`` beside stage B of sample ``k - 1``; layer 0 then forwards with weights one sample
stale. The next record loads into an input buffer while the current ones train
(:class:`~.loader.Loader`). The golden twin is :class:`lnsmadam.golden.trainer.DeviceTrainer`.

Run control (``docs/protocol.md`` §8): ``START`` is refused (``error = 1``, nothing
changes) unless ``n_train >= 1``, ``n_train + n_test <= max_records`` (on the full 32-bit
registers), ``epochs >= 1``, ``1 <= lr_step <= 64``, ``sample_base < n_train`` and the
``mode`` is supported; ``EVALUATE`` also needs ``n_test >= 1``. A run's first epoch starts
at position ``sample_base`` of ``epoch_order(n_train, seed, epoch_base)``, later epochs at
0. A record whose label is not below ``n_out`` stops the run before it is used (``error =
2``, ``sample`` = its position). ``STOP`` lets no further sample in; those in flight finish.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from ...golden.image import REGS, record_words, region_table, register_map, regs_depth
from ...golden.mlp import MLPConfig
from ...golden.soc import check_engine
from ...golden.trainer import ERR_LABEL, ERR_REFUSED
from ..bus import ControlSignature, MemBus
from ..shuffle import Shuffler
from ..util.registered_read import RegisteredRead
from .datapath import BIAS_BITS, KIND_BU, KIND_F, KIND_U, KIND_UF, PassUnit, unit_geometry
from .loader import Loader
from .vectors import Shared

__all__ = ["Engine"]


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
        Weights per cycle in every pass (in each stage's datapath).
    max_records : int, 1..65535
        Samples the data memory holds, ``max_records * record_words(n_in) <= 65536``.
    read_reg, conv_pipeline, mac_pipeline, update_pipeline : int
        Register stages (:class:`~.datapath.PassUnit`; ``read_reg`` also registers the
        host's request): 0..1, 0..4, 0..2 + log2(lanes), 0..7; fewer cost fewer flip-flops
        and a lower clock.
    softmax : "serial" or "parallel"
        The softmax-error unit (:class:`~.datapath.PassUnit`).
    bias_lane : bool
        A lane of its own for every layer's bias column (:class:`~.datapath.PassUnit`); its
        weights and state are the regions ``u{l}.{lanes}`` / ``v{l}.{lanes}``.
    fast_shuffle : bool
        The epoch order's multiplies by a multiplier (:class:`~lnsmadam.hw.shuffle.Shuffler`
        ``fast``): 4 instead of ``bits(max_records) + 3`` cycles per training sample and
        epoch.
    pipelined : bool
        The pipelined capability (``mode`` bit 0): a datapath for layer 0 (stage A) and
        one for the other layers (stage B), which run at once in pipelined mode and one
        after the other in exact mode; needs at least two layers.

    Members
    -------
    bus : In(MemBus)
        Host access to the regions (:meth:`regions`), only while idle.
    ctl : In(ControlSignature)
        START / STOP / EVALUATE and the status.

    Latency
    -------
    A host access is served in its handshake cycle (``read_reg = 0``) or, with
    ``read_reg = 1``, taken into a register then and served in the next: a write is
    answered ``1 + read_reg`` cycles after the handshake, a read ``1 + 2 * read_reg``.
    Per training sample about ``visits / lanes`` cycles plus each pass's drain and the
    softmax unit in exact mode (``docs/engine.md``, measured by ``bench/grids/trainer_cycles.toml``);
    in pipelined mode the longer of the two stages.

    Throughput
    ----------
    One sample at a time (exact mode) or two (pipelined); ``lanes`` weight visits per cycle
    in each datapath.

    Notes
    -----
    The region map is ``docs/protocol.md`` §7 (column banks, as ``golden/image.py`` packs).
    """

    def __init__(self, cfg: MLPConfig, lanes: int = 1, max_records: int = 1797,
                 read_reg: int = 1, conv_pipeline: int = 3, mac_pipeline: int = 2,
                 update_pipeline: int = 5, softmax: str = "serial", bias_lane: bool = False,
                 fast_shuffle: bool = False, pipelined: bool = False):
        # a rejected configuration is not an unused elaboratable (no warning for it)
        self._MustUse__silence = True
        check_engine(cfg, lanes=lanes, max_records=max_records, read_reg=read_reg,
                     conv_pipeline=conv_pipeline, mac_pipeline=mac_pipeline,
                     update_pipeline=update_pipeline, softmax=softmax, bias_lane=bias_lane,
                     fast_shuffle=fast_shuffle, pipelined=pipelined)
        self.lanes, self.max_records = lanes, max_records
        self.rec = record_words(cfg.sizes[0])
        self.cfg = cfg
        self.n_layers = nl = len(cfg.sizes) - 1
        self.rows = [cfg.sizes[l + 1] for l in range(nl)]
        self.mac_pipeline = mac_pipeline
        self.bias_lane, self.fast_shuffle, self.pipelined = bias_lane, fast_shuffle, pipelined
        self.read_reg, self.conv_pipeline = read_reg, conv_pipeline
        self.update_pipeline, self.softmax = update_pipeline, softmax
        kw = dict(read_reg=read_reg, conv_pipeline=conv_pipeline, mac_pipeline=mac_pipeline,
                  update_pipeline=update_pipeline, softmax=softmax, bias_lane=bias_lane)
        if pipelined:
            g = unit_geometry(cfg, lanes, bias_lane)
            self.shared = Shared(cfg, lanes, g["wpr"], bias_lane, g["x_bits"], g["acc_bits"],
                                 g["e_linear"], read_reg, double=True, bias_bits=BIAS_BITS)
            self.units = [PassUnit(cfg, lanes, layers=(0, 0), shared=self.shared, **kw),
                          PassUnit(cfg, lanes, layers=(1, nl - 1), shared=self.shared, **kw)]
        else:
            self.shared = None
            self.units = [PassUnit(cfg, lanes, **kw)]
        for u in self.units:
            u._MustUse__silence = True
        self.wpr = self.units[0].wpr
        super().__init__({"bus": In(MemBus), "ctl": In(ControlSignature)})
        self._MustUse__silence = False

    def unit_of(self, l: int) -> tuple[int, int]:
        """``(unit index, layer index in that unit)`` of layer ``l``."""
        if len(self.units) == 1 or l == 0:
            return 0, l
        return 1, l - 1

    # -- region map -------------------------------------------------------------------------
    def regions(self) -> list[tuple[int, str, int, int]]:
        """``(id, name, width, depth)`` of every host-visible region, in id order
        (:func:`~lnsmadam.golden.image.region_table`; a SoC's is its
        :meth:`~lnsmadam.golden.soc.SoCConfig.regions`)."""
        md = self.cfg.madam
        return region_table(self.cfg.sizes, self.lanes, self.max_records, md.weight.bits,
                            md.state.bits, self.bias_lane)

    # -- elaboration ------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        cfg, nl, L = self.cfg, self.n_layers, self.lanes
        n_in = cfg.sizes[0]
        bus = self.bus
        for k, u in enumerate(self.units):
            m.submodules[f"unit{k}" if len(self.units) > 1 else "unit"] = u
        if self.shared is not None:
            self.shared.build(m)
        ua = self.units[0]
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
                     loader.sh_data.eq(shuf.rd_data), ua.a0_we.eq(loader.a0_we),
                     ua.a0_waddr.eq(loader.a0_waddr), ua.a0_wdata.eq(loader.a0_wdata)]
        q = self._bus_slice(m)
        r = self._registers(m, q.wdata)
        r.steps = Signal(32)
        r.idle = Signal()
        self._bus(m, r, q, d_rp, d_wp)
        m.d.comb += d_addr.eq(Mux(r.idle, q.addr, loader.d_addr))
        self._control(m, r, shuf, loader)
        return m

    def _registers(self, m, wd):
        """The host's registers. It reads back exactly what it wrote: the 32-bit words live
        in a small memory (:meth:`_bus`). The logic keeps only what it uses: a count's low
        16 bits and whether any higher bit is set (such a value is always refused, so the
        checks stay exact), epoch_base's low 16 bits (the shuffle), mode's bit 0 and whether
        any other bit is set, and each per-layer constant in its own width."""
        from types import SimpleNamespace
        cfg, nl = self.cfg, self.n_layers
        r = SimpleNamespace()
        r.lo = {k: Signal(16, name=k) for k in ("n_train", "n_test", "sample_base",
                                                 "epoch_base")}
        r.big = {k: Signal(name=f"{k}_big") for k in ("n_train", "n_test", "sample_base")}
        r.mode0, r.mode_rest = Signal(), Signal()
        u_bias = [Signal(signed(BIAS_BITS), name=f"u_bias{l}") for l in range(nl)]
        f_bias = [Signal(signed(BIAS_BITS), name=f"f_bias{l}") for l in range(nl)]
        e_clamp = [Signal(cfg.madam.weight.exp_bits, name=f"e_clamp{l}") for l in range(nl)]
        for l in range(nl):
            k, i = self.unit_of(l)
            u = self.units[k]
            m.d.comb += [u.u_bias[i].eq(u_bias[l]), u.f_bias[i].eq(f_bias[l]),
                         u.e_clamp[i].eq(e_clamp[l])]
        r.regmap = {REGS[k]: [r.lo[k].eq(wd[:16])] +
                    ([r.big[k].eq(wd[16:] != 0)] if k in r.big else []) for k in r.lo}
        r.regmap[REGS["mode"]] = [r.mode0.eq(wd[0]), r.mode_rest.eq(wd[1:] != 0)]
        addr = register_map(nl)
        for l in range(nl):
            for f, sig in (("u_bias", u_bias[l]), ("f_bias", f_bias[l]),
                           ("e_clamp", e_clamp[l])):
                r.regmap[addr[f"{f}{l}"]] = [sig.eq(wd)]
        return r

    def _bus_slice(self, m):
        """The host's request: with ``read_reg`` registered in its handshake cycle
        (``q.valid`` the cycle after), else the bus itself. Why: the link decodes a request
        from its frame buffer's read port, and without this register that decode ran on
        into every bank's write enable and data (the ECP5 critical path at 52 MHz); it costs
        one cycle per access, which the UART never notices, and ~65 iCE40 cells, which the
        iCEBreaker (``read_reg = 0``) does not have."""
        from types import SimpleNamespace
        bus = self.bus
        if not self.read_reg:
            return SimpleNamespace(valid=bus.cmd_valid & bus.cmd_ready, write=bus.cmd_write,
                                   region=bus.cmd_region, addr=bus.cmd_addr,
                                   wdata=bus.cmd_wdata)
        q = SimpleNamespace(valid=Signal(name="bus_q_valid"),
                            write=Signal(name="bus_q_write"),
                            region=Signal.like(bus.cmd_region, name="bus_q_region"),
                            addr=Signal.like(bus.cmd_addr, name="bus_q_addr"),
                            wdata=Signal.like(bus.cmd_wdata, name="bus_q_wdata"))
        take = bus.cmd_valid & bus.cmd_ready
        m.d.sync += q.valid.eq(take)
        with m.If(take):
            m.d.sync += [q.write.eq(bus.cmd_write), q.region.eq(bus.cmd_region),
                         q.addr.eq(bus.cmd_addr), q.wdata.eq(bus.cmd_wdata)]
        # a bank region decoded into (state?, unit, layer, bank) before the register: the
        # decode of the registered id ran on into every bank's write enable (the 16-lane
        # ULX3S-85F critical path at 51 MHz, 13 levels)
        q.bank_hit, q.is_v = Signal(name="bus_q_bank"), Signal(name="bus_q_is_v")
        q.unit = Signal(range(max(len(self.units), 2)), name="bus_q_unit")
        q.layer = Signal(range(max(self.n_layers, 2)), name="bus_q_layer")
        q.bank = Signal(range(max(self.lanes + self.bias_lane, 2)), name="bus_q_bankno")
        regions = self.regions()
        with m.If(take):
            m.d.sync += q.bank_hit.eq(0)
            with m.Switch(bus.cmd_region[:(len(regions) - 1).bit_length()]):
                for rid, (kind, k, i, b) in self._bank_regions():
                    with m.Case(rid):
                        m.d.sync += [q.bank_hit.eq(1), q.is_v.eq(kind == "v"), q.unit.eq(k),
                                     q.layer.eq(i), q.bank.eq(b)]
        return q

    def _bank_regions(self):
        """``(region id, (kind, unit, layer in that unit, bank))`` of every bank region."""
        out = []
        for rid, name, _, _ in self.regions()[2:]:
            kind, rest = name[0], name[1:]
            l, b = (int(t) for t in rest.split("."))
            k, i = self.unit_of(l)
            out.append((rid, (kind, k, i, b)))
        return out

    def _bus(self, m, r, q, d_rp, d_wp):
        """Serve the host's accesses while idle: registers, data, weight and state banks;
        ``q`` is the request (:meth:`_bus_slice`)."""
        bus = self.bus
        regions = self.regions()
        nl, NU = self.n_layers, len(self.units)
        rd_pending, rd_kind = Signal(self.read_reg + 1), Signal(2)
        wr_ack = Signal()
        n_reg = regs_depth(nl)
        regfile = Memory(shape=unsigned(32), depth=n_reg, init=[], attrs={"no_rw_check": 1})
        m.submodules.regfile = regfile
        reg_wp = regfile.write_port()
        reg_rd = RegisteredRead(m, regfile, "regfile", enable=True)
        accept = q.valid
        m.d.comb += [reg_wp.addr.eq(q.addr), reg_wp.data.eq(q.wdata),
                     reg_rd.addr.eq(q.addr), reg_rd.en.eq(accept)]
        rd_unit = Signal(range(max(NU, 2)))
        rd_layer = Signal(range(max(nl, 2)))
        rd_bank = Signal(range(max(self.lanes + self.bias_lane, 2)))
        m.d.sync += [rd_pending.eq(rd_pending << 1), wr_ack.eq(0)]
        done = rd_pending[-1]
        m.d.comb += [bus.rsp_valid.eq(done | wr_ack), d_wp.data.eq(q.wdata)]
        if self.read_reg:
            host = Signal(name="host_d", init=1)
            m.d.sync += host.eq(r.idle)
        for u in self.units:
            # idle implies every unit ready, so either selects the host whenever it may
            # access; ready is 4 iCE40 cells cheaper, idle a shorter path (the ECP5 clock),
            # and with the request register a cycle late is soon enough: a request taken
            # in the first idle cycle is served in the next, and the cycle after idle no
            # pass has started yet
            m.d.comb += [u.b_host.eq(host if self.read_reg else u.ready),
                         u.b_addr.eq(q.addr), u.b_wdata.eq(q.wdata),
                         u.b_rlayer.eq(rd_layer), u.b_rbank.eq(rd_bank)]
        rsp = Signal(32)
        # the data memory's port follows the address every cycle: keep the word read
        d_word = d_rp.data
        if self.read_reg:
            d_word = Signal(16)
            with m.If(rd_pending[0]):
                m.d.sync += d_word.eq(d_rp.data)
        with m.Switch(rd_kind):
            with m.Case(0):
                m.d.comb += rsp.eq(reg_rd.data)
            with m.Case(1):
                m.d.comb += rsp.eq(d_word)
            with m.Case(2):
                m.d.comb += rsp.eq(self._pick_unit(m, [u.b_rdata_u for u in self.units],
                                                   rd_unit))
            with m.Case(3):
                m.d.comb += rsp.eq(self._pick_unit(m, [u.b_rdata_v for u in self.units],
                                                   rd_unit))
        m.d.comb += bus.rsp_rdata.eq(Mux(done, rsp, 0))
        # the link waits for each response before its next access; none is taken while the
        # registered one is served
        m.d.comb += bus.cmd_ready.eq(r.idle & ~q.valid if self.read_reg else r.idle)
        with m.If(accept):
            with m.If(q.write):
                m.d.sync += wr_ack.eq(1)
            with m.Else():
                m.d.sync += rd_pending.eq(1)
            with m.Switch(q.region[:(len(regions) - 1).bit_length()]):
                with m.Case(0):
                    m.d.sync += rd_kind.eq(0)
                    # only the mapped words are written (the others read back 0)
                    with m.Switch(q.addr[:(n_reg - 1).bit_length()]):
                        for adr, updates in r.regmap.items():
                            with m.Case(adr):
                                with m.If(q.write):
                                    m.d.comb += reg_wp.en.eq(1)
                                    m.d.sync += updates
                with m.Case(1):
                    m.d.sync += rd_kind.eq(1)
                    m.d.comb += d_wp.en.eq(q.write)
                if not self.read_reg:
                    # no request register to decode into (_bus_slice): the id is decoded
                    # here, as the iCEBreaker's engine always did (one cell to spare)
                    for rid, (kind, k, i, b) in self._bank_regions():
                        u = self.units[k]
                        with m.Case(rid):
                            m.d.sync += [rd_kind.eq(2 if kind == "u" else 3), rd_layer.eq(i),
                                         rd_bank.eq(b), rd_unit.eq(k)]
                            m.d.comb += [(u.b_we_u if kind == "u" else u.b_we_v).eq(
                                q.write), u.b_layer.eq(i), u.b_bank.eq(b)]
                            with m.If(q.write):
                                m.d.sync += r.steps.eq(0)
            if self.read_reg:
                # the request was decoded when it was registered (_bus_slice)
                with m.If(q.bank_hit):
                    m.d.sync += [rd_kind.eq(Mux(q.is_v, 3, 2)), rd_layer.eq(q.layer),
                                 rd_bank.eq(q.bank), rd_unit.eq(q.unit)]
                    for k, u in enumerate(self.units):
                        mine = q.write & (q.unit == k)
                        m.d.comb += [u.b_we_u.eq(mine & ~q.is_v), u.b_we_v.eq(mine & q.is_v),
                                     u.b_layer.eq(q.layer), u.b_bank.eq(q.bank)]
                    with m.If(q.write):
                        m.d.sync += r.steps.eq(0)

    @staticmethod
    def _pick_unit(m, values, index):
        if len(values) == 1:
            return values[0]
        return Mux(index, values[1], values[0])

    # -- the schedule -----------------------------------------------------------------------
    def _control(self, m, r, shuf, loader):
        """Run control: commands, epochs, the samples of stage A, the pipelined steps, the
        drains; :meth:`_stage_b` runs stage B when told to."""
        cfg, nl, ctl = self.cfg, self.n_layers, self.ctl
        n_out = cfg.sizes[-1]
        ua = self.units[0]
        s = self._run_state(m, r)
        bgo, bdone = Signal(), Signal()
        self._stage_b(m, s, bgo, bdone)
        n_train, n_test = r.lo["n_train"], r.lo["n_test"]
        m.d.comb += [ctl.state.eq(s.state), ctl.error.eq(s.error), ctl.epoch.eq(s.epoch),
                     ctl.sample.eq(s.pos), ctl.correct.eq(s.correct),
                     ctl.last_correct.eq(s.last_correct), ctl.steps.eq(r.steps),
                     ctl.busy.eq(s.state != 0), shuf.n.eq(n_train), shuf.seed.eq(s.seed),
                     shuf.epoch.eq(r.lo["epoch_base"] + s.epoch), loader.n_train.eq(n_train),
                     loader.eval.eq(s.evaluating)]
        for u in self.units:
            m.d.comb += u.lr_step.eq(s.lr_step)
        with m.If(ctl.stop):
            m.d.sync += s.stop_req.eq(1)

        # stage A's passes (layer 0) and the loader, driven by this FSM
        ld_start, ld_pos, ld_buf = Signal(), Signal(16), Signal(2)
        m.d.comb += [loader.start.eq(ld_start), loader.pos.eq(ld_pos), loader.buf.eq(ld_buf)]
        a_kind, a_cur, a_prev, a_hsel, a_esel = (Signal(2), Signal(2), Signal(2), Signal(),
                                                 Signal())
        s.a_start = Signal()
        m.d.comb += [a_cur.eq(s.cur), a_prev.eq(s.cur - 1), a_hsel.eq(s.cur[0]),
                     a_esel.eq((s.cur - 1)[0])]
        s.a_ports = (a_kind, a_cur, a_prev, a_hsel, a_esel)

        def stage_a(kind, cur, prev):
            m.d.comb += [s.a_start.eq(1), a_kind.eq(kind), a_cur.eq(cur), a_prev.eq(prev),
                         a_hsel.eq(cur[0]), a_esel.eq(prev[0])]

        label_ok = loader.label < n_out
        last_of_run = s.pos == s.n_run - 1
        can = s.can_a

        def begin_sample(p, buf, pend, last):
            """Take the sample at position ``p`` (loaded into input buffer ``buf``; its label
            checked; exact mode): prefetch the next record, run stage A."""
            m.d.sync += s.label.eq(loader.label)
            with m.If(~last):
                m.d.comb += [ld_start.eq(1), ld_pos.eq(p + 1), ld_buf.eq(buf + 1)]
            stage_a(Mux(pend, KIND_UF, KIND_F), buf, buf - 1)
            m.next = "A_RUN"

        def complete_sample():
            """Stage B finished the sample (training: its layer-0 update pending): the
            counters, then the next sample at once when its record is in."""
            m.d.sync += [s.pos.eq(s.pos + 1), s.cur.eq(s.cur + 1)]
            with m.If(~s.evaluating):
                m.d.sync += [r.steps.eq(r.steps + 1), s.pending.eq(1)]
            with m.If(last_of_run):
                end_of_epoch()
            with m.Elif(s.stop_req):
                m.next = "DRAIN"
            with m.Elif(~loader.busy & label_ok):
                begin_sample(s.pos + 1, s.cur + 1, ~s.evaluating, s.pos + 1 == s.n_run - 1)
            with m.Else():
                m.next = "SAMPLE_WAIT"

        def end_of_epoch():
            m.d.sync += [s.last_correct.eq(s.correct), s.pos.eq(0)]
            with m.If(s.evaluating):
                m.next = "DRAIN"
            with m.Else():
                m.d.sync += [s.epoch.eq(s.epoch + 1), s.correct.eq(0)]
                with m.If((s.epoch == s.epochs - 1) | s.stop_req):
                    m.next = "DRAIN"
                with m.Else():
                    m.next = "SHUF"

        rec_ok = (~r.big["n_train"] & ~r.big["n_test"] & (n_train != 0)
                  & (n_train + n_test <= self.max_records))
        mode_ok = ~r.mode_rest & (~r.mode0 if not self.pipelined else 1)
        with m.FSM(name="seq"):
            with m.State("IDLE"):
                m.d.comb += r.idle.eq(1)
                # (EVALUATE leaves epoch as the last run left it)
                accept = [s.stop_req.eq(0), s.correct.eq(0), s.error.eq(0), s.pending.eq(0),
                          s.cur.eq(0)]
                with m.If(ctl.start | ctl.evaluate):
                    # a refused command changes nothing but the error
                    with m.If(ctl.start):
                        ok = (rec_ok & (ctl.epochs != 0) & (ctl.lr_step >= 1)
                              & (ctl.lr_step <= 64) & ~r.big["sample_base"]
                              & (r.lo["sample_base"] < n_train) & mode_ok)
                        with m.If(ok):
                            m.d.sync += accept + [
                                s.epoch.eq(0), s.epochs.eq(ctl.epochs), s.seed.eq(ctl.seed),
                                s.lr_step.eq(ctl.lr_step), s.evaluating.eq(0),
                                s.n_run.eq(n_train), s.pos.eq(r.lo["sample_base"]),
                                s.state.eq(1), s.piped.eq(r.mode0 if self.pipelined else 0)]
                            m.next = "SHUF"
                        with m.Else():
                            m.d.sync += s.error.eq(ERR_REFUSED)
                    with m.Else():
                        with m.If(rec_ok & (n_test != 0)):
                            m.d.sync += accept + [s.evaluating.eq(1), s.n_run.eq(n_test),
                                                  s.pos.eq(0), s.state.eq(2), s.piped.eq(0)]
                            m.next = "LOAD"
                        with m.Else():
                            m.d.sync += s.error.eq(ERR_REFUSED)

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
                m.d.comb += [ld_start.eq(1), ld_pos.eq(s.pos), ld_buf.eq(s.cur)]
                m.d.sync += s.pos_a.eq(s.pos)
                m.next = "SAMPLE_WAIT"
            with m.State("SAMPLE_WAIT"):
                with m.If(~loader.busy & ~ld_start):
                    m.next = "SAMPLE"
                    if self.pipelined:
                        with m.If(s.piped):
                            m.next = "P_STEP"

            # exact mode: a sample starts; STOP or a bad label end the run before it is used
            with m.State("SAMPLE"):
                with m.If(s.stop_req | ~label_ok):
                    with m.If(~s.stop_req):
                        m.d.sync += s.error.eq(ERR_LABEL)
                    m.next = "DRAIN"
                with m.Elif(can):
                    begin_sample(s.pos, s.cur, s.pending, last_of_run)
            with m.State("A_RUN"):
                with m.If(can):
                    m.d.comb += bgo.eq(1)
                    m.next = "B_RUN"
            with m.State("B_RUN"):
                with m.If(bdone):
                    complete_sample()

            if self.pipelined:
                self._pipelined_states(m, r, s, loader, bgo, bdone, stage_a, ld_start,
                                       ld_pos, ld_buf, label_ok)

            # before idle: layer 0's pending update(s), alone, in sample order
            with m.State("DRAIN"):
                with m.If(s.pending):
                    with m.If(can):
                        stage_a(KIND_U, s.cur, s.cur - 1)
                        m.d.sync += s.pending.eq(0)
                        m.next = "DRAIN_WAIT"
                with m.Else():
                    m.next = "DRAIN_WAIT"
            with m.State("DRAIN_WAIT"):
                with m.If(s.ready_all):
                    m.d.sync += s.state.eq(0)
                    m.next = "IDLE"
        self._drive_units(m, s)

    def _run_state(self, m, r):
        """The run's registers and the units' handshakes."""
        from types import SimpleNamespace
        cfg = self.cfg
        n_rec = range(self.max_records + 1)
        s = SimpleNamespace()
        s.epochs, s.seed = Signal(16), Signal(32)
        s.lr_step = Signal(7, init=cfg.madam.lr_step)
        s.evaluating, s.stop_req, s.pending, s.piped = Signal(), Signal(), Signal(), Signal()
        s.epoch, s.pos, s.correct = Signal(16), Signal(n_rec), Signal(n_rec)
        s.last_correct, s.error, s.state = Signal(n_rec), Signal(2), Signal(2)
        s.n_run, s.pos_a = Signal(n_rec), Signal(n_rec)
        s.cur = Signal(2)              # input buffer of stage A's sample
        s.label = Signal(range(max(cfg.sizes[-1], 2)))      # stage B's sample's class
        ua, ub = self.units[0], self.units[-1]
        s.can_a, s.can_b = ua.can_start, ub.can_start
        if len(self.units) == 1:
            s.ready_all = ua.ready
        else:
            # exact mode: only one stage runs at a time, so each waits for both
            s.ready_all = ua.ready & ub.ready
            s.can_a = ua.can_start & (ub.can_start | s.piped)
            s.can_b = ub.can_start & (ua.can_start | s.piped)
        return s

    def _drive_units(self, m, s):
        """The passes of stage A (this FSM) and stage B (:meth:`_stage_b`) onto the units:
        two units, or one that serves both stages (never at once: exact mode only)."""
        ua, ub = self.units[0], self.units[-1]
        a_kind, a_cur, a_prev, a_hsel, a_esel = s.a_ports
        m.d.comb += [ua.kind.eq(a_kind), ua.layer.eq(0), ua.a0_cur.eq(a_cur),
                     ua.a0_prev.eq(a_prev), ua.hsel.eq(a_hsel), ua.esel.eq(a_esel)]
        if ua is ub:
            m.d.comb += ua.start.eq(s.a_start | s.b_start)
            with m.If(s.b_start):
                m.d.comb += [ua.kind.eq(s.b_kind), ua.layer.eq(s.b_layer)]
        else:
            m.d.comb += [ua.start.eq(s.a_start), ub.start.eq(s.b_start),
                         ub.kind.eq(s.b_kind), ub.layer.eq(s.b_layer - 1),
                         ub.hsel.eq(s.b_par), ub.esel.eq(s.b_par)]
        m.d.comb += ub.label.eq(s.label)

    def _stage_b(self, m, s, bgo, bdone):
        """Stage B of one sample, started by ``bgo``: the forward of layers 1..L-1, the
        softmax error (the prediction: ``correct``), and in training the backward + update
        of layers L-1..1; ``bdone`` when layer 0's error ``e_0`` (its bias in X - 2 cycles)
        or, without a backward, the last error code is in."""
        nl = self.n_layers
        ub = self.units[-1]
        s.b_start, s.b_kind = Signal(), Signal(2)
        s.b_layer, s.b_par = Signal(range(max(nl, 2))), Signal()
        lay = Signal(range(max(nl, 2)))

        def run(kind, layer):
            m.d.comb += [s.b_start.eq(1), s.b_kind.eq(kind), s.b_layer.eq(layer)]
            m.d.sync += lay.eq(layer)

        with m.If(bgo):
            m.d.sync += s.b_par.eq(Mux(s.piped, (s.cur - 1)[0], s.cur[0]))
        with m.FSM(name="stage_b"):
            with m.State("IDLE"):
                with m.If(bgo):
                    if nl > 1:
                        m.next = "FWD_START"
                    else:
                        m.next = "SMX"
            if nl > 1:
                with m.State("FWD_START"):
                    with m.If(s.can_b):
                        run(KIND_F, 1)
                        m.next = "FWD"
                with m.State("FWD"):
                    with m.If(s.can_b):
                        with m.If(lay != nl - 1):
                            run(KIND_F, lay + 1)
                        with m.Else():
                            m.next = "SMX"
            # the prediction comes with the first error code; the output layer's backward
            # pass may start then (it reads each code after it is written)
            with m.State("SMX"):
                with m.If(ub.smx_first):
                    with m.If(ub.argmax == s.label):
                        m.d.sync += s.correct.eq(s.correct + 1)
                    if nl == 1:
                        m.next = "SMX_END"
                    else:
                        with m.If(s.evaluating):
                            m.next = "SMX_END"
                        with m.Else():
                            run(KIND_BU, nl - 1)
                            m.next = "BWD"
            with m.State("SMX_END"):
                with m.If(ub.smx_done):
                    m.d.comb += bdone.eq(1)
                    m.next = "IDLE"
            with m.State("BWD"):
                with m.If(s.can_b):
                    with m.If(lay == 1):
                        m.d.comb += bdone.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        run(KIND_BU, lay - 1)

    def _pipelined_states(self, m, r, s, loader, bgo, bdone, stage_a, ld_start, ld_pos,
                          ld_buf, label_ok):
        """Pipelined mode: step ``k`` runs stage A on sample ``k`` (first the pending update of
        sample ``k-2``) beside stage B on sample ``k-1``; each epoch fills and drains on its
        own. ``s.pos`` is stage B's sample (samples finished), ``s.pos_a`` stage A's;
        ``npend`` counts the pending updates: of the last ``npend`` samples before the one
        in input buffer ``cur``."""
        npend = Signal(range(3))
        a_took, b_has, b_fin, a_fin = Signal(), Signal(), Signal(), Signal()
        label_a = Signal.like(s.label)
        take = (s.pos_a != s.n_run) & ~s.stop_req & ~loader.busy & label_ok
        with m.State("P_STEP"):
            with m.If(s.can_a & s.can_b & (~loader.busy | (s.pos_a == s.n_run) | s.stop_req)):
                with m.If(take):
                    # stage A takes sample pos_a: the pending update of pos_a - 2 first
                    with m.If(s.pos_a + 1 != s.n_run):
                        m.d.comb += [ld_start.eq(1), ld_pos.eq(s.pos_a + 1),
                                     ld_buf.eq(s.cur + 1)]
                    stage_a(Mux(npend != 0, KIND_UF, KIND_F), s.cur, s.cur - 2)
                    m.d.sync += [label_a.eq(loader.label), a_took.eq(1),
                                 npend.eq(Mux(npend != 0, npend - 1, 0))]
                with m.Else():
                    m.d.sync += a_took.eq(0)
                    with m.If((s.pos_a != s.n_run) & ~s.stop_req & ~label_ok):
                        m.d.sync += s.error.eq(ERR_LABEL)
                with m.If(b_has):
                    m.d.comb += bgo.eq(1)
                    m.d.sync += s.label.eq(label_a)
                m.d.sync += [b_fin.eq(~b_has), a_fin.eq(0)]
                with m.If(take | b_has):
                    m.next = "P_RUN"
                with m.Else():
                    m.next = "P_DRAIN"
        with m.State("P_RUN"):
            with m.If(bdone):
                m.d.sync += b_fin.eq(1)
            with m.If(s.can_a):
                m.d.sync += a_fin.eq(1)
            with m.If((b_fin | bdone) & (a_fin | s.can_a)):
                with m.If(b_has):
                    # stage B finished sample pos: its layer-0 update is pending
                    m.d.sync += [s.pos.eq(s.pos + 1), r.steps.eq(r.steps + 1)]
                with m.If(a_took):
                    m.d.sync += [s.pos_a.eq(s.pos_a + 1), s.cur.eq(s.cur + 1)]
                m.d.sync += [b_has.eq(a_took), npend.eq(npend + b_has)]
                m.next = "P_STEP"
        # the epoch's (or the stopped run's) drain: the pending updates in sample order
        with m.State("P_DRAIN"):
            with m.If(npend != 0):
                with m.If(s.can_a):
                    stage_a(KIND_U, s.cur, s.cur - npend)
                    m.d.sync += npend.eq(npend - 1)
            with m.Elif(s.ready_all):
                with m.If(s.pos == s.n_run):
                    m.d.sync += [s.last_correct.eq(s.correct), s.pos.eq(0), s.pos_a.eq(0),
                                 s.epoch.eq(s.epoch + 1), s.correct.eq(0)]
                    with m.If((s.epoch == s.epochs - 1) | s.stop_req):
                        m.d.sync += s.state.eq(0)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "SHUF"
                with m.Else():
                    m.d.sync += s.state.eq(0)
                    m.next = "IDLE"
