"""Programming a board and checking that the design answers.

:func:`program` runs the board's programmer (iCEBreaker: ``iceprog``, else
``openFPGALoader -b ice40_generic``; ULX3S: ``openFPGALoader -b ulx3s``) on a bitstream made
by ``lnsmadam build``; ``ICEPROG`` / ``OPENFPGALOADER`` override the programs' paths, as in
amaranth-boards. Every failure is a :class:`ProgramError` whose message is one line
saying what is missing and how to get it: no programmer installed (with the install
command), no bitstream (with the build command), or the programmer's own complaint (e.g. no
board on USB), with whether the board's USB bridge is visible at all.

:func:`identify` then opens the board's UART (:func:`default_port` finds the USB bridge
by VID:PID, interface B on the iCEBreaker's FT2232H) and reads the identify blob through
:class:`lnsmadam.host.device.Device` (protocol version, design, config).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from .platforms import Board, get_board

__all__ = ["ProgramError", "find_programmer", "tool_env", "default_bitstream", "program", "default_port",
           "usb_bridge_present", "identify", "build_baud"]


class ProgramError(RuntimeError):
    """Programming or the identify check failed; the message is one line."""


def tool_env(tool: str) -> str:
    """The environment variable that overrides ``tool``'s executable, as amaranth-boards
    names it: upper case, ``-`` as ``_`` (``ICEPROG``, ``OPENFPGALOADER``)."""
    return tool.upper().replace("-", "_")


def find_programmer(board: Board, prefer: str | None = None, which=shutil.which,
                    environ=os.environ):
    """``(tool, path, args)`` of the first installed programmer of ``board`` (``prefer``
    first if given). A tool's environment variable (:func:`tool_env`, e.g.
    ``ICEPROG=/opt/bin/iceprog``) overrides where it is looked up, as in amaranth-boards;
    one set to a missing program is an error naming it. Raises :class:`ProgramError` naming
    each tool and how to install it."""
    progs = list(board.programmers)
    if prefer is not None:
        names = [p[0] for p in progs]
        if prefer not in names:
            raise ProgramError(f"programmer must be one of {', '.join(names)} for "
                               f"{board.name}, got {prefer!r}")
        progs = [p for p in progs if p[0] == prefer]
    for tool, args, _ in progs:
        override = environ.get(tool_env(tool), "").strip()
        if override:
            if Path(override.split()[0]).name in ("true", ":"):
                # the build-only setting of toolchain recipes: it would "program" nothing
                raise ProgramError(f"{tool_env(tool)}={override} disables {tool}; unset it "
                                   "to program the board")
            path = which(override)
            if path is None:
                raise ProgramError(f"{tool_env(tool)}={override} (the {tool} override) is "
                                   "not an executable program")
            return tool, path, list(args)
        path = which(tool)
        if path:
            return tool, path, list(args)
    hints = "; or ".join(h for _, _, h in progs)
    raise ProgramError(f"no programmer for {board.name} found on PATH; install {hints}")


def default_bitstream(board: Board, out_dir=None) -> Path:
    out = Path(out_dir) if out_dir is not None else Path("out") / "build" / board.name
    return out / f"{board.name}.{board.bitstream_ext}"


def usb_bridge_present(board: Board) -> bool | None:
    """Whether a USB-serial device with the board's VID:PID is attached (None: unknown)."""
    try:
        from serial.tools import list_ports
    except ImportError:
        return None
    vid, pid, _ = board.usb_id
    return any(p.vid == vid and p.pid == pid for p in list_ports.comports())


def default_port(board: Board) -> str:
    """The board's UART: the attached USB bridge with its VID:PID (on an FT2232H the port of
    interface B), else the usual Linux device node (``board.serial_port``)."""
    try:
        from serial.tools import list_ports
        vid, pid, iface = board.usb_id
        ports = sorted((p for p in list_ports.comports() if p.vid == vid and p.pid == pid),
                       key=lambda p: p.device)
        if iface is not None:
            same = [p for p in ports if (p.location or "").endswith(f".{iface}")]
            ports = same or ports[iface:iface + 1]
        if ports:
            return ports[0].device
    except Exception:        # enumeration is best effort; fall back to the usual name
        pass
    return board.serial_port


