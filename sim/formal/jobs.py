"""The proofs of every block: which harness, which configuration, which mode and depth.

``BLOCKS`` maps a block name to a function of that block's options returning its
:class:`~.sby.Job` list (``lnsmadam prove BLOCK --option ...``); ``family_jobs()`` is the
set run at two or three sizes per block, the defaults included where the solver allows
(``lnsmadam prove all``); ``ci_jobs()`` is the subset the test suite runs (at least one
proof per block); :func:`mutant_jobs` are the injected bugs that must fail.

Depths: ``prove`` jobs close by k-induction at the depth given (their invariants are part
of the harness and proved with it); ``bmc`` jobs hold for every trace of that many cycles
from reset (see ``docs/verification.md`` for what that covers).
"""

from __future__ import annotations

from amaranth.hdl import Const, Mux

from ...golden.format import LNSFormat, check_int
from ...golden.mac import MACConfig
from ...golden.mlp import MLPConfig
from ...golden.soc import SoCConfig
from ...golden.update import MadamConfig
from ...hw import mac as hw_mac
from ...hw import shuffle as hw_shuffle
from ...hw import softmax as hw_softmax
from ...hw import update as hw_update
from ...hw.engine.engine import Engine
from ...hw.link import Link

from .link import IDENTIFY, REGIONS, LinkHarness
from .link_induct import LinkInductHarness
from .mac import MACHarness
from .mutants import Mutant, NoSaturation, Rewrite, set_to
from .sby import Job
from .shuffle import ShuffleHarness
from .softmax import SoftmaxHarness
from .trainer import TrainerHarness
from .update import UpdateHarness

__all__ = ["BLOCKS", "family_jobs", "ci_jobs", "mutant_jobs", "mac_jobs", "int8_mac_jobs",
           "update_jobs", "softmax_jobs", "shuffle_jobs", "link_jobs", "link_ci_job",
           "link_induct_jobs", "link_sizes",
           "trainer_jobs"]

#: BMC depths of the link's bounded checks (back-to-back host): a READ reaches the bus at
#: cycle 22, a START's pulse comes at cycle 24
LINK_DEPTH_CI, LINK_DEPTH_START = 24, 26
#: the link's bounded properties in CI (START's needs more depth: ``prove link``)
LINK_CI_PROPS = ("read_checked", "no_access_while_busy", "bus_cmd_held")
#: the bounded checks' device (the harness's default)
LINK_SMALL_PARAMS = {"identify_bytes": 4, "regions": "0: 8b x 4, 2: 12b x 3", "divisor": 4}
#: the bounded response's properties (what the stuck-link mutant must fail)
LINK_RESPONSE_PROPS = ("back_to_recv", "rank_decreases", "inv_rank_budget")
#: induction depth of the link's WRITE path and bounded response
LINK_K = 2
#: bounded runs of the link's mutants: the shortest WRITE reaches the bus at cycle 30;
#: the stuck mutant's counterexample (a bad frame and its reply) fits in 24 cycles
LINK_DEPTH_WRITE, LINK_DEPTH_REPLY = 32, 24
#: the small dot-product configuration of the end-to-end data checks (4-bit LNS, gamma 2)
#: (the window covers every product, so a lane with a ZERO operand is not below it anyway)
SMALL_LNS = dict(fmt=LNSFormat(4, 1), lut_frac=2, window=7, acc_bits=10)


def _check(make):
    """Build the block once to reject bad parameters before any job runs (with the
    parameter's own message); the instance itself is not used."""
    obj = make()
    obj._MustUse__silence = True


