"""golden/soc.py: the SoC configuration checks itself, describes the device and round-trips."""

import dataclasses

import pytest

from lnsmadam.golden import link as P
from lnsmadam.golden.image import record_words, words_per_row
from lnsmadam.golden.mlp import MLPConfig
from lnsmadam.golden.soc import SoCConfig
from lnsmadam.host.session import config_from_identify

CONFIGS = [
    SoCConfig(),
    SoCConfig(sizes=(64, 32, 10), lanes=4),
    SoCConfig(sizes=(5, 4, 3, 3), lanes=2, n_records=20, bits=6, gamma=4, lr_step=3,
              clk_freq=8e6, mac_pipeline=1, conv_pipeline=0, update_pipeline=0),
    SoCConfig(sizes=(7, 3), lanes=16, n_records=1, bits=3, gamma=1, clk_freq=48e6,
              baud=115200, mac_pipeline=6, conv_pipeline=4, update_pipeline=7),
]


def test_bias_lane_regions():
    cfg = SoCConfig(sizes=(64, 16, 10), lanes=4, bias_lane=True)
    regions = {name: depth for _, name, _, depth in cfg.regions()}
    assert regions["u0.0"] == 16 * 16 and regions["u0.4"] == regions["v0.4"] == 16
    assert regions["u1.3"] == 10 * 4 and regions["u1.4"] == 10
    assert "u0.5" not in regions


def test_default_regions():
    rec = record_words(64)
    assert rec == 33
    assert SoCConfig().regions() == [
        (0, "regs", 32, 16), (1, "data", 16, 1797 * rec),
        (2, "u0.0", 12, 16 * 65), (3, "v0.0", 17, 16 * 65),
        (4, "u1.0", 12, 10 * 17), (5, "v1.0", 17, 10 * 17)]


def test_banked_regions():
    cfg = SoCConfig(sizes=(64, 32, 10), lanes=4)
    regions = cfg.regions()
    assert [r[1] for r in regions] == (["regs", "data"] + [f"u0.{b}" for b in range(4)]
                                       + [f"v0.{b}" for b in range(4)]
                                       + [f"u1.{b}" for b in range(4)]
                                       + [f"v1.{b}" for b in range(4)])
    assert [r[0] for r in regions] == list(range(18))
    assert regions[2][3] == 32 * words_per_row(65, 4) == 32 * 17
    assert regions[-1][3] == 10 * words_per_row(33, 4) == 10 * 9


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(map(str, c.sizes)))
def test_round_trip_through_identify(cfg):
    d = cfg.to_dict()
    assert d["divisor"] == cfg.divisor and d["sizes"] == list(cfg.sizes)
    assert SoCConfig.from_dict(d) == cfg
    ident = P.parse_identify(cfg.identify_blob())
    assert ident == cfg.identify_json()
    # every field, the pipeline stages included, comes back from what the device reports
    assert config_from_identify(ident) == cfg
    assert ident["config"]["max_records"] == cfg.n_records
    assert ident["config"]["lanes"] == cfg.lanes
    assert [tuple(r.values()) for r in ident["regions"]] == cfg.regions()


def test_mlp_config():
    m = SoCConfig(sizes=(5, 4, 3), bits=6, gamma=4, lr_step=7).mlp_config()
    assert isinstance(m, MLPConfig) and m.sizes == (5, 4, 3)
    assert (m.fmt.bits, m.fmt.gamma, m.madam.lr_step) == (6, 4, 7)
    assert not m.madam.bias_correction            # the trainer's seeding mode
    assert MLPConfig().to_dict() == SoCConfig().mlp_config().to_dict()


