"""jaxpde's experiments, installed with the package as ``jaxpde_experiments``.

One module per experiment, each following `jaxpde.experiment.Experiment` (a frozen ``Config``
dataclass and ``run(config, out_dir) -> results``); ``jaxpde list`` reads their docstrings
without importing them, ``jaxpde run NAME`` imports one.
"""
