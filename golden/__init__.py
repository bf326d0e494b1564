"""Golden model: the pure-NumPy, bit-exact specification of the LNS arithmetic.

This part defines what the hardware must compute -- number formats, conversions,
multiply/accumulate, the Madam weight update, the MLP training step and the data set --
as plain NumPy integer code with no Amaranth (or other hardware) import, so it runs
anywhere and serves as the reference every :mod:`lnsmadam.hw` component and
:mod:`lnsmadam.sim` testbench is checked against bit for bit.
"""
