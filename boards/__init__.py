"""Boards: FPGA platform tops, bitstream build and programming.

This part wraps the :mod:`lnsmadam.hw` design in a top-level module for each supported
FPGA board (clocks, reset, pins, UART), drives the vendor or open-source toolchain to
build a bitstream, and programs the board.
"""