def build_baud(bitstream: Path, board: Board) -> int:
    """The UART rate of a built design: its ``report.json`` beside the bitstream, else the
    board's default config, else 1,000,000."""
    rep = Path(bitstream).parent / "report.json"
    try:
        return int(json.loads(rep.read_text())["config"]["baud"])
    except (OSError, ValueError, KeyError, TypeError):
        return int(board.config.get("baud", 1_000_000))


def program(board: str | Board, bitstream=None, *, programmer: str | None = None,
            flash: bool | None = None, run=subprocess.run, which=shutil.which,
            environ=os.environ) -> str:
    """Program ``bitstream`` (default: ``out/build/<board>/<board>.<ext>``) into ``board``.

    ``flash``: write the configuration flash (default: iCEBreaker yes, ULX3S no: SRAM,
    lost at power-off). Returns the command line run."""
    board = board if isinstance(board, Board) else get_board(board)
    bit = Path(bitstream) if bitstream is not None else default_bitstream(board)
    if not bit.is_file():
        others = sorted((Path("out") / "build").glob(f"{board.name}-*/{bit.name}"))
        hint = (f"; builds of other configurations: {', '.join(map(str, others[:4]))}"
                if bitstream is None and others else "")
        raise ProgramError(f"no bitstream at {bit}: run `lnsmadam build --board {board.name}` "
                           f"first (or pass --bitstream){hint}")
    if bit.suffix.lstrip(".") != board.bitstream_ext:
        raise ProgramError(f"{bit} is not a .{board.bitstream_ext} bitstream for {board.name}")
    tool, path, args = find_programmer(board, programmer, which, environ)
    if flash is None:
        flash = board.family == "ice40"
    if tool == "iceprog":
        args = args + ([] if flash else ["-S"])
    elif tool == "openFPGALoader" and flash:
        args = args + ["-f"]
    cmd = [path, *args, str(bit)]
    try:
        proc = run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise ProgramError(f"{tool} did not finish within 300 s") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in ((proc.stderr or "") + "\n" + (proc.stdout or ""))
                 .splitlines() if ln.strip()]
        why = lines[-1] if lines else f"exit status {proc.returncode}"
        seen = usb_bridge_present(board)
        vid, pid, _ = board.usb_id
        where = ("" if seen is None else
                 f"; a USB device {vid:04x}:{pid:04x} ({board.usb_bridge}) is attached, check "
                 "permissions (udev rules) and that nothing else holds it" if seen else
                 f"; no USB device {vid:04x}:{pid:04x} ({board.usb_bridge}) is attached: "
                 f"connect the {board.title} by USB")
        raise ProgramError(f"{tool} failed: {why}{where}")
    return " ".join(cmd)


def identify(board: str | Board, port: str | None = None, baud: int = 1_000_000,
             wait: float = 3.0) -> dict:
    """Read the identify JSON of the design on ``board`` over its UART (retrying for up to
    ``wait`` seconds while the FPGA configures). Raises :class:`ProgramError`."""
    from ..host.device import Device
    from ..host.transport import LinkError, SerialTransport

    board = board if isinstance(board, Board) else get_board(board)
    port = port or default_port(board)
    deadline = time.monotonic() + wait
    last = None
    while True:
        try:
            with SerialTransport(port, baud) as tr:
                return Device(tr, retries=3).identify()
        except LinkError as exc:
            last = str(exc).splitlines()[0]
        if time.monotonic() >= deadline:
            raise ProgramError(f"identify over {port} at {baud} baud failed: {last}")
        time.sleep(0.5)
