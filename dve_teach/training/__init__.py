"""Layer 2 of 5, **training**: recorded SGD runs.

`Schedule` (the ordered batches), `functional` (a module as a function of a flat parameter vector,
losses and measures), `train` (`loop`), `Trajectory` (θ_t, batches, η_t, λ of one run, and the
update rule it used, from `optim`: plain SGD, momentum, Adam, AdamW), `replay` (the one loop that
steps a run or many replays of it, and the divergence rule), `persistence` (its code-free file format), `stages` (multi-stage runs, `train_stages`), `orders` (many orders of the same
data trained at once) and `lr` (learning-rate schedules).
Imports only from the data layer.
"""
from . import functional, lr, optim, orders, stages
from .loop import LR, Stage, resolve_lrs, train, train_stages
from .legacy import convert_legacy_trajectory
from .persistence import DamagedFileError
from .schedule import Schedule
from .trajectory import Trajectory, removal_directions, sgd_update

__all__ = ["Schedule", "train", "train_stages", "Stage", "stages", "resolve_lrs", "LR", "Trajectory", "sgd_update", "removal_directions",
           "functional", "orders", "lr", "optim", "DamagedFileError", "convert_legacy_trajectory"]
