"""The ASIC target: standard-cell synthesis, static timing, power and energy per operation.

``lnsmadam asic BLOCK [generate options] --lib osu018 --clock-ns 10 -o DIR`` (see
``docs/asic.md``): Yosys maps the block to a Liberty library (:mod:`.flow`), OpenSTA times
it and gives each instance's power (:mod:`.flow`), a zero-delay gate-level simulation on
operands from real training counts every net's toggles (:mod:`.gatesim`, :mod:`.stimulus`,
:mod:`.energy`), and :mod:`.report` writes ``report.json`` and ``report.md``.
"""

from .libs import LIB_KINDS, LIBS, AsicLib, ToolError, find_lib, find_sta
from .report import (CLOCK_NS, CYCLES, DEFAULTS, STREAMS, asic_report, check_options,
                     unused)

__all__ = ["LIBS", "LIB_KINDS", "AsicLib", "ToolError", "find_lib", "find_sta", "asic_report",
           "check_options", "unused", "CLOCK_NS", "STREAMS", "CYCLES", "DEFAULTS"]
