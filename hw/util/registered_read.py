"""A synchronous memory read port built to map onto a block RAM without extra logic."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib.memory import Memory

__all__ = ["RegisteredRead"]


class RegisteredRead:
    """A synchronous read port of ``mem``: ``addr`` in, ``data`` one cycle later, the old
    word when the same address is written. With ``enable``, an ``en`` input (default 1):
    ``data`` holds while it is low.

    Built from an asynchronous port and a register. With the memory's Yosys attribute
    ``no_rw_check`` (required), Yosys folds the register into the block RAM and adds no logic
    to emulate read-before-write, which a plain ``read_port()`` costs (about 20 logic cells
    per memory on iCE40). The attribute makes a read of the word being written in the same
    cycle undefined on the FPGA: use the port only where such a read is never used.
    """

    def __init__(self, m: Module, mem: Memory, name: str = "mem", enable: bool = False):
        if not mem.attrs.get("no_rw_check"):
            raise ValueError(f"{name}: RegisteredRead needs a Memory with "
                             f"attrs={{'no_rw_check': 1}}")
        port = mem.read_port(domain="comb")
        self.addr = Signal.like(port.addr, name=f"{name}_raddr")
        self.data = Signal(mem.shape, name=f"{name}_rdata")
        m.d.comb += port.addr.eq(self.addr)
        if enable:
            self.en = Signal(init=1, name=f"{name}_ren")
            with m.If(self.en):
                m.d.sync += self.data.eq(port.data)
        else:
            m.d.sync += self.data.eq(port.data)