def mac_jobs(bits=8, gamma=8, lanes=1, acc_bits=32, window=16, lut_frac=8, mid_bits=None,
             saturate=True, pipeline=2, out_pipeline=3, engine="z3", data=True,
             data_lanes=None) -> list[Job]:
    """LNSMAC: control (k=3) and accumulator (k=1) at the given configuration; with
    ``data``, the end-to-end golden check at the small format with ``data_lanes`` (default:
    the same lanes) and the same saturation rule (BMC, depth 7, vectors of up to 2
    beats)."""
    cfg = MACConfig(LNSFormat.from_gamma(bits, gamma), lut_frac=lut_frac, window=window,
                    acc_bits=acc_bits, saturate=saturate, lanes=lanes, mid_bits=mid_bits)

    def make():
        return hw_mac.LNSMAC(cfg, pipeline=pipeline, out_pipeline=out_pipeline)

    _check(make)
    tag = f"b{bits}g{gamma}l{lanes}a{acc_bits}{'s' if saturate else 'w'}p{pipeline}o{out_pipeline}"
    params = {"bits": bits, "gamma": gamma, "lanes": lanes, "acc_bits": acc_bits,
              "window": window, "lut_frac": lut_frac, "saturate": saturate,
              "pipeline": pipeline, "out_pipeline": out_pipeline}
    jobs = [Job("mac", f"control_{tag}", lambda: MACHarness(make, "control"), "prove", 3,
                engine, params)]
    if pipeline >= 2 or lanes == 1:
        jobs.append(Job("mac", f"accumulate_{tag}", lambda: MACHarness(make, "accumulate"),
                        "prove", 1, engine, params))
    if data:
        dl = data_lanes or lanes
        small = MACConfig(**SMALL_LNS, saturate=saturate, lanes=dl)
        sp = {"bits": 4, "gamma": 2, "lut_frac": 2, "window": 7, "acc_bits": 10,
              "lanes": dl, "saturate": saturate, "pipeline": 2, "out_pipeline": 0,
              "max_beats": 2}
        jobs.append(Job("mac", f"data_b4g2l{dl}a10{'s' if saturate else 'w'}",
                        lambda: MACHarness(lambda: hw_mac.LNSMAC(small, pipeline=2,
                                                                 out_pipeline=0), "data",
                                           max_beats=2),
                        "bmc", 7, "boolector", sp))
    return jobs


def int8_mac_jobs(lanes=1, acc_bits=32, saturate=True, pipeline=2, engine="z3",
                  data=True) -> list[Job]:
    """INT8MAC: control and accumulator at the configuration; with ``data`` the golden
    check (``int8_dot``) at ``acc_bits = 16`` (BMC, depth 7)."""

    def make():
        return hw_mac.INT8MAC(lanes, acc_bits=acc_bits, saturate=saturate, pipeline=pipeline)

    _check(make)
    tag = f"l{lanes}a{acc_bits}{'s' if saturate else 'w'}p{pipeline}"
    params = {"lanes": lanes, "acc_bits": acc_bits, "saturate": saturate,
              "pipeline": pipeline}
    jobs = [Job("int8-mac", f"control_{tag}", lambda: MACHarness(make, "control"), "prove", 3,
                engine, params)]
    if pipeline >= 2 or lanes == 1:
        jobs.append(Job("int8-mac", f"accumulate_{tag}",
                        lambda: MACHarness(make, "accumulate"), "prove", 1, engine, params))
    if data:
        jobs.append(Job("int8-mac", f"data_l{lanes}a16{'s' if saturate else 'w'}",
                        lambda: MACHarness(lambda: hw_mac.INT8MAC(lanes, 16, saturate, 2),
                                           "data", max_beats=2),
                        "bmc", 7, "boolector", {**params, "acc_bits": 16, "pipeline": 2,
                                                "max_beats": 2}))
    return jobs


def update_jobs(pipeline=5, runtime_lr=False, lr_step=1, g_bound=10, engine="z3") -> list[Job]:
    """MadamUpdate (default formats): the pipeline at ``pipeline`` (k=2), the gradient and
    state properties inductive at ``pipeline = 0`` (k=1) and bounded at ``pipeline``
    (BMC, depth ``pipeline + 4``)."""
    cfg = MadamConfig(lr_step=lr_step, g_bound=g_bound)

    def make(p=pipeline):
        return hw_update.MadamUpdate(cfg, pipeline=p, runtime_lr=runtime_lr)

    _check(make)
    tag = f"p{pipeline}{'r' if runtime_lr else ''}lr{lr_step}g{g_bound}"
    params = {"pipeline": pipeline, "runtime_lr": runtime_lr, "lr_step": lr_step,
              "g_bound": g_bound, "formats": "MadamConfig() defaults"}
    jobs = [Job("update", f"control_{tag}", lambda: UpdateHarness(make), "prove", 2, engine,
                params),
            Job("update", f"state_p0{'r' if runtime_lr else ''}lr{lr_step}g{g_bound}",
                lambda: UpdateHarness(lambda: make(0), state=True), "prove", 1, engine,
                {**params, "pipeline": 0})]
    if pipeline:
        jobs.append(Job("update", f"state_{tag}", lambda: UpdateHarness(make, state=True),
                        "bmc", pipeline + 4, "boolector", params))
    return jobs


