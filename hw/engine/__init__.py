"""The lane-parallel fused training engine (``docs/engine.md``): the SoC's trainer.

One concept per module: :mod:`.mac` (tree / per-lane dot products), :mod:`.layout` (weight
banks and vector memories), :mod:`.vectors` (vectors stored before requantisation and
requantised where they are read), :mod:`.datapath` (one pass over a layer's weights),
:mod:`.loader` (double-buffered sample load), :mod:`.control` (run control and the pass
schedule) and :mod:`.engine` (the component the SoC instantiates).
"""
