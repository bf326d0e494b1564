"""cocotb-side verification components: stream source, stream sink/monitor, scoreboard.

Imported only inside a simulator (it imports cocotb). Structure after cocotb's
``examples/matrix_multiplier``: a *driver* feeds the DUT, a *monitor* records what comes
out, a *model* (the golden NumPy functions) predicts it and a *checker* (the
:class:`Scoreboard`) compares transaction by transaction, bit for bit.

Timing discipline (identical on Icarus and Verilator): one bench loop per clock cycle
changes every testbench-driven input just after the falling edge, then waits for
``ReadOnly`` and samples; a stream beat transfers at the next rising edge iff
``valid & ready`` was seen in that sample. Inputs never change between the sample and the
rising edge, so what was sampled is what the DUT's registers capture.

Payloads are dicts ``{field path: int}``; :class:`Packer` maps them to and from the flat
port using the field offsets that :func:`lnsmadam.sim.ports.describe_ports` put in
``params["ports"]``.
"""

from __future__ import annotations

import json
import os
import random
from collections import deque
from collections.abc import Callable, Iterable

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

__all__ = [
    "load_params", "ports_by_name", "Packer", "StreamSource", "StreamSink", "Scoreboard",
    "PipelineChecker", "Bench", "to_signed",
]


def load_params() -> dict:
    """The parameters that :func:`lnsmadam.sim.runner.run_cocotb` wrote for this run."""
    path = os.environ.get("LNSMADAM_SIM_PARAMS")
    if not path:
        raise RuntimeError("LNSMADAM_SIM_PARAMS is not set: run this module through "
                           "lnsmadam.sim.runner.run_cocotb")
    with open(path) as fh:
        return json.load(fh)


def ports_by_name(params: dict) -> dict[str, dict]:
    return {p["name"]: p for p in params["ports"]}


def to_signed(value: int, width: int) -> int:
    value &= (1 << width) - 1
    return value - (1 << width) if value >> (width - 1) else value


def _read(handle) -> int:
    """Unsigned value of a signal; an X/Z bit is an error (it never is in a correct DUT)."""
    v = handle.value
    try:
        return v.to_unsigned()
    except (ValueError, AttributeError):
        return int(v)


class Packer:
    """Pack/unpack a port's payload from/to ``{field path: int}`` using its field list.

    A port without fields has one field with path ``""``. Signed fields unpack to
    Python negative ints and accept negative ints when packing.
    """

    def __init__(self, port: dict):
        self.port = port
        self.width = port["width"]
        self.fields = port.get("fields") or [
            {"path": "", "offset": 0, "width": port["width"], "signed": port.get("signed", False)}]
        self.by_path = {f["path"]: f for f in self.fields}

    def pack(self, values: dict) -> int:
        word = 0
        for path, v in values.items():
            f = self.by_path[path]
            w = f["width"]
            v = int(v)
            lo = -(1 << (w - 1)) if f["signed"] else 0
            hi = (1 << (w - 1)) - 1 if f["signed"] else (1 << w) - 1
            if not lo <= v <= hi:
                raise ValueError(f"{self.port['name']}.{path}={v} does not fit {w} bits")
            word |= (v & ((1 << w) - 1)) << f["offset"]
        return word

    def unpack(self, word: int) -> dict:
        out = {}
        for f in self.fields:
            v = (word >> f["offset"]) & ((1 << f["width"]) - 1)
            out[f["path"]] = to_signed(v, f["width"]) if f["signed"] else v
        return out

    def array(self, values: dict, name: str) -> list[int]:
        """Elements ``name.0, name.1, ...`` of an unpacked payload, in order."""
        items = []
        i = 0
        while f"{name}.{i}" in values:
            items.append(values[f"{name}.{i}"])
            i += 1
        return items

    def paths(self, prefix: str) -> list[str]:
        return [f["path"] for f in self.fields if f["path"] == prefix
                or f["path"].startswith(prefix + ".")]


class _Agent:
    def drive(self, cycle: int) -> None:  # after the falling edge
        pass

    def sample(self, cycle: int) -> None:  # in ReadOnly
        pass

    @property
    def busy(self) -> bool:
        return False