def softmax_jobs(n_out=10, engine="z3") -> list[Job]:
    """SoftmaxError of the default MLP with ``n_out`` classes (k=2; ``n_out`` in 1..4096,
    the unit's own range)."""
    check_int("n_out", n_out, 1, 4096)
    cfg = MLPConfig(sizes=(64, 16, n_out))

    def make():
        return hw_softmax.SoftmaxError(cfg)

    _check(make)
    return [Job("softmax", f"control_n{n_out}", lambda: SoftmaxHarness(make), "prove", 2,
                engine, {"n_out": n_out, "formats": "MLPConfig() defaults"})]


def shuffle_jobs(n_max=1437, engine="z3") -> list[Job]:
    """Shuffler with an order memory of ``n_max`` entries (k=2)."""

    def make():
        return hw_shuffle.Shuffler(n_max)

    _check(make)
    return [Job("shuffle", f"schedule_n{n_max}", lambda: ShuffleHarness(make), "prove", 2,
                engine, {"n_max": n_max})]


def link_sizes() -> dict:
    """The link configurations of the inductive proofs: ``(identify blob, regions,
    divisor)``. ``small``: the harness's device (4-byte blob; 8 bits x 4, 12 bits x 3);
    ``wide``: every word size (1, 2, 3, 4 bytes), the deepest region (65536 words) and a
    blob longer than ``MAX_BODY``; ``soc``: the default SoC's blob and region table."""
    soc = SoCConfig()
    return {
        "small": (IDENTIFY, REGIONS, 4),
        "wide": (bytes(range(256)) + bytes(44),
                 [(0, "w32", 32, 16), (1, "w16", 16, 65536), (5, "w24", 24, 100),
                  (7, "w1", 1, 1)], 4),
        "soc": (soc.identify_blob(), soc.regions(), soc.divisor),
    }


def link_induct_jobs(size="small", engine="boolector") -> list[Job]:
    """The link's WRITE path and bounded response (k-induction, k=2) at one of
    :func:`link_sizes`."""
    identify, regions, divisor = link_sizes()[size]

    def make():
        return Link(identify, regions, divisor)

    _check(make)
    params = {"size": size, "identify_bytes": len(identify),
              "regions": ", ".join(f"{i}: {w}b x {d}" for i, _, w, d in regions),
              "divisor": divisor}
    return [Job("link", f"write_{size}", lambda: LinkInductHarness(make, "write"), "prove",
                LINK_K, engine, params),
            Job("link", f"response_{size}", lambda: LinkInductHarness(make, "response"),
                "prove", LINK_K, engine, {**params, "environment": "responsive"})]


def link_jobs(engine="boolector") -> list[Job]:
    """The link: WRITE path and bounded response at every size of :func:`link_sizes`
    (k-induction); READ, BUSY and the bus handshake (:func:`link_ci_job`) and START
    (BMC, back-to-back host)."""
    jobs = []
    for size in link_sizes():
        jobs += link_induct_jobs(size, engine)
    return jobs + [link_ci_job(), Job(
        "link", f"start_d{LINK_DEPTH_START}", lambda: LinkHarness(
            back_to_back=True, only=("start_checked",)), "bmc", LINK_DEPTH_START, engine,
        {**LINK_SMALL_PARAMS, "host": "back to back", "properties": ["start_checked"]})]


def _trainer(sizes=(2, 2, 2), lanes=1, max_records=4, read_reg=1):
    cfg = SoCConfig(sizes=tuple(sizes), lanes=lanes, n_records=max_records, read_reg=read_reg)
    return Engine(cfg.mlp_config(), **cfg.engine_options())


def _harness(make, read_reg, memory=False, mutate=None):
    # the engine answers a write 1 + read_reg cycles after the command and a read
    # 1 + 2 read_reg (with read_reg it registers the command in its handshake cycle); its
    # region table is its own (the SoC's is the same, from golden.image.region_table)
    return TrainerHarness(make, memory=memory, rsp_latency=(1 + read_reg, 1 + 2 * read_reg),
                          mutate=mutate, regions=lambda dut: dut.regions())


