"""Job ``train-golden``: one training run of the golden model (or an FP32 baseline) on the
digits MLP, through :func:`lnsmadam.golden.experiment.run`.

Parameters: ``optimizer`` (``lns-madam``, the integer golden model, default; a float
baseline: ``adam``, ``sgd``, ``madam``, ``fromage``, ``lns-madam-float``, ``int-madam``; or
``lns-sgd`` / ``lns-adam``, the integer model whose stored LNS weights SGD / Adam update
directly), ``epochs`` (30), ``seed`` (0), ``sizes`` ([64, 16, 10]), ``lr`` and ``p_scale``
(float baselines: over the tuned defaults); for the integer model the
:class:`~lnsmadam.golden.mlp.MLPConfig`: ``bits`` and ``gamma`` (tensor format, 8 / 8),
``p_scale`` (10), ``weight_bits`` / ``weight_gamma`` (stored weights, 12 / 128), and for
``lns-madam`` ``lr_step`` (1), ``g_bound`` (10), ``beta_k`` (10), ``state_man_bits`` (12),
``bias_correction`` (false); ``lr`` for ``lns-sgd`` / ``lns-adam`` (0.03 / 1e-3). A
parameter the optimiser does not read is refused. Result: the per-epoch history and the
configuration.
"""

from __future__ import annotations

from pathlib import Path

from . import Param, check_digits_sizes

#: the integer model's format parameters (every integer optimiser)
_FORMAT = {
    "bits": Param("int", "tensor LNS width", lo=3, hi=24),
    "gamma": Param("int", "tensor LNS base factor"),
    "weight_bits": Param("int", "stored-weight width", lo=3, hi=24),
    "weight_gamma": Param("int", "stored-weight base factor"),
}
#: LNS-Madam's own
_MADAM = {
    "lr_step": Param("int", "LNS-Madam step in weight LSBs", lo=1, hi=64),
    "g_bound": Param("int", "clamp of the normalised gradient", lo=1, hi=64),
    "beta_k": Param("int", "EMA decay beta = 1 - 2**-k", lo=1, hi=20),
    "state_man_bits": Param("int", "second-moment mantissa bits", lo=2, hi=24),
    "bias_correction": Param("bool", "Madam's bias correction instead of seeding"),
}


def params(config: dict) -> dict:
    from ...golden.experiment import RUN_NAMES
    return {"optimizer": Param("str", "what trains", choices=RUN_NAMES),
            "epochs": Param("int", "epochs", lo=1, hi=100000),
            "seed": Param("int", "initial weights and sample order", lo=0, hi=2**32 - 1),
            "sizes": Param("ints", "MLP layer widths, input first", lo=1, hi=4096),
            "lr": Param("float", "learning rate of a float optimiser", lo=0, hi=1e3),
            "p_scale": Param("float", "sigma* = p_scale * RMS(W0)", lo=0, hi=1e6),
            **_FORMAT, **_MADAM}


def lns_config(config: dict):
    """The golden MLPConfig of a point's integer-model parameters."""
    from ...golden.format import LNSFormat
    from ...golden.mlp import MLPConfig
    from ...golden.update import MadamConfig, StateFormat
    fmt = LNSFormat.from_gamma(config.get("bits", 8), config.get("gamma", 8))
    weight = LNSFormat.from_gamma(config.get("weight_bits", 12),
                                  config.get("weight_gamma", 128), underflow="min")
    madam = MadamConfig(weight=weight, state=StateFormat(man_bits=config.get("state_man_bits",
                                                                             12)),
                        lr_step=config.get("lr_step", 1), g_bound=config.get("g_bound", 10),
                        beta_k=config.get("beta_k", 10),
                        bias_correction=config.get("bias_correction", False))
    return MLPConfig(sizes=tuple(config.get("sizes", (64, 16, 10))), fmt=fmt, madam=madam,
                     p_scale=config.get("p_scale", 10.0))


def _kwargs(config: dict) -> dict:
    """The keyword arguments of the training run; ValueError for a parameter the optimiser
    does not read or a format the golden model refuses."""
    from ...golden.experiment import STORAGE_UPDATERS

    name = config.get("optimizer", "lns-madam")
    if name == "lns-madam":
        stray = sorted({"lr"} & set(config))
    elif name in STORAGE_UPDATERS:
        stray = sorted(set(_MADAM) & set(config))
    else:
        stray = sorted((set(_FORMAT) | set(_MADAM)) & set(config))
    if stray:
        raise ValueError(f"optimizer {name} has no parameter {stray[0]}")
    if name == "lns-madam":
        return {"lns_config": lns_config(config)}
    if name in STORAGE_UPDATERS:
        return {"lns_config": lns_config(config),
                "opt_kwargs": {k: config[k] for k in ("lr",) if k in config}}
    return {"opt_kwargs": {k: config[k] for k in ("lr", "p_scale") if k in config}}


def check(config: dict) -> None:
    check_digits_sizes(config)
    _kwargs(config)


def run(config: dict, workdir: Path) -> dict:
    from ...golden.data import load_digits_split
    from ...golden.experiment import run as train

    name = config.get("optimizer", "lns-madam")
    sizes = tuple(config.get("sizes", (64, 16, 10)))
    kw = _kwargs(config)
    r = train(name, load_digits_split(0), config.get("epochs", 30), config.get("seed", 0),
              sizes=sizes, **kw)
    out = r.to_dict()
    out.pop("model", None)
    return out


def metrics(result: dict) -> dict:
    last = result["history"][-1]
    return {"test_acc": last["test_acc"], "train_acc": last["train_acc"],
            "train_s": round(result["seconds"], 2)}
