"""``lnsmadam generate fp8-mac / fp32-mac`` and ``mac --first-cut``: files, parameters,
AXI4-Stream wrappers and refusals (the FP units' arithmetic is tested in test_hw_fpmac.py,
test_sim_fpmac.py and test_asic_flow.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from lnsmadam.cli import main as cli_main
from lnsmadam.cli.main import cli


def _gen(tmp_path, args):
    res = CliRunner().invoke(cli, ["generate", *args, "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    return res


def test_fp8_mac(tmp_path):
    _gen(tmp_path, ["fp8-mac", "--a-format", "e4m3", "--b-format", "e5m2", "--lanes", "2",
                    "--window", "12", "--acc-bits", "24", "--wrap", "--pipeline", "1"])
    meta = json.loads((tmp_path / "fp8_mac_e4m3_e5m2_l2.json").read_text())
    p = meta["parameters"]
    assert (p["a_format"], p["b_format"], p["lanes"], p["window"], p["acc_bits"]) == \
        ("e4m3", "e5m2", 2, 12, 24)
    assert p["saturate"] is False and p["product_bits"] == 12 + 5
    assert meta["timing"]["latency_cycles"] == 3 and meta["class"] == "lnsmadam.hw.fpmac.FP8MAC"
    assert "module fp8_mac_e4m3_e5m2_l2" in (tmp_path / "fp8_mac_e4m3_e5m2_l2.v").read_text()


def test_fp32_mac_and_first_cut(tmp_path):
    _gen(tmp_path, ["fp32-mac", "--pipeline", "1", "--name", "fma"])
    meta = json.loads((tmp_path / "fma.json").read_text())
    assert meta["timing"]["latency_cycles"] == 3 and meta["parameters"]["lanes"] == 1
    assert meta["class"] == "lnsmadam.hw.fpmac.FP32MAC" and "fma(a, b, acc)" in \
        meta["interface"]["o_stream"]
    _gen(tmp_path, ["mac", "--lanes", "2", "--first-cut", "log", "--name", "lns_log"])
    meta = json.loads((tmp_path / "lns_log.json").read_text())
    assert meta["parameters"]["first_cut"] == "log"


@pytest.mark.parametrize("block, name, s_bits, m_bits", [
    (["fp8-mac", "--lanes", "3"], "fp8_mac_e4m3_e4m3_l3", 2 * 3 * 8, 32),
    (["fp32-mac"], "fp32_mac", 64, 32),
])
def test_axis_wrapper(tmp_path, block, name, s_bits, m_bits):
    res = _gen(tmp_path, [*block, "--axis"])
    assert f"wrote {tmp_path / (name + '_axis.v')}" in res.output
    meta = json.loads((tmp_path / f"{name}.json").read_text())
    ax = meta["axis"]
    assert ax["framed"] and ax["top_module"] == f"{name}_axis"
    assert ax["tdata_bits"] == {"s_axis": s_bits, "m_axis": m_bits}
    assert [f["path"] for f in ax["tdata_fields"]["m_axis_tdata"]] == ["acc"]
    assert f"module {name}_axis" in (tmp_path / f"{name}_axis.v").read_text()


@pytest.mark.parametrize("args, msg", [
    (["fp8-mac", "--window", "0"], "error: --window must be in [1, 36], got 0"),
    (["fp8-mac", "--acc-bits", "10"], "error: --acc-bits must be in [23, 62], got 10"),
    # e5m2 x e5m2 spans 64 octaves, but a product of more than 57 cannot fit 62 bits: the
    # window is blamed with its real range, never an empty --acc-bits range
    (["fp8-mac", "--a-format", "e5m2", "--b-format", "e5m2", "--window", "64", "--acc-bits",
      "62"], "error: --window must be in [1, 57] for e5m2 x e5m2 (a product, window + 4 + 1 "
             "bits, must fit the accumulator of at most 62 bits), got 64"),
    (["fp8-mac", "--b-format", "e5m2", "--window", "51"],
     "error: --window must be in [1, 50], got 51"),
    (["fp8-mac", "--a-format", "e5m2", "--b-format", "e5m2", "--window", "57",
      "--acc-bits", "61"], "error: --acc-bits must be in [62, 62], got 61"),
    (["fp8-mac", "--lanes", "0"], "error: --lanes must be in [1, 256], got 0"),
    (["fp32-mac", "--pipeline", "3"], "error: --pipeline must be in [1, 2], got 3"),
])
def test_refusals(tmp_path, capsys, args, msg):
    with pytest.raises(SystemExit) as e:
        cli_main.main(["generate", *args, "-o", str(tmp_path)])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip() == msg