def trainer_jobs(sizes=(2, 2, 2), lanes=1, max_records=4, depth=6, engine="z3",
                 read_reg=1) -> list[Job]:
    """Trainer (ports only): the bus/BUSY properties (k-induction, k=3: with ``read_reg`` a
    command spends a cycle in the engine's request register before it is served) and the
    kept word (BMC). ``read_reg`` 0 is the iCEBreaker's engine (no request register)."""
    sizes = tuple(sizes)
    _check(lambda: _trainer(sizes, lanes, max_records, read_reg))

    def make():
        return _trainer(sizes, lanes, max_records, read_reg)

    tag = "x".join(map(str, sizes)) + f"l{lanes}r{max_records}" + ("" if read_reg else "rr0")
    params = {"sizes": list(sizes), "lanes": lanes, "max_records": max_records,
              "read_reg": read_reg}
    return [Job("trainer", f"bus_{tag}", lambda: _harness(make, read_reg), "prove", 3, engine,
                params),
            Job("trainer", f"memory_{tag}", lambda: _harness(make, read_reg, memory=True),
                "bmc", depth, "boolector", params)]


BLOCKS = {
    "mac": mac_jobs,
    "int8-mac": int8_mac_jobs,
    "update": update_jobs,
    "softmax": softmax_jobs,
    "shuffle": shuffle_jobs,
    "link": link_jobs,
    "trainer": trainer_jobs,
}


def ci_jobs() -> list[Job]:
    """The proofs the test suite runs: every block, small enough for CI."""
    return (mac_jobs(lanes=2, data_lanes=1)
            + int8_mac_jobs(lanes=4, data=False) + int8_mac_jobs(lanes=1, acc_bits=16)
            + update_jobs()
            + softmax_jobs()
            + shuffle_jobs(n_max=64)
            + [link_ci_job()] + link_induct_jobs("small")
            + trainer_jobs() + trainer_jobs(read_reg=0))


def link_ci_job() -> Job:
    """The link's CI proof: READ execution, BUSY and the bus handshake at depth 24, with a
    back-to-back host (the frame's timing fixed, its bytes free)."""
    return Job("link", f"ci_d{LINK_DEPTH_CI}", lambda: LinkHarness(
        back_to_back=True, only=LINK_CI_PROPS), "bmc", LINK_DEPTH_CI, "boolector",
        {**LINK_SMALL_PARAMS, "host": "back to back", "properties": list(LINK_CI_PROPS)})


def family_jobs() -> list[Job]:
    """Every block at two or three sizes, the defaults included (``lnsmadam prove all``)."""
    jobs = []
    for lanes in (1, 2, 8):
        jobs += mac_jobs(lanes=lanes, data=lanes != 8)
    jobs += mac_jobs(lanes=2, saturate=False, data=True)
    jobs += mac_jobs(bits=6, gamma=4, lanes=4, acc_bits=24, window=8, pipeline=2,
                     out_pipeline=0, data=False)
    for lanes in (1, 4, 8):
        jobs += int8_mac_jobs(lanes=lanes, data=lanes != 8)
    jobs += int8_mac_jobs(lanes=2, saturate=False, data=True)
    jobs += update_jobs(pipeline=5) + update_jobs(pipeline=6, runtime_lr=True)
    jobs += update_jobs(pipeline=2, lr_step=3, g_bound=4)
    for n in (2, 10, 16):
        jobs += softmax_jobs(n_out=n)
    for n in (5, 64, 1437):
        jobs += shuffle_jobs(n_max=n)
    jobs += link_jobs()
    jobs += trainer_jobs() + trainer_jobs(read_reg=0)
    jobs += trainer_jobs(sizes=(3, 4, 2), lanes=2, max_records=6)
    # duplicates (the same tag twice) are run once
    seen, out = set(), []
    for j in jobs:
        if j.id not in seen:
            seen.add(j.id)
            out.append(j)
    return out


