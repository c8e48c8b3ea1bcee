"""Reading the first trajectory format (version 1: a ``torch.save`` pickle of dve_teach 0.1).

`Trajectory.load` refuses those files, since unpickling runs whatever code a file holds. This is
the explicit, trusted-only way to rewrite one in the current format (`persistence`).
"""
from __future__ import annotations

import torch

from ..data.container import Data
from .persistence import FORMAT, PathLike, save_trajectory
from .optim import SGD
from .schedule import Schedule
from .trajectory import Trajectory

__all__ = ["convert_legacy_trajectory"]


def convert_legacy_trajectory(src: PathLike, dst: PathLike, *, trusted: bool = False) -> None:
    """Rewrite a version-1 file (a ``torch.save`` pickle of dve_teach 0.1) in the current format.

    Unpickling runs whatever code the file holds, so this needs ``trusted=True``: use it only on a
    file you made yourself or got from someone you trust. The new file loads safely everywhere.
    """
    if trusted is not True:
        raise PermissionError("convert_legacy_trajectory unpickles the file, which runs any code in it; "
                              "call it with trusted=True only for a file whose origin you trust")
    state = torch.load(str(src), weights_only=False)  # the explicit, trusted-only opt-in
    if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("version") != 1:
        raise ValueError(f"{src} is not a version-1 dve-teach trajectory file")
    traj = Trajectory(state["model"], Data(*state["data"]),
                      Schedule(state["batches"], state["batch_size"], state["n"]), state["lrs"],
                      SGD(weight_decay=state["weight_decay"]), state["loss"], state["checkpoints"],
                      state["batch_losses"], state["checkpoint_every"])
    save_trajectory(traj, dst)
