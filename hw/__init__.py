"""Hardware generator: the Amaranth components of the LNS training datapath.

This part holds the synthesizable Amaranth (``amaranth``) elaboratables -- number
format converters, multiply/accumulate units, the Madam weight-update unit, memories
and the control that sequences a training step -- parameterised by the same format
descriptions as :mod:`lnsmadam.golden`, against which every component is checked
bit-exactly.
"""
