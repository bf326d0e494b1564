"""Simulation: cocotb testbenches and the runner that drives them.

This part checks the Verilog generated from the :mod:`lnsmadam.hw` components in HDL
simulators (Icarus Verilog and Verilator, through cocotb), comparing every result
bit-exactly against the NumPy specification in :mod:`lnsmadam.golden`:

* :mod:`lnsmadam.sim.runner`: export a component to Verilog, build it (cached per design
  and simulator), run a cocotb test module on it with parameters and optional waveforms
  (``LNSMADAM_WAVES=1``);
* :mod:`lnsmadam.sim.ports`: the component's port list as it appears in the Verilog (also
  written by ``lnsmadam generate``);
* :mod:`lnsmadam.sim.stream`: cocotb-side stream source, monitor and scoreboard;
* ``cocotb_mul``, ``cocotb_convert``, ``cocotb_mac``: the testbenches (cocotb modules, run
  inside the simulator; ``cocotb_selftest`` checks the infrastructure on toy blocks);
* :mod:`lnsmadam.sim.twin`: the simulation twin, the SoC's Verilog in Verilator behind a
  :class:`~lnsmadam.host.transport.Transport` (``lnsmadam train --sim``).
"""
