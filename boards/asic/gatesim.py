"""Cycle-based, zero-delay, bit-parallel simulation of a mapped gate-level netlist.

The netlist is Yosys's ``write_json`` of a design mapped to a Liberty library (one module,
flattened); every cell's behaviour comes from the Liberty ``function`` of its output pins and
its ``ff`` group (:mod:`.liberty`), so the simulated nets are exactly the nets OpenSTA times.

Many independent stimulus *streams* run side by side, one bit of a uint64 word each
(``streams`` must be a multiple of 64). Per clock cycle: the input ports take the cycle's
values, the combinational cells are evaluated level by level (all cells of one type at one
level in one NumPy operation), toggles and high cycles of every net are counted, then every
flip-flop loads its ``next_state``. A toggle is a change of a net's settled value from one
cycle to the next: glitches inside a cycle are not seen (zero delay), which the reports say.

Only single-clock designs with positive-edge flip-flops are supported (what ``dfflibmap``
makes of an Amaranth ``sync`` domain); latches and tri-state cells are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .liberty import Library, func_inputs, parse_function, to_python

__all__ = ["Netlist", "Activity", "simulate", "count_toggles", "pack_streams",
           "unpack_streams"]

_ONES = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


def count_toggles(wave) -> tuple[int, int]:
    """``(toggles, high)`` of one sampled waveform (a sequence of 0/1, one per cycle)."""
    w = np.asarray(wave, np.int64) & 1
    return int(np.count_nonzero(w[1:] != w[:-1])), int(w.sum())


def pack_streams(bits: np.ndarray) -> np.ndarray:
    """``(..., streams)`` 0/1 values -> ``(..., streams // 64)`` uint64 words (stream ``s``
    is bit ``s % 64`` of word ``s // 64``)."""
    b = np.ascontiguousarray(np.asarray(bits, np.uint8) & 1)
    if b.shape[-1] % 64:
        raise ValueError(f"streams must be a multiple of 64, got {b.shape[-1]}")
    packed = np.packbits(b, axis=-1, bitorder="little")
    return packed.view("<u8").astype(np.uint64)


def unpack_streams(words: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_streams`: ``(..., W)`` uint64 -> ``(..., 64 * W)`` uint8."""
    w = np.ascontiguousarray(np.asarray(words, np.uint64)).astype("<u8")
    return np.unpackbits(w.view(np.uint8), axis=-1, bitorder="little")


@dataclass
class _Group:
    fn: object
    ins: list          # index arrays, one per function input
    out: np.ndarray


class Netlist:
    """A flattened mapped netlist: nets, ports, cells and the evaluation schedule.

    Net 0 is constant 0 and net 1 constant 1; Yosys bit ``k`` is net ``k``; every flip-flop
    instance gets one extra net for its internal state.
    """

    def __init__(self, netlist_json: dict, lib: Library, top: str = "top"):
        mods = netlist_json["modules"]
        if top not in mods:
            raise ValueError(f"module {top!r} not in the netlist (has {sorted(mods)})")
        mod = mods[top]
        self.lib = lib

        def bit(b):
            if isinstance(b, int):
                return b
            return 1 if b == "1" else 0                 # "0", "x", "z" -> 0

        bits = [b for p in mod["ports"].values() for b in p["bits"] if isinstance(b, int)]
        for c in mod["cells"].values():
            bits += [b for v in c["connections"].values() for b in v if isinstance(b, int)]
        n = max(bits + [1]) + 1
        self.ports = {name: (p["direction"], np.array([bit(b) for b in p["bits"]], np.int64))
                      for name, p in mod["ports"].items()}
        self.net_names = {}
        for name, nn in mod.get("netnames", {}).items():
            for i, b in enumerate(nn["bits"]):
                if isinstance(b, int) and (b not in self.net_names or not nn.get("hide_name")):
                    self.net_names.setdefault(b, name if len(nn["bits"]) == 1 else f"{name}[{i}]")
        # instances
        self.cells = []                                  # (name, type, {pin: net})
        comb = []                                        # (type, pin, tree, [in nets], out net)
        ffs = []                                         # (type, state net, next tree, pins)
        driver = {}
        fn_cache = {}
        for cname, c in mod["cells"].items():
            ctype = c["type"]
            if ctype not in lib.cells:
                raise ValueError(f"cell {cname} has type {ctype!r}, not in library {lib.name!r}")
            lc = lib.cells[ctype]
            if lc.latch:
                raise ValueError(f"cell {cname} ({ctype}) is a latch: not supported")
            conn = {p: bit(v[0]) for p, v in c["connections"].items() if v}
            self.cells.append((cname, ctype, conn))
            state = None
            if lc.ff is not None:
                iq, iqn, nxt, clk = lc.ff
                clk_tree = parse_function(clk)
                if clk_tree[0] != "var":
                    raise ValueError(f"{ctype}: only positive-edge flip-flops are supported "
                                     f"(clocked_on {clk!r})")
                state = n + len(ffs)
                nt = fn_cache.setdefault((ctype, "next"), parse_function(nxt))
                ffs.append((ctype, state, nt, conn, iq, iqn))
            for pname, pin in lc.pins.items():
                if pin.direction != "output" or pname not in conn:
                    continue
                if pin.three_state:
                    raise ValueError(f"cell {cname} ({ctype}) is tri-state: not supported")
                if pin.function is None:
                    raise ValueError(f"{ctype}.{pname} has no function")
                tree = fn_cache.setdefault((ctype, pname), parse_function(pin.function))
                out = conn[pname]
                if out in driver:
                    raise ValueError(f"net {out} has two drivers ({driver[out]}, {cname})")
                driver[out] = cname
                comb.append((ctype, pname, tree, out, conn, state,
                             lc.ff[0] if lc.ff else None, lc.ff[1] if lc.ff else None))
        self.n_nets = n + len(ffs)
        self.state_nets = np.array([f[1] for f in ffs], np.int64)
        self.cell_of_output = driver
        self.groups, self.ff_groups = self._schedule(comb, ffs)

    def _schedule(self, comb, ffs):
        def src(name, conn, state, iq, iqn):
            if state is not None and name == iq:
                return state, False
            if state is not None and iqn and name == iqn:
                return state, True
            if name not in conn:
                raise ValueError(f"function input {name!r} is not connected")
            return conn[name], False

        # gates: (key, in nets, out net); an IQN reference becomes a NOT of the state net
        gates = []
        for ctype, pname, tree, out, conn, state, iq, iqn in comb:
            names = func_inputs(tree)
            nets, inv = zip(*[src(v, conn, state, iq, iqn) for v in names]) if names else ((), ())
            gates.append(((ctype, pname, tuple(inv)), tree, names, list(nets), out))
        level = {}
        for i in (0, 1):
            level[i] = 0
        for _, (d, idx) in self.ports.items():
            if d == "input":
                for b in idx:
                    level[int(b)] = 0
        for s in self.state_nets:
            level[int(s)] = 0
        pending = list(range(len(gates)))
        placed = {}
        while pending:
            nxt = []
            for g in pending:
                ins = gates[g][3]
                if all(x in level for x in ins):
                    lv = 1 + max([level[x] for x in ins], default=0)
                    level[gates[g][4]] = lv
                    placed.setdefault((lv, gates[g][0]), []).append(g)
                else:
                    nxt.append(g)
            if len(nxt) == len(pending):
                undriven = {x for g in nxt for x in gates[g][3]} - set(level) - {
                    gates[g][4] for g in nxt}
                if undriven:
                    # inputs driven by nothing: constant 0 (Yosys leaves none in a clean netlist)
                    for x in undriven:
                        level[x] = 0
                    continue
                raise ValueError(f"combinational loop through {len(nxt)} cells")
            pending = nxt
        fns = {}
        groups = []
        for (lv, key) in sorted(placed, key=lambda k: k[0]):
            gs = placed[(lv, key)]
            _, tree, names, _, _ = gates[gs[0]]
            inv = key[2]
            if key not in fns:
                args = [f"x{i}" for i in range(len(names))]
                env = {v: (f"(~{a})" if iv else a) for v, a, iv in zip(names, args, inv)}
                body = to_python(tree, lambda v: env[v])
                fns[key] = eval(f"lambda {', '.join(args) or '_=None'}: {body}",
                                {"ONES": _ONES, "ZERO": np.uint64(0)})
            ins = [np.array([gates[g][3][i] for g in gs], np.int64) for i in range(len(names))]
            out = np.array([gates[g][4] for g in gs], np.int64)
            groups.append(_Group(fns[key], ins, out))
        ff_groups = []
        by_type = {}
        for f in ffs:
            by_type.setdefault(f[0], []).append(f)
        for ctype, fl in by_type.items():
            ctype, _, tree, _, iq, iqn = fl[0]
            names = func_inputs(tree)
            args = [f"x{i}" for i in range(len(names))]
            body = to_python(tree, lambda v: args[names.index(v)])
            fn = eval(f"lambda {', '.join(args) or '_=None'}: {body}",
                      {"ONES": _ONES, "ZERO": np.uint64(0)})
            ins = [np.array([src(v, f[3], f[1], f[4], f[5])[0] for f in fl], np.int64)
                   for v in names]
            ff_groups.append(_Group(fn, ins, np.array([f[1] for f in fl], np.int64)))
        return groups, ff_groups

    def port_nets(self, name: str) -> np.ndarray:
        if name not in self.ports:
            raise ValueError(f"no port {name!r} (ports: {', '.join(self.ports)})")
        return self.ports[name][1]


@dataclass
class Activity:
    """Per-net toggles and high cycles over ``cycles`` counted cycles of ``streams`` streams."""

    toggles: np.ndarray
    high: np.ndarray
    cycles: int
    streams: int

    @property
    def samples(self) -> int:
        return self.cycles * self.streams

    def rate(self, nets) -> np.ndarray:
        """Transitions per clock cycle of each net in ``nets``."""
        return self.toggles[np.asarray(nets)] / max(1, self.samples)

    def duty(self, nets) -> np.ndarray:
        return self.high[np.asarray(nets)] / max(1, self.samples)


def simulate(nl: Netlist, inputs: dict, outputs=(), warmup: int = 0):
    """Run the netlist; return ``(Activity, {output port: (cycles, width, streams) uint8})``.

    ``inputs`` maps every input port except the clock to a ``(cycles, width, streams)`` 0/1
    array (or ``(cycles, width, W)`` uint64 words when already packed, dtype uint64); ports
    not given are held at 0. Toggles and high cycles are counted from cycle ``warmup`` on
    (the first counted toggle compares with cycle ``warmup - 1``; cycle 0 is never counted).
    """
    packed = {}
    cycles = None
    W = None
    for name, arr in inputs.items():
        idx = nl.port_nets(name)
        a = np.asarray(arr)
        if a.dtype != np.uint64:
            a = pack_streams(a)
        if a.ndim != 3 or a.shape[1] != len(idx):
            raise ValueError(f"input {name}: expected (cycles, {len(idx)}, streams), "
                             f"got {np.asarray(arr).shape}")
        cycles = a.shape[0] if cycles is None else cycles
        W = a.shape[2] if W is None else W
        if a.shape[0] != cycles or a.shape[2] != W:
            raise ValueError("all inputs need the same number of cycles and streams")
        packed[name] = (idx, a)
    if cycles is None:
        raise ValueError("no inputs given")
    if not 0 <= warmup < cycles:
        raise ValueError(f"warmup must be in 0..{cycles - 1}, got {warmup}")
    V = np.zeros((nl.n_nets, W), np.uint64)
    V[1] = _ONES
    state = np.zeros((len(nl.state_nets), W), np.uint64)
    toggles = np.zeros(nl.n_nets, np.int64)
    high = np.zeros(nl.n_nets, np.int64)
    prev = None
    outs = {o: np.zeros((cycles, len(nl.port_nets(o)), W), np.uint64) for o in outputs}
    for t in range(cycles):
        for idx, a in packed.values():
            V[idx] = a[t]
        if len(nl.state_nets):
            V[nl.state_nets] = state
        for g in nl.groups:
            V[g.out] = g.fn(*[V[i] for i in g.ins])
        if t >= warmup and t > 0:
            toggles += np.bitwise_count(V ^ prev).sum(1, dtype=np.int64)
            high += np.bitwise_count(V).sum(1, dtype=np.int64)
        prev = V.copy()
        for o in outputs:
            outs[o][t] = V[nl.port_nets(o)]
        if nl.ff_groups:
            for g in nl.ff_groups:
                V[g.out] = g.fn(*[V[i] for i in g.ins])
            state = V[nl.state_nets].copy()
    counted = cycles - max(warmup, 1)
    toggles[:2] = 0
    high[0], high[1] = 0, counted * W * 64
    act = Activity(toggles, high, counted, W * 64)
    return act, {o: unpack_streams(v) for o, v in outs.items()}