def mutant_jobs() -> list[Mutant]:
    """Known bugs, each injected into a copy of a block; each must fail its job."""
    small = MACConfig(**SMALL_LNS, lanes=2)
    lns = lambda: hw_mac.LNSMAC(small, pipeline=2, out_pipeline=0)  # noqa: E731
    ucfg = MadamConfig()

    # every mutant runs as a bounded check from reset, so that its counterexample is a
    # real trace (a failed induction step alone could start from an unreachable state)
    def mac(scope, mutate=None, make=lns, depth=8):
        return lambda: Job("mac", "mutant", lambda: MACHarness(make, scope, mutate,
                                                               max_beats=2), "bmc",
                           depth, "boolector")

    def upd(mutate, state=False, pipeline=5, depth=8):
        return lambda: Job("update", "mutant", lambda: UpdateHarness(
            lambda: hw_update.MadamUpdate(ucfg, pipeline=pipeline), state, mutate),
            "bmc", depth, "boolector")

    return [
        Mutant("mac", "ready_ignores_output", "i_stream.ready tied to 1 (the input is "
               "taken while the pipeline is stalled)",
               mac("control", Rewrite(assign={"i_stream__ready": set_to(1)})),
               ["mac.pipe_count", "mac.pipe_position", "mac.pipe_latency", "mac.pipe_order"]),
        Mutant("mac", "every_beat_emits", "the accumulator reports a result after every "
               "beat, not only after ``last``",
               mac("control", Rewrite(assign={"done": lambda rhs, lhs: Const(1)})),
               ["mac.pipe_count"]),
        Mutant("mac", "no_saturation", "the accumulator wraps although saturate=True",
               mac("accumulate", None, lambda: NoSaturation(hw_mac.LNSMAC)(
                   small, pipeline=2, out_pipeline=0), depth=6),
               ["mac.acc_clip", "mac.acc_saturates_hi", "mac.acc_saturates_lo"]),
        Mutant("mac", "zero_not_absorbing", "a ZERO operand is converted like any other "
               "(the lane's zero flag is dropped)",
               mac("data", Rewrite(assign={"zero": set_to(0)}), depth=7,
                   make=lambda: hw_mac.LNSMAC(MACConfig(**SMALL_LNS, lanes=1), pipeline=2,
                                              out_pipeline=0)),
               ["mac.acc_golden", "mac.acc_exact", "mac.zero_vector"]),
        Mutant("int8-mac", "no_saturation", "the INT8 accumulator wraps although "
               "saturate=True",
               mac("accumulate", None, lambda: NoSaturation(hw_mac.INT8MAC)(2, 16, True, 2),
                   depth=6),
               ["mac.acc_clip", "mac.acc_saturates_hi", "mac.acc_saturates_lo"]),
        Mutant("update", "clamp_off_by_one", "the weight clamp compares against e_clamp + 1",
               upd(Rewrite(use={"e_clamp": lambda s: s + 1})),
               ["update.w_in_clamp", "update.step_applied"]),
        Mutant("update", "zero_weight_moves", "a ZERO weight leaves the engine as E = 1",
               upd(Rewrite(assign={"o_stream__payload": _zero_to_one(ucfg)})),
               ["update.zero_stays_zero"]),
        Mutant("update", "state_exponent_wraps", "the renormalised state exponent is one "
               "too high and not saturated (it wraps past the top of the minifloat)",
               upd(Rewrite(assign={"o_stream__payload": _state_plus_octave(ucfg)}),
                   state=True, pipeline=0, depth=3),
               ["update.state_no_wrap", "update.state_keeps_g2", "update.state_saturates"]),
        Mutant("softmax", "input_phase_overrun", "the input phase does not end after n_out "
               "beats (more logits are taken)",
               lambda: Job("softmax", "mutant", lambda: SoftmaxHarness(
                   lambda: hw_softmax.SoftmaxError(MLPConfig(sizes=(4, 3))),
                   Rewrite(assign={"fsm_state": _stay_in("IN", "MAX1")})), "bmc", 6,
                   "boolector"),
               ["softmax.counters_range", "softmax.one_vector_at_a_time", "softmax.fsm_in"]),
        Mutant("shuffle", "one_element_short", "the element count is latched as n - 1",
               lambda: Job("shuffle", "mutant", lambda: ShuffleHarness(
                   lambda: hw_shuffle.Shuffler(5),
                   Rewrite(assign={"n": lambda rhs, lhs: (rhs - 1)[:len(lhs)]})), "bmc", 8,
                   "boolector"),
               ["shuffle.sched_n", "shuffle.busy_cycles", "shuffle.done_once"]),
        Mutant("link", "crc_not_checked", "the received CRC is never compared",
               lambda: Job("link", "mutant", lambda: LinkHarness(
                   mutate=Rewrite(assign={"crc_bad": set_to(0)}), back_to_back=True,
                   only=LINK_CI_PROPS), "bmc", LINK_DEPTH_CI, "boolector"),
               ["link.read_checked"]),
        Mutant("link", "write_without_crc", "a WRITE is executed whatever its CRC (the "
               "received CRC is never compared)", _link_write_mutant(
                   Rewrite(assign={"crc_bad": set_to(0)})), ["link.write_checked"]),
        Mutant("link", "write_short_body", "a WRITE is executed on a length mismatch (the "
               "BAD_LENGTH check of the body length skipped)", _link_write_mutant(
                   Rewrite(assign={"len_ok": set_to(1)})), ["link.write_checked"]),
        Mutant("link", "write_data_flipped", "bit 0 of every word written to the bus "
               "inverted", _link_write_mutant(
                   Rewrite(assign={"bus__cmd_wdata": lambda rhs, lhs: rhs ^ 1}),
                   ("write_data",)), ["link.write_data"]),
        Mutant("link", "stuck_after_bad_frame", "after the reply to a bad frame (BAD_FRAME) "
               "the link never returns to accepting frames",
               lambda: Job("link", "mutant", lambda: LinkInductHarness(
                   prop="response", mutate=_stuck_after_bad_frame, only=LINK_RESPONSE_PROPS),
                   "bmc", LINK_DEPTH_REPLY, "boolector"),
               ["link." + p for p in LINK_RESPONSE_PROPS]),
        Mutant("trainer", "write_not_acknowledged", "a bus write is never answered "
               "(rsp_valid only for reads)",
               lambda: Job("trainer", "mutant", lambda: _harness(
                   _trainer, 1, mutate=Rewrite(assign={"wr_ack": set_to(0)})),
                   "bmc", 4, "boolector"),
               ["trainer.rsp_latency", "trainer.rsp_pending"]),
    ]


