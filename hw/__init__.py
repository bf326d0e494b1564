"""Hardware generator: the Amaranth components of the LNS training datapath.

This part holds the synthesizable Amaranth (``amaranth``) elaboratables -- number
format converters, multiply/accumulate units, the Madam weight-update unit, memories
and the control that sequences a training step -- parameterised by the same format
descriptions as :mod:`lnsmadam.golden`, against which every component is checked
bit-exactly.

Modules (each the twin of the :mod:`lnsmadam.golden` module of the same name):

* :mod:`~lnsmadam.hw.format` -- the LNS word layout (packed word = golden code), the ZERO
  test, constant ROMs, requantisation (``Requantize``).
* :mod:`~lnsmadam.hw.mul` -- ``LNSMul``, the LNS multiply.
* :mod:`~lnsmadam.hw.convert` -- ``ToLinear`` (table + barrel shift) and ``FromLinear``
  (leading one + log-domain midpoints).
* :mod:`~lnsmadam.hw.mac` -- ``LNSMAC``, the streaming N-lane dot-product unit, and
  ``INT8MAC``, its signed 8-bit area baseline.
* :mod:`~lnsmadam.hw.update` -- ``MadamUpdate``, the pipelined integer LNS-Madam weight-update
  engine (one weight per clock), the twin of :func:`lnsmadam.golden.update.madam_step`.
* :mod:`~lnsmadam.hw.softmax` -- ``SoftmaxError``, the output layer's loss gradient;
  :mod:`~lnsmadam.hw.shuffle` -- ``Shuffler``, the on-device epoch order.
* :mod:`~lnsmadam.hw.engine` -- ``Engine``, the fused, lane-parallel training engine (a
  package, one file per concept: run control, pass datapath, lane MAC, softmax, loader,
  shared vectors), the twin of :mod:`lnsmadam.golden.trainer` (exact and pipelined mode).
* :mod:`~lnsmadam.hw.link` -- ``Link``, the host link (UART, SLIP, checks), the twin of
  :mod:`lnsmadam.golden.link`; :mod:`~lnsmadam.hw.uart`, :mod:`~lnsmadam.hw.bus` (the
  signatures between link and trainer).
* :mod:`~lnsmadam.hw.soc` -- ``SoC``, engine + link, generated from a
  :class:`lnsmadam.golden.soc.SoCConfig`.
* :mod:`~lnsmadam.hw.util` -- small gateware helpers, one per module.
* :mod:`~lnsmadam.hw.fpmac` -- ``FP8MAC``, ``FP32MAC``, the FP baselines of the ASIC reports.
* :mod:`~lnsmadam.hw.blocks` -- the blocks ``lnsmadam generate`` writes, each with its
  description (parameters, timing, interface); :mod:`~lnsmadam.hw.blockparams` -- the same
  from flat parameters (the command line's and the sweep grids').
"""
