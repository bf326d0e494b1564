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
* :mod:`~lnsmadam.hw.trainer` -- ``Trainer``, the on-device training sequencer (a package,
  one file per concept), the twin of :mod:`lnsmadam.golden.trainer`.
* :mod:`~lnsmadam.hw.link` -- ``Link``, the host link (UART, SLIP, checks), the twin of
  :mod:`lnsmadam.golden.link`; :mod:`~lnsmadam.hw.uart`, :mod:`~lnsmadam.hw.bus` (the
  signatures between link and trainer).
* :mod:`~lnsmadam.hw.soc` -- ``SoC``, trainer + link, generated from a
  :class:`lnsmadam.golden.soc.SoCConfig`.
* :mod:`~lnsmadam.hw.util` -- small gateware helpers, one per module.
"""
