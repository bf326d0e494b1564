"""Formal proofs of the hardware blocks (SymbiYosys with solvers from PyPI).

* :mod:`.sby`: a :class:`~.sby.Job` (harness, mode, depth, solver) and :func:`~.sby.run_job`;
* :mod:`.harness`: the common part of every harness (free inputs, named properties,
  probes of internal signals, stream rules, pipeline tokens);
* :mod:`.mac`, :mod:`.update`, :mod:`.softmax`, :mod:`.shuffle`, :mod:`.link`,
  :mod:`.trainer`: one harness per block;
* :mod:`.jobs`: which harness at which configuration (``lnsmadam prove``), the CI set and
  the injected bugs (:mod:`.mutants`) that must fail.

``docs/verification.md`` lists every property with its depth and induction status.
"""
