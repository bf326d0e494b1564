"""The on-device trainer: :mod:`lnsmadam.golden.mlp`'s training step as a sequencer.

:class:`~.top.Trainer` holds the data set, the weights and the LNS-Madam state in
``lib.memory.Memory`` blocks and runs, per sample, exactly ``LNSMLP.step``:

====================  ===================================================================
phase                 what it computes (golden name)
====================  ===================================================================
``LOAD``              input codes of the sample plus the constant 1 (``input_codes``)
``FWD l``             ``S_l = MAC(W_l, a_l)``, ``W_l = forward_weights(U_l)`` on the fly;
                      hidden layers: ``x + biases``, ReLU, running max (``_hidden``)
``HREQ l``            dynamic requantisation into ``a_{l+1}`` (``_requant_dynamic``)
``SMX``               softmax cross-entropy error (:class:`~lnsmadam.hw.softmax.SoftmaxError`)
``BWD l``             ``e_{l-1} = MAC(W_l[:, :-1]^T, e_l)``, ReLU mask; ``EREQ l`` requantises
``UPD l``             ``G_l = e_l (x) a_l`` on the fly and :class:`MadamUpdate
                      <lnsmadam.hw.update.MadamUpdate>` (``madam_step``), written back
                      in place
====================  ===================================================================

Its golden twin is :class:`lnsmadam.golden.trainer.DeviceTrainer` (records, registers,
``START``/``EVALUATE`` and the status counters) around ``LNSMLP.step``.

The epoch order comes from :class:`~lnsmadam.hw.shuffle.Shuffler`
(``golden.shuffle.epoch_order`` of ``(seed, epoch_base + epoch)``). ``EVALUATE`` runs
``LOAD``/``FWD``/``SMX`` over the test set and counts ``argmax(S_L) == label`` (lowest index
on ties, as ``LNSMLP.predict``; the softmax unit's search for ``max S`` yields the index, so
training and evaluation count with the same logic).

Structure. One sequencer serves every layer: ``FWD``, ``HREQ``, ``BWD``, ``EREQ`` and
``UPD`` are single FSM states and a layer register selects the per-layer constants, biases
and memories; one-hot phase flags steer one shared datapath (counters, memory ports, bias
adder, requantisers), so each register and port has one short mux. A copy of the control
per layer cost about 750 iCE40 logic cells per layer; the whole trainer of the default
64-16-10 MLP (with its MAC, update engine, softmax unit and shuffler) packs into about
4,100 iCE40 logic cells.

Lanes. Every weight row is stored in ``lanes`` banks (weight ``(i, j)`` in bank
``j % lanes`` at ``i * wpr + j // lanes``, ``wpr = ceil(cols / lanes)``: the layout of
:mod:`lnsmadam.golden.image`; padding is ZERO and stays ZERO), and so are the activation
vectors. The forward pass and the update then take ``lanes`` weights per cycle (one
:class:`~lnsmadam.hw.mac.LNSMAC` of ``lanes`` lanes and ``lanes``
update engines); the backward pass reads columns, one weight per cycle. The accumulator is
required to be exact for the longest dot product (``MACConfig.exact_acc_bits``), so the
lane grouping cannot change a result.

Timing, per training sample of a ``n_0 - n_1 - ... - n_L`` MLP with ``c_l = n_l + 1``
columns: about ``n_0 + 1 + sum_l n_{l+1} * ceil(c_l / lanes)`` (forward)
``+ sum_{l>=1} n_l * n_{l+1}`` (backward) ``+ sum_l n_{l+1} * ceil(c_l / lanes)`` (update)
cycles, plus ~10-20 cycles of pipeline drain per phase and the softmax unit's ~300 cycles
(``bench/trainer_cycles.py`` measures it).

The host reaches everything through :data:`~lnsmadam.hw.bus.MemBus` (only while idle) and
:data:`~lnsmadam.hw.bus.ControlSignature`; the region map is ``docs/protocol.md`` §7 and
:meth:`lnsmadam.golden.soc.SoCConfig.regions`.

Files, one concept each, in the order :meth:`~.top.Trainer.elaborate` builds them:
:mod:`~.geometry` (sizes and memory layout from the :class:`SoCConfig`), :mod:`~.layers`
(the layer register and its selections), :mod:`~.memories`, :mod:`~.registers` (host-visible
and runtime), :mod:`~.sequencer` (run control, status, the phase FSM), :mod:`~.counters`
(streaming address counters), :mod:`~.datapath` (the wiring between memories and units),
:mod:`~.bus_port` (host access) and :mod:`~.top` (the component). The blocks build into the
trainer's one module, so they add no hierarchy to the generated Verilog.
"""

from .top import Trainer

__all__ = ["Trainer"]
