"""Grid files: parse, validate against the jobs' parameters, expand to points.

A grid file is TOML::

    title = "SoC per board"            # optional
    jobs = ["build", "cycles"]         # job kinds run on every point (lnsmadam.sweep.jobs)

    [fixed]                            # one value for every point
    seed = 1

    [axes]                             # the cartesian product of these lists
    lanes = [1, 2, 4]
    sizes = [[64, 16, 10], [64, 32, 10]]

    [[cases]]                          # optional: an axis whose values set several keys
    board = "icebreaker"               # together (one case per [[cases]] table)
    [[cases]]
    board = "ulx3s-85f"
    clk_freq = 30e6

    [report]                           # optional: a table aggregated over one key
    aggregate = "seed"                 # median, min and max per group of points that
    metrics = ["test_acc"]             # differ only in it (default: every numeric column)

Points = every combination of the axes, times every case, over the fixed values; at most
:data:`MAX_POINTS` (counted from the lengths before anything is expanded). A key may be set
in only one of ``fixed``, ``axes`` and ``cases``; an empty axis, ``cases = []`` and an empty
``[report]`` are refused. Every key must be a parameter of at least one of the grid's jobs
and have the type it expects (a float: finite); each job sees only its own keys, and every
point's config must pass the job's own ``check`` (the ranges and combinations its run
would refuse: :mod:`lnsmadam.sweep.jobs`), so a bad value is refused when the grid is
loaded, not when its point runs. A point's key is the first 16 hex digits of the SHA-256
of its canonical config (keys sorted, integral floats as integers), so the same config
always lands in the same folder.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import jobs as registry

__all__ = ["Grid", "Point", "GridError", "MAX_POINTS", "load", "parse", "canonical",
           "point_key"]

#: The most points a grid may have (each is a folder of results; beyond this, split the grid).
MAX_POINTS = 100_000


class GridError(ValueError):
    """A grid file is invalid; the message is one line naming the file and the entry."""


def _canon(v):
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, (list, tuple)):
        return [_canon(x) for x in v]
    if isinstance(v, dict):
        return {k: _canon(v[k]) for k in sorted(v)}
    return v


def canonical(config: dict) -> str:
    """The canonical JSON text of a point config (what its key hashes)."""
    return json.dumps(_canon(config), sort_keys=True, separators=(",", ":"))


def point_key(config: dict) -> str:
    return hashlib.sha256(canonical(config).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Point:
    """One configuration of a grid and the jobs to run on it."""

    config: dict
    jobs: tuple[str, ...]
    key: str = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "key", point_key(self.config))

    def job_config(self, job: str) -> dict:
        """The keys of this point that ``job`` reads."""
        spec = registry.get(job).params(self.config)
        return {k: v for k, v in self.config.items() if k in spec}


@dataclass
class Grid:
    title: str
    jobs: tuple[str, ...]
    fixed: dict
    axes: dict
    cases: list
    points: list[Point]
    text: str
    report: dict = field(default_factory=dict)

    @property
    def varied(self) -> list[str]:
        """The keys that differ between points (axes, then case keys), in file order."""
        keys = list(self.axes)
        for c in self.cases:
            keys += [k for k in c if k not in keys]
        return keys


def load(path) -> Grid:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise GridError(f"{path}: cannot read the grid file: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise GridError(f"{path}: not valid TOML (not UTF-8 text: byte 0x{data[e.start]:02x} "
                        f"at offset {e.start})") from None
    return parse(text, str(path))


def parse(text: str, name: str = "<grid>") -> Grid:
    """Parse and validate a grid file's text; GridError (one line) on any problem."""
    def fail(msg):
        raise GridError(f"{name}: {msg}")

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        fail(f"not valid TOML: {e}")
    unknown = sorted(set(doc) - {"title", "jobs", "fixed", "axes", "cases", "report"})
    if unknown:
        fail(f"unknown top-level entry {unknown[0]!r} (allowed: title, jobs, fixed, axes, "
             "cases, report)")
    title = doc.get("title", Path(name).stem)
    if not isinstance(title, str):
        fail(f"title must be a string, got {title!r}")
    jobs = doc.get("jobs")
    if not isinstance(jobs, list) or not jobs or not all(isinstance(j, str) for j in jobs):
        fail(f"jobs must be a non-empty list of job names ({', '.join(registry.names())}), "
             f"got {jobs!r}")
    if len(set(jobs)) != len(jobs):
        fail(f"jobs lists a job twice: {jobs}")
    for j in jobs:
        try:
            registry.get(j)
        except ValueError as e:
            fail(f"jobs: {e}")
    fixed, axes, cases = doc.get("fixed", {}), doc.get("axes", {}), doc.get("cases", [])
    if not isinstance(fixed, dict):
        fail("fixed must be a table ([fixed])")
    if not isinstance(axes, dict):
        fail("axes must be a table ([axes])")
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        fail("cases must be an array of tables ([[cases]])")
    if "cases" in doc and not cases:
        fail("cases is empty: give at least one [[cases]] table, or leave cases out")
    where = {k: f"fixed.{k}" for k in fixed}
    for k, vals in axes.items():
        if not isinstance(vals, list):
            fail(f"axes.{k} must be a list of values, got {vals!r}")
        if not vals:
            fail(f"axes.{k} is empty: give it at least one value")
        if k in where:
            fail(f"axes.{k}: also set in {where[k]}")
        where[k] = f"axes.{k}"
    for i, c in enumerate(cases):
        if not c:
            fail(f"cases[{i}] is empty")
        for k in c:
            if k in where and not where[k].startswith("cases["):
                fail(f"cases[{i}].{k}: also set in {where[k]}")
            where.setdefault(k, f"cases[{i}].{k}")

    n = math.prod(len(v) for v in axes.values()) * max(1, len(cases))
    if n > MAX_POINTS:
        sizes = [f"{len(v)} {k}" for k, v in axes.items()] + (
            [f"{len(cases)} cases"] if cases else [])
        fail(f"the grid has {n} points ({' x '.join(sizes)}), more than the maximum of "
             f"{MAX_POINTS}: split it into smaller grids")
    combos = [dict(zip(axes, vals)) for vals in itertools.product(*axes.values())]
    points = [Point({**fixed, **a, **c}, tuple(jobs)) for a in combos for c in (cases or [{}])]
    _check_points(points, jobs, where, fail)
    seen = {}
    for p in points:
        if p.key in seen:
            fail(f"two points have the same config {canonical(p.config)}")
        seen[p.key] = p
    grid = Grid(title, tuple(jobs), fixed, axes, cases, points, text)
    grid.report = _check_report(doc.get("report", {}), grid.varied, fail, "report" in doc)
    return grid


