"""dve-teach: trajectory-specific leave-one-out influence and data value embeddings.

Wang, Song, Zou, Mittal, Jia, "Capturing the Temporal Dependence of Training Data Influence",
ICLR 2025. Import as ``import dve_teach as dt``.
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import config, datasets, models
from .data import Data, Split, as_data
from .influence import Influence
from .schedule import Schedule
from .training import train
from .trajectory import Trajectory

__all__ = ["Data", "Split", "as_data", "Influence", "Schedule", "Trajectory", "train",
           "datasets", "models", "config", "__version__"]
