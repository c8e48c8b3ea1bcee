"""dve-teach: trajectory-specific leave-one-out influence and data value embeddings.

Wang, Song, Zou, Mittal, Jia, "Capturing the Temporal Dependence of Training Data Influence",
ICLR 2025. Import as ``import dve_teach as dt``. The widgets (``dve_teach.widgets``) and plots
(``dve_teach.plots``) need the ``lessons`` extra and are imported on their own.
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import config, counterfactual, datasets, explain, metrics, models, orders
from .baselines import grad_dot, influence_function, tracin
from .data import Data, Split, as_data
from .embedding import DataValueEmbedding
from .influence import Influence
from .loo import exact_loo
from .schedule import Schedule
from .training import train
from .trajectory import Trajectory
from .unroll import sgd_influence

__all__ = [
    "Data", "Split", "as_data", "Schedule", "train", "Trajectory", "Influence",
    "exact_loo", "sgd_influence", "DataValueEmbedding", "tracin", "grad_dot", "influence_function",
    "datasets", "models", "metrics", "orders", "counterfactual", "explain", "config", "__version__",
]