def _link_write_mutant(mutate, only=("write_checked",)):
    """A bounded run of the link's WRITE-path harness from reset with a back-to-back host
    (the frame's timing fixed, its bytes free), asserting ``only``."""
    return lambda: Job("link", "mutant", lambda: LinkInductHarness(
        prop="write", mutate=mutate, back_to_back=True, only=only), "bmc",
        LINK_DEPTH_WRITE, "boolector")


def _stuck_after_bad_frame(frag):
    """Rewrite of the link's FSM: the move back to RECV after the reply stays in T_END
    while the frame's bad-escape flag is set."""
    from amaranth.hdl._ast import Const as C

    from .harness import fsm_encoding, probe

    bad = probe(frag, "bad")

    def fn(rhs, lhs):
        enc = fsm_encoding(lhs)
        if isinstance(rhs, C) and rhs.value == enc["RECV"]:
            return Mux(bad, C(enc["T_END"], len(lhs)), rhs)
        return rhs
    return Rewrite(assign={"link_state": fn})(frag)


def _zero_to_one(cfg):
    """Rewrite of the update engine's output assignment: a ZERO ``w_new`` becomes E = 1."""
    wbits = cfg.weight.bits

    def fn(rhs, lhs):
        if getattr(lhs, "start", None) != 0 or len(lhs) != wbits:
            return rhs                       # another field of the payload
        return rhs | (rhs[:wbits - 1] == 0)
    return fn


def _state_plus_octave(cfg):
    """Rewrite of the update engine's output assignment: ``v_new``'s exponent field plus
    one, modulo its width."""
    wbits, vbits, fb = cfg.weight.bits, cfg.state.bits, cfg.state.man_bits - 1

    def fn(rhs, lhs):
        if getattr(lhs, "start", None) != wbits or len(lhs) != vbits:
            return rhs                       # another field of the payload
        return (rhs + (1 << fb))[:vbits]
    return fn


def _stay_in(state: str, instead_of: str):
    """Rewrite of an FSM's state register: every move to ``instead_of`` stays in
    ``state``."""
    from amaranth.hdl._ast import Const as C

    from .harness import fsm_encoding

    def fn(rhs, lhs):
        enc = fsm_encoding(lhs)
        if isinstance(rhs, C) and rhs.value == enc[instead_of]:
            return C(enc[state], len(lhs))
        return rhs
    return fn
