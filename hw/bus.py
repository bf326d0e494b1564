"""Signatures shared by the host link (:mod:`.link`) and the trainer (:mod:`.trainer`).

The link is the initiator of both. ``docs/protocol.md`` (:mod:`lnsmadam.golden.link`)
defines the bytes on the wire; these are the cycle-level contracts inside the SoC, with
the field widths taken from the wire format.

:data:`MemBus` -- one word access at a time::

    cmd_valid/cmd_ready  handshake (the access happens in the cycle both are 1)
    cmd_write            1 = write ``cmd_wdata`` to (``cmd_region``, ``cmd_addr``)
    cmd_region, cmd_addr region id (``docs/protocol.md`` §7) and word address
    cmd_wdata            data, LSB-aligned (bits above the region's width are 0)
    rsp_valid, rsp_rdata one-cycle pulse per accepted command, any number of cycles after it
                         (the read data, or 0 for a write); one command outstanding at most

The initiator only issues accesses that the region table allows (id and address checked)
and only while ``ControlSignature.busy`` is 0.

:data:`ControlSignature` -- run control and status (initiator = link)::

    start        one-cycle pulse: train ``epochs`` epochs with ``lr_step`` and ``seed``
    evaluate     one-cycle pulse: inference over the stored test set
    stop         one-cycle pulse: finish the current sample, go idle
    epochs, lr_step, seed   valid in the ``start`` cycle only (the target copies them)
    busy         1 while training or evaluating (memory accesses and start are refused)
    state, error, epoch, sample, correct, last_correct, steps   the STATUS fields
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden.link import ADDR_BITS, REGION_BITS, START_FIELDS, STATUS_FIELDS, WORD_BITS

__all__ = ["MemBus", "ControlSignature", "REGION_BITS", "ADDR_BITS", "DATA_BITS"]

#: widest region word (:data:`lnsmadam.golden.link.WORD_BITS`)
DATA_BITS = WORD_BITS

MemBus = wiring.Signature({
    "cmd_valid": Out(1),
    "cmd_ready": In(1),
    "cmd_write": Out(1),
    "cmd_region": Out(REGION_BITS),
    "cmd_addr": Out(ADDR_BITS),
    "cmd_wdata": Out(DATA_BITS),
    "rsp_valid": In(1),
    "rsp_rdata": In(DATA_BITS),
})

# the START arguments and the STATUS fields at their wire widths
ControlSignature = wiring.Signature({
    "start": Out(1),
    "evaluate": Out(1),
    "stop": Out(1),
    **{name: Out(8 * size) for name, size in START_FIELDS.items()},
    "busy": In(1),
    **{name: In(8 * size) for name, size in STATUS_FIELDS.items()},
})
