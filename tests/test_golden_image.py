"""golden/image.py: the trainer's register map, records and weight banks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lnsmadam.golden import image
from lnsmadam.golden.mlp import LNSMLP, MLPConfig


def test_register_map():
    assert image.register_map(2) == {
        "n_train": 0, "n_test": 1, "epoch_base": 2, "sample_base": 3, "mode": 4,
        "u_bias0": 8, "f_bias0": 9, "e_clamp0": 10,
        "u_bias1": 12, "f_bias1": 13, "e_clamp1": 14}
    assert image.regs_depth(2) == 16
    assert image.regs_description() == {
        "n_train": 0, "n_test": 1, "epoch_base": 2, "sample_base": 3, "mode": 4,
        "layer_base": 8, "layer_stride": 4,
        "layer_fields": ["u_bias", "f_bias", "e_clamp"]}
    # the global registers stay below the first layer's, the layer fields within a stride
    assert max(image.REGS.values()) < image.LAYER_REGS
    assert len(image.LAYER_FIELDS) <= image.LAYER_STRIDE


def test_layer_regs_of_a_model():
    model = LNSMLP(MLPConfig(sizes=(5, 4, 3)), 0)
    regs = image.layer_regs(model)
    addr = image.register_map(2)
    for l in range(2):
        assert regs[addr[f"u_bias{l}"]] == model.u_bias[l] & 0xFFFFFFFF
        assert regs[addr[f"f_bias{l}"]] == model.f_bias[l] & 0xFFFFFFFF
        assert regs[addr[f"e_clamp{l}"]] == model.e_clamp[l]
    assert image.to_u32(-1) == 0xFFFFFFFF


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40), st.integers(0, 6), st.integers(0, 2**32 - 1))
def test_records_round_trip(n_in, n, seed):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (n, n_in))
    labels = rng.integers(0, 65536, n)
    words = image.pack_dataset(codes, labels)
    assert len(words) == n * image.record_words(n_in) and words.max(initial=0) < 1 << 16
    c, lab = image.unpack_dataset(words, n_in)
    assert np.array_equal(c, codes) and np.array_equal(lab, labels)


def test_record_layout():
    words = image.pack_dataset([[1, 2, 3]], [7])
    assert words.tolist() == [1 | 2 << 8, 3, 7]           # two codes per word, then the label
    with pytest.raises(ValueError, match="codes must be in 0..255"):
        image.pack_dataset([[256]], [0])
    with pytest.raises(ValueError, match="labels must have shape"):
        image.pack_dataset([[1]], [0, 1])


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 9), st.integers(1, 20), st.sampled_from([1, 2, 4, 8, 16]),
       st.integers(0, 2**32 - 1))
def test_banks_round_trip_and_layout(rows, cols, lanes, seed):
    mat = np.random.default_rng(seed).integers(1, 1 << 12, (rows, cols))
    wpr = image.words_per_row(cols, lanes)
    assert wpr == -(-cols // lanes)
    banks = image.to_banks(mat, lanes)
    assert len(banks) == lanes and all(len(b) == rows * wpr for b in banks)
    for i in range(rows):
        for j in range(wpr * lanes):
            want = mat[i, j] if j < cols else 0          # padding is ZERO
            assert banks[j % lanes][i * wpr + j // lanes] == want
    assert np.array_equal(image.from_banks(banks, rows, cols), mat)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 9), st.integers(2, 20), st.sampled_from([1, 2, 4, 8]),
       st.integers(0, 2**32 - 1))
def test_bias_lane_banks(rows, cols, lanes, seed):
    """With a bias lane the last column is bank ``lanes`` (one word per row) and the others
    are banked as without one."""
    mat = np.random.default_rng(seed).integers(1, 1 << 12, (rows, cols))
    wpr = image.words_per_row(cols, lanes, bias_lane=True)
    assert wpr == -(-(cols - 1) // lanes)
    banks = image.to_banks(mat, lanes, bias_lane=True)
    assert len(banks) == lanes + 1 and list(banks[-1]) == list(mat[:, -1])
    for b in range(lanes):
        assert np.array_equal(banks[b], image.to_banks(mat[:, :-1], lanes)[b])
    assert np.array_equal(image.from_banks(banks, rows, cols, bias_lane=True), mat)
    table = image.region_table((cols - 1, rows), lanes, 3, 12, 17, bias_lane=True)
    depth = {name: d for _, name, _, d in table}
    assert depth["u0.0"] == rows * wpr and depth[f"v0.{lanes}"] == rows


def test_layer_shapes_and_model_image():
    assert image.layer_shapes((64, 16, 10)) == [(16, 65), (10, 17)]
    model = LNSMLP(MLPConfig(sizes=(5, 4, 3)), 1)
    img = image.model_image(model, 2)
    assert sorted(img) == ["u0.0", "u0.1", "u1.0", "u1.1", "v0.0", "v0.1", "v1.0", "v1.1"]
    assert np.array_equal(image.from_banks([img["u0.0"], img["u0.1"]], 4, 6), model.u[0])
