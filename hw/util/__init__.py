"""Small gateware helpers shared by the hardware blocks, one helper per module.

* :mod:`~lnsmadam.hw.util.stages` -- :class:`~.stages.Stages`, optional pipeline registers
  along a datapath that advance (and stall) together;
* :mod:`~lnsmadam.hw.util.compare` -- :func:`~.compare.ge_const` and
  :func:`~.compare.gt_const`, comparisons with a constant as AND/OR chains;
* :mod:`~lnsmadam.hw.util.rom` -- :func:`~.rom.rom` and :func:`~.rom.signed_rom`,
  combinational constant tables;
* :mod:`~lnsmadam.hw.util.registered_read` -- :class:`~.registered_read.RegisteredRead`, the
  synchronous memory read port that maps to a block RAM without read-before-write logic;
* :mod:`~lnsmadam.hw.util.square_wave` -- :func:`~.square_wave.square_wave`, a blinker.

They build logic into the caller's ``Module`` (no hierarchy of their own).
"""
