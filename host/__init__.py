"""Host: the client that drives a training SoC over its UART link.

This part runs on the host computer and needs no Amaranth: :mod:`~lnsmadam.host.device`
(``Device``: requests with retries, the trainer's memory image, run control),
:mod:`~lnsmadam.host.transport` (a serial port, in-memory pipes, a loopback),
:mod:`~lnsmadam.host.session` (a whole training run, the same as the golden model's) and
:mod:`~lnsmadam.host.faults` (fault injection for link tests). The wire format and the memory
image are the contract in :mod:`lnsmadam.golden` (``link``, ``image``, ``soc``); the
simulation twin, a transport to the SoC's Verilog, is :mod:`lnsmadam.sim.twin`.
"""