def _placed(msg: str, job: str, config: str, where: dict) -> str:
    """A job's refusal of a point's config, placed in the grid file: at the entry of the key
    the message starts with, else at the point."""
    m = _LEADING.match(msg)
    key = m.group(0) if m else None
    if key in where:
        return f"{where[key]}: {msg} (job {job})"
    if key and msg.startswith(f"{key} is required"):
        return f"{msg} (job {job}): set {key} in [fixed], [axes] or [[cases]]"
    return f"point {config}: {msg} (job {job})"


def _check_report(rep, varied, fail, has_table: bool = False) -> dict:
    """The ``[report]`` table: ``aggregate`` (a key that varies) and ``metrics`` (a list of
    column names, optional)."""
    if not isinstance(rep, dict):
        fail("report must be a table ([report])")
    if rep == {} and has_table:
        fail("report is empty: give report.aggregate (and optionally report.metrics), or "
             "leave [report] out")
    unknown = sorted(set(rep) - {"aggregate", "metrics"})
    if unknown:
        fail(f"report.{unknown[0]}: unknown entry (allowed: aggregate, metrics)")
    over = rep.get("aggregate")
    if over is None:
        if "metrics" in rep:
            fail("report.metrics needs report.aggregate (the key to aggregate over)")
        return {}
    if over not in varied:
        fail(f"report.aggregate must be a key that varies between points "
             f"({', '.join(varied) or 'none varies'}), got {over!r}")
    metrics = rep.get("metrics")
    if metrics is not None and (not isinstance(metrics, list) or not metrics or not all(
            isinstance(m, str) for m in metrics)):
        fail(f"report.metrics must be a non-empty list of column names, got {metrics!r}")
    return dict(rep)


_LEADING = re.compile(r"[A-Za-z_]\w*")


def _check_points(points, jobs, where, fail):
    claimed = set()
    known = {}
    checked = set()
    for p in points:
        for j in jobs:
            try:
                spec = registry.get(j).params(p.config)
            except ValueError as e:
                fail(f"{where.get('block', 'block')}: {e}")
            known.setdefault(j, set()).update(spec)
            for k, v in p.config.items():
                if k in spec:
                    claimed.add(k)
                    try:
                        spec[k].check(k, v)
                    except ValueError as e:
                        fail(f"{where[k]}: {e} (job {j})")
            # the job's own check of the whole config (ranges that depend on other keys,
            # required keys, ...), once per distinct config of this job
            config = {k: v for k, v in p.config.items() if k in spec}
            text = canonical(config)
            if (j, text) in checked:
                continue
            checked.add((j, text))
            try:
                registry.check(j, config)
            except ValueError as e:
                fail(_placed(" ".join(str(e).split()), j, text, where))
    for k in where:
        if k not in claimed:
            have = sorted(set().union(*known.values()))
            fail(f"{where[k]}: no job of this grid ({', '.join(jobs)}) has a parameter {k!r}; "
                 f"they have: {', '.join(have)}")
