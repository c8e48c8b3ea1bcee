"""Layer 1 of 5, **data**: what is trained on, and with which model.

`Data` / `Split` (containers), `datasets` (offline data: scikit-learn's digits, generated 2-D
sets, least squares), `models` (small MLPs and linear models) and `config` (fast mode and sizes).
Imports nothing from the other layers: data ← training ← influence ← teach ← cli.
"""
from . import config, datasets, models
from .container import Data, DataLike, Split, as_data

__all__ = ["Data", "DataLike", "Split", "as_data", "config", "datasets", "models"]
