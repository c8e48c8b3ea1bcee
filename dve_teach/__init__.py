"""dve-teach: trajectory-specific leave-one-out influence and data value embeddings.

Wang, Song, Zou, Mittal, Jia, "Capturing the Temporal Dependence of Training Data Influence",
ICLR 2025. Import as ``import dve_teach as dt``.

The package is five layers, each a folder, and imports flow one way only
(``tests/test_layers.py`` checks it)::

    data  ←  training  ←  influence  ←  teach  ←  cli

This file only re-exports the public names. The teaching layer (``dve_teach.teach.plots`` and
``.widgets``) needs the ``lessons`` extra and is loaded on first use: ``from dve_teach import
plots, widgets`` works, and so does ``from dve_teach.widgets import ReorderExplorer``.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from typing import Any

__version__ = "0.1.0"

from .data import Data, Split, as_data, config, datasets, models
from .influence import (DataValueEmbedding, Influence, OrderPredictor, counterfactual, curation, exact_loo,
                        exact_order_change, explain, grad_dot, influence_function, metrics, phases, predict_order,
                        sgd_influence, tracin, unrolled_influence)
from .training import (DamagedFileError, Schedule, Stage, Trajectory, convert_legacy_trajectory, functional, lr, optim,
                       orders, train, train_stages)

__all__ = [
    "Data", "Split", "as_data", "Schedule", "train", "train_stages", "Stage", "Trajectory", "Influence",
    "exact_loo", "sgd_influence", "unrolled_influence", "predict_order", "exact_order_change", "OrderPredictor", "DataValueEmbedding", "tracin", "grad_dot", "influence_function",
    "datasets", "models", "metrics", "orders", "counterfactual", "explain", "config", "functional",
    "lr", "optim", "phases", "curation", "convert_legacy_trajectory", "DamagedFileError", "__version__",
]

#: Paths coursework may use, each the module at its home (the same object, not a copy): the flat
#: layout before the layers (``from dve_teach.loo import exact_loo``) and the teaching layer's
#: modules (``from dve_teach.widgets import ReorderExplorer``, ``from dve_teach.reorder import
#: ReorderModel``, ``dt.plots``). One mechanism serves them all: `_AliasFinder` on import, and
#: `__getattr__` on attribute access; nothing is loaded before it is asked for (the teaching modules
#: import matplotlib and ipywidgets).
ALIASES = {"datasets": "data.datasets", "models": "data.models", "config": "data.config",
           "schedule": "training.schedule", "functional": "training.functional",
           "trajectory": "training.trajectory", "orders": "training.orders", "loo": "influence.loo",
           "counterfactual": "influence.counterfactual", "unroll": "influence.unroll",
           "embedding": "influence.embedding", "projection": "influence.projection",
           "baselines": "influence.baselines", "metrics": "influence.metrics", "explain": "influence.explain",
           "plots": "teach.plots", "widgets": "teach.widgets", "explorers": "teach.explorers",
           "reorder": "teach.reorder"}


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import dve_teach.<alias>`` gives the module at its home (see `ALIASES`)."""

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, name = fullname.rpartition(".")
        if prefix != __name__ or name not in ALIASES:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):
        return importlib.import_module(f"{__name__}.{ALIASES[spec.name.rpartition('.')[2]]}")

    def exec_module(self, module):
        pass


if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
    sys.meta_path.append(_AliasFinder())


def __getattr__(name: str) -> Any:
    if name in ALIASES:
        module = importlib.import_module(f"{__name__}.{ALIASES[name]}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'dve_teach' has no attribute {name!r}")