class StreamSource(_Agent):
    """Drives a ``lib.stream`` input port (``<prefix>__payload/valid/ready``).

    ``valid_prob``: probability that an idle source offers its next beat in a cycle
    (1.0: back-to-back; lower: random valid gaps). Once ``valid`` is high the beat is held
    until the DUT takes it (stream rule). ``on_send(beat, cycle)`` is called for every beat
    the DUT accepts (it transfers at the rising edge that ends ``cycle``).
    """

    def __init__(self, dut, prefix: str, params: dict, rng: random.Random,
                 valid_prob: float = 1.0, on_send: Callable[[dict, int], None] | None = None):
        ports = ports_by_name(params)
        self.payload = getattr(dut, f"{prefix}__payload")
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready", None)  # always_ready streams have none
        self.packer = Packer(ports[f"{prefix}__payload"])
        self.rng = rng
        self.valid_prob = valid_prob
        self.on_send = on_send
        self.queue: deque[dict] = deque()
        self.current: dict | None = None
        self.sent: list[dict] = []
        self.valid.value = 0
        self.payload.value = 0

    def send(self, beats: Iterable[dict]) -> None:
        self.queue.extend(beats)

    @property
    def busy(self) -> bool:
        return bool(self.queue) or self.current is not None

    def drive(self, cycle):
        if self.current is None and self.queue and self.rng.random() < self.valid_prob:
            self.current = self.queue.popleft()
            self.payload.value = self.packer.pack(self.current)
            self.valid.value = 1
        elif self.current is None:
            self.valid.value = 0
            # junk on the payload while idle: the DUT must ignore it
            self.payload.value = self.rng.getrandbits(self.packer.width)

    def sample(self, cycle):
        if self.current is not None and (self.ready is None or _read(self.ready)):
            self.sent.append(self.current)
            if self.on_send:
                self.on_send(self.current, cycle)
            self.current = None   # transfers at the coming rising edge


class StreamSink(_Agent):
    """Monitor of a ``lib.stream`` output port, driving ``ready`` with random backpressure.

    ``ready_prob``: probability that ``ready`` is high in a cycle. ``on_recv(beat, cycle)``
    is called for every beat taken (``valid & ready`` seen in ``cycle``).
    """

    def __init__(self, dut, prefix: str, params: dict, rng: random.Random,
                 ready_prob: float = 1.0, on_recv: Callable[[dict, int], None] | None = None):
        ports = ports_by_name(params)
        self.payload = getattr(dut, f"{prefix}__payload")
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready", None)
        self.packer = Packer(ports[f"{prefix}__payload"])
        self.rng = rng
        self.ready_prob = ready_prob
        self.on_recv = on_recv
        self.received: list[dict] = []
        self.protocol_errors: list[str] = []
        self._held: int | None = None
        self.ready_now = 0
        if self.ready is not None:
            self.ready.value = 0

    def drive(self, cycle):
        self.ready_now = int(self.rng.random() < self.ready_prob)
        if self.ready is not None:
            self.ready.value = self.ready_now
        else:
            self.ready_now = 1

    def sample(self, cycle):
        valid = _read(self.valid)
        word = _read(self.payload) if valid else None
        # stream rule: an offered beat stays valid and unchanged until it is taken
        if self._held is not None and word != self._held:
            self.protocol_errors.append(
                f"cycle {cycle}: output beat {self._held:#x} withdrawn or changed to "
                f"{'nothing' if word is None else hex(word)} before it was taken")
        self._held = word if valid and not self.ready_now else None
        if self.ready_now and valid:
            beat = self.packer.unpack(word)
            self.received.append(beat)
            if self.on_recv:
                self.on_recv(beat, cycle)

    def check_protocol(self) -> None:
        if self.protocol_errors:
            raise AssertionError(f"{len(self.protocol_errors)} stream protocol violations: "
                                 + "; ".join(self.protocol_errors[:5]))


