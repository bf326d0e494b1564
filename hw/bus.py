"""Signatures shared by the host link (:mod:`.link`) and the trainer (:mod:`.trainer`).

The link is the initiator of both. ``docs/protocol.md`` defines the bytes on the wire; these
are the cycle-level contracts inside the SoC.

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

__all__ = ["MemBus", "ControlSignature", "REGION_BITS", "ADDR_BITS", "DATA_BITS"]

REGION_BITS = 8
ADDR_BITS = 16
DATA_BITS = 32

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

ControlSignature = wiring.Signature({
    "start": Out(1),
    "evaluate": Out(1),
    "stop": Out(1),
    "epochs": Out(16),
    "lr_step": Out(8),
    "seed": Out(32),
    "busy": In(1),
    "state": In(8),
    "error": In(8),
    "epoch": In(16),
    "sample": In(16),
    "correct": In(16),
    "last_correct": In(16),
    "steps": In(32),
})
