"""Golden model: the pure-NumPy, bit-exact specification of the LNS arithmetic.

This part defines what the hardware must compute -- number formats, conversions,
multiply/accumulate, the Madam weight update, the MLP training step and the data set --
as plain NumPy integer code with no Amaranth (or other hardware) import, so it runs
anywhere and serves as the reference every :mod:`lnsmadam.hw` component and
:mod:`lnsmadam.sim` testbench is checked against bit for bit.

It also holds the contract between the host and the device, which both sides import:
:mod:`lnsmadam.golden.link` (the wire format and the reference device),
:mod:`lnsmadam.golden.image` (registers, records, weight banks) and
:mod:`lnsmadam.golden.soc` (``SoCConfig``, the device's configuration). The float research
code (:mod:`lnsmadam.golden.baseline`, :mod:`lnsmadam.golden.optim`) shares only
:mod:`lnsmadam.golden.seeded` (initial weights, sample order) with the spec.
"""
