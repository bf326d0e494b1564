"""Command-line interface: the ``lnsmadam`` console script.

This part holds the click command group (:mod:`lnsmadam.cli.main`) and one module per
subcommand; subcommand modules are imported only when that subcommand is listed or run,
so ``lnsmadam --help`` stays fast and one broken subcommand does not break the others.
"""