class Scoreboard:
    """In-order checker: ``expect()`` queues model outputs, ``check()`` compares DUT outputs.

    Every mismatch is logged with the transaction index, the expected and the actual value
    and ``context`` (the inputs); :meth:`finish` raises ``AssertionError`` if any mismatch
    happened, an output was unexpected or an expected one never came.
    """

    def __init__(self, name: str, log, max_report: int = 10):
        self.name = name
        self.log = log
        self.expected: deque = deque()
        self.n_checked = 0
        self.errors: list[str] = []
        self.max_report = max_report

    def expect(self, value, context=None) -> None:
        self.expected.append((value, context))

    def check(self, got) -> None:
        if not self.expected:
            self.errors.append(f"{self.name}: unexpected output #{self.n_checked}: {got}")
        else:
            want, ctx = self.expected.popleft()
            if got != want:
                msg = (f"{self.name}: mismatch at #{self.n_checked}: expected {want}, "
                       f"got {got}; inputs {ctx}")
                self.errors.append(msg)
                if len(self.errors) <= self.max_report:
                    self.log.error(msg)
        self.n_checked += 1

    @property
    def pending(self) -> int:
        return len(self.expected)

    def finish(self) -> None:
        if self.expected:
            self.errors.append(f"{self.name}: {len(self.expected)} expected outputs never "
                               f"came (first: {self.expected[0]})")
        if self.errors:
            head = "\n".join(self.errors[:self.max_report])
            raise AssertionError(f"{len(self.errors)} errors in {self.n_checked} "
                                 f"{self.name} transactions:\n{head}")
        self.log.info("%s: %d transactions bit-exact", self.name, self.n_checked)


class PipelineChecker(_Agent):
    """Drives a fixed-latency block with a new input every cycle and checks its outputs.

    ``apply(vector)`` writes one input vector (dict port name -> int) to the DUT;
    ``read()`` returns the current outputs (any comparable value); ``model(vector)`` is
    the golden prediction. The output sampled ``latency`` cycles after an input was
    applied is compared with the model's prediction for that input.
    """

    def __init__(self, dut, vectors: Iterable[dict], latency: int,
                 read: Callable[[], object], model: Callable[[dict], object],
                 scoreboard: Scoreboard):
        self.dut = dut
        self.vectors = deque(vectors)
        self.latency = latency
        self.read = read
        self.model = model
        self.sb = scoreboard
        self.inflight: deque = deque()   # (due cycle,)
        self.applied = 0

    @property
    def busy(self) -> bool:
        return bool(self.vectors) or bool(self.inflight)

    def drive(self, cycle):
        if self.vectors:
            v = self.vectors.popleft()
            for name, value in v.items():
                getattr(self.dut, name).value = value
            self.sb.expect(self.model(v), v)
            self.inflight.append(cycle + self.latency)

    def sample(self, cycle):
        if self.inflight and self.inflight[0] == cycle:
            self.inflight.popleft()
            self.sb.check(self.read())


class Bench:
    """Clock, reset and the per-cycle drive/sample loop over a set of agents."""

    def __init__(self, dut, agents: list[_Agent] | None = None, period_ns: int = 10):
        self.dut = dut
        self.agents = list(agents or [])
        self.period_ns = period_ns
        self.cycle = 0
        self.clocked = hasattr(dut, "clk")

    async def start(self, reset_cycles: int = 2) -> None:
        if not self.clocked:
            return
        Clock(self.dut.clk, self.period_ns, unit="ns").start(start_high=False)
        if hasattr(self.dut, "rst"):
            self.dut.rst.value = 1
            for _ in range(reset_cycles):
                await RisingEdge(self.dut.clk)
            await FallingEdge(self.dut.clk)
            self.dut.rst.value = 0

    async def step(self) -> None:
        """One cycle: drive all agents, settle, sample all agents."""
        if self.clocked:
            await FallingEdge(self.dut.clk)
        else:
            await cocotb.triggers.Timer(self.period_ns // 2, unit="ns")
        for a in self.agents:
            a.drive(self.cycle)
        await ReadOnly()
        for a in self.agents:
            a.sample(self.cycle)
        self.cycle += 1
        if not self.clocked:
            await cocotb.triggers.Timer(self.period_ns - self.period_ns // 2, unit="ns")

    async def run_until(self, done: Callable[[], bool], max_cycles: int) -> int:
        """Step until ``done()``; ``AssertionError`` after ``max_cycles`` (a hang)."""
        start = self.cycle
        while not done():
            if self.cycle - start >= max_cycles:
                raise AssertionError(f"timeout: not done after {max_cycles} cycles")
            await self.step()
        return self.cycle - start