@pytest.mark.parametrize("kw, match", [
    ({"sizes": (64,)}, r"sizes must list at least an input and an output layer"),
    ({"sizes": "64"}, r"sizes must be a sequence"),
    ({"sizes": (64, 0, 10)}, r"sizes\[1\] must be in \[1, 1024\]"),
    ({"sizes": (64, 16, 1025)}, r"sizes\[2\] must be in \[1, 1024\]"),
    ({"sizes": (64, 1.5, 10)}, r"sizes\[1\] must be an integer"),
    ({"sizes": (200, 16, 10), "n_records": 100},
     r"sizes must give dot products of at most 128 terms .* 201"),
    ({"sizes": (64, 128, 10)}, r"sizes must give dot products of at most 128 terms .* 129"),
    ({"lanes": 3}, r"lanes must be a power of two in 1\.\.64, got 3"),
    ({"lanes": 128}, r"lanes must be in \[1, 64\]"),
    ({"lanes": 64, "sizes": (64, 64, 10)}, r"lanes must be at most 32 for 2 layers: the "
                                             r"protocol addresses 256 regions"),
    ({"n_records": 0}, r"n_records must be in \[1, 65535\]"),
    ({"n_records": 1986}, r"n_records must be <= 1985 for 64 inputs \(65536 data words\)"),
    ({"bits": 9}, r"bits must be in \[3, 8\]"),
    ({"bits": 2}, r"bits must be in \[3, 8\]"),
    ({"gamma": 3}, r"gamma must be a power of two"),
    ({"lr_step": 0}, r"lr_step must be in \[1, 64\]"),
    ({"lr_step": 65}, r"lr_step must be in \[1, 64\]"),
    ({"clk_freq": 10.0}, r"clk_freq must be a finite number in \[1000, 1e\+09\] Hz"),
    ({"clk_freq": "12e6"}, r"clk_freq must be a number in \[1000, 1e\+09\] Hz"),
    ({"baud": 100}, r"baud must be in \[300, 50000000\]"),
    ({"clk_freq": 2e6, "baud": 1_000_000}, r"clk_freq / baud must round to 4\.\.65535"),
    ({"mac_pipeline": -1}, r"mac_pipeline must be in \[0, 2\]"),
    ({"mac_pipeline": 3}, r"mac_pipeline must be in \[0, 2\]"),
    ({"lanes": 4, "mac_pipeline": 5}, r"mac_pipeline must be in \[0, 4\]"),
    ({"lanes": 4, "bias_lane": True, "mac_pipeline": 6}, r"mac_pipeline must be in \[0, 5\]"),
    ({"read_reg": 2}, r"read_reg must be in \[0, 1\]"),
    ({"state_man_bits": 4}, r"state_man_bits must be in \[5, 16\]"),
    ({"beta_k": 21}, r"beta_k must be in \[1, 20\]"),
    ({"softmax": "fast"}, r"softmax must be one of serial, parallel, got 'fast'"),
    ({"pipelined": 1}, r"pipelined must be"),
    ({"bias_lane": "yes"}, r"bias_lane must be"),
    ({"sizes": (64, 10), "pipelined": True}, r"pipelined needs at least two layers"),
    ({"gamma": 32, "softmax": "parallel"}, r"softmax='parallel' needs gamma in \[1, 16\], got 32"),
    ({"conv_pipeline": 5}, r"conv_pipeline must be in \[0, 4\]"),
    ({"update_pipeline": 8}, r"update_pipeline must be in \[0, 7\]"),
    ({"update_pipeline": -1}, r"update_pipeline must be in \[0, 7\]"),
])
def test_every_error_names_the_field_and_range(kw, match):
    with pytest.raises(ValueError, match=match):
        SoCConfig(**kw)


def test_limits_are_reachable():
    SoCConfig(sizes=(127, 127, 128), n_records=100)      # 128-term dot products: exact
    SoCConfig(n_records=1985)
    SoCConfig(sizes=(1, 1), n_records=65535 // 2 + 1)   # 2 words per record: 65536 words
    SoCConfig(lanes=16, mac_pipeline=6)
    SoCConfig(lanes=64, mac_pipeline=8, sizes=(64, 10))       # 258 regions for 2 layers
    SoCConfig(lanes=32, sizes=(64, 64, 10))
    SoCConfig(lanes=4, bias_lane=True, mac_pipeline=5)
    SoCConfig(clk_freq=4e6, baud=1_000_000)              # divisor 4


def test_from_dict_errors():
    d = SoCConfig().to_dict()
    with pytest.raises(ValueError, match="unknown SoCConfig field"):
        SoCConfig.from_dict({**d, "leds": 3})
    with pytest.raises(ValueError, match=r"divisor must be 12"):
        SoCConfig.from_dict({**d, "divisor": 8})
    with pytest.raises(ValueError, match="lanes must be"):
        SoCConfig.from_dict({**d, "lanes": 5})
    with pytest.raises(ValueError, match="must be a dict"):
        SoCConfig.from_dict([1])
    # missing fields take their defaults (a device that reports fewer)
    assert SoCConfig.from_dict({"lanes": 2}) == SoCConfig(lanes=2)


def test_fields_are_what_to_dict_holds():
    names = [f.name for f in dataclasses.fields(SoCConfig)]
    assert list(SoCConfig().to_dict()) == names + ["divisor"]


def test_numpy_integers_are_stored_as_ints():
    """Any integer type is accepted and stored as a plain int (fuzz 31); bools and floats,
    NumPy's too, are refused as before."""
    import numpy as np

    cfg = SoCConfig(lanes=np.int64(4), bits=np.int8(8), sizes=[np.int16(64), 16, 10],
                    mac_pipeline=np.uint8(4), baud=np.int32(1_000_000),
                    clk_freq=np.float64(12e6))
    assert cfg == SoCConfig(lanes=4, mac_pipeline=4)
    for name in ("lanes", "bits", "mac_pipeline", "baud"):
        assert type(getattr(cfg, name)) is int, name
    assert all(type(s) is int for s in cfg.sizes) and type(cfg.clk_freq) is float
    for kw, match in (({"lanes": np.True_}, "lanes must be an integer"),
                      ({"bits": np.float32(8)}, "bits must be an integer"),
                      ({"gamma": 8.0}, "gamma must be an integer")):
        with pytest.raises(ValueError, match=match):
            SoCConfig(**kw)


def test_sizes_must_be_a_list_or_tuple():
    """A dict (its keys), a set or a string are not layer widths (fuzz 34)."""
    for bad in ({64: 1, 16: 1}, {64, 10}, "64,10", 64, None):
        with pytest.raises(TypeError, match="sizes must be a sequence"):
            SoCConfig(sizes=bad)
    assert SoCConfig(sizes=[64, 8, 10]).sizes == (64, 8, 10)


def test_from_dict_non_str_keys():
    """Keys that are not strings are unknown fields, named in the message (fuzz 32)."""
    with pytest.raises(ValueError, match=r"unknown SoCConfig field\(s\) 1, None; known: sizes"):
        SoCConfig.from_dict({1: 4, None: 2})
