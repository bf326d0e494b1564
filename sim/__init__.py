"""Simulation: cocotb testbenches and the runner that drives them.

This part holds the cocotb testbenches that exercise the :mod:`lnsmadam.hw` components
in an HDL simulator (Icarus Verilog), comparing every result bit-exactly against the
NumPy specification in :mod:`lnsmadam.golden`, plus the runner that elaborates a
component to Verilog, builds the simulation and collects the results.
"""
