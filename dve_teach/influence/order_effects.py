"""Predict what an edited training order does to the final model, without retraining (issue: the
order slider answers at once; exact replay confirms).

A new schedule B'_0..B'_{T−1} over the same points, step count and nominal batch size b changes the
batch gradient of step t, at the recorded θ_t, by

    Δg_t = (1/b) (Σ_{j∈B'_t} ∇ℓ(θ_t, z_j) − Σ_{j∈B_t} ∇ℓ(θ_t, z_j))        (zero-weight divisor b)

and, to first order, the final measure by

    Δm ≈ Σ_t a_t · Δg_t,     a_t = [∇m(θ_T), 0] J_{T−1} ··· J_{t+1} ∂F_t/∂g   Tensor[n_test, P],

F_t the update rule (`dve_teach.training.optim`), J_k the state Jacobians (`unroll`). a_t is the
sensitivity of the final measure to step t's batch gradient: one reverse sweep computes it for every
t (`OrderPredictor.fit`); each candidate edit then costs the gradients of the points that change
batch and a dot product. Removing point i from step t is the term −(1/b) a_t · g_i (the linearised
form of `unrolled_influence`'s score); inserting it at step t is +(1/b) a_t · g_i(θ_t) — so moving i
from t₁ to t₂ is predicted as c_{t₂} − c_{t₁} with the insertion curve c_t = (1/b) a_t · ∇ℓ(θ_t, z_i)
("where should this point go?", `OrderPredictor.insertion_curve`). For plain SGD ∂F/∂g = −η_t I.

``method="embedding"`` takes the same terms from the data value embedding recursion instead
(`state_recursion`): a_t's exact Hessians are replaced by the chosen curvature (Fisher by default),
and each changed (point, step) gets an embedding, exact in its own step's rule. Approximations of
both: first order (the edits interact: a point inserted at t₂ sees the θ that the removal at t₁
already moved), and gradients taken along the recorded run.

`exact_order_change` replays the new order exactly (the oracle).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch.func import vjp, vmap

from ..data.checks import as_flag, as_int
from ..data.container import DataLike
from ..training.functional import Measure
from ..training.linearize import step_vjp
from ..training.loop import train
from ..training.schedule import Schedule
from ..training.trajectory import Trajectory

__all__ = ["OrderPredictor", "predict_order", "exact_order_change", "schedule_changes"]


def _check_schedule(traj: Trajectory, schedule: Schedule) -> Schedule:
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a dt.Schedule over the same points (e.g. traj.schedule.move(i, t1, t2)), "
                        f"got {type(schedule).__name__}")
    ref = traj.schedule
    if schedule.n != ref.n or len(schedule) != len(ref) or schedule.batch_size != ref.batch_size:
        raise ValueError(f"the new schedule must have the recorded run's n = {ref.n}, T = {len(ref)} steps and batch "
                         f"size b = {ref.batch_size} (got n = {schedule.n}, T = {len(schedule)}, b = "
                         f"{schedule.batch_size}); build it by editing traj.schedule (move, swap, from_batches)")
    return schedule


def schedule_changes(old: Schedule, new: Schedule) -> list[tuple[int, list[int], list[int]]]:
    """(t, points removed from step t, points inserted at step t) for every step whose batch differs."""
    out = []
    for t, (a, b) in enumerate(zip(old.batches, new.batches)):
        if set(a) != set(b):
            out.append((t, sorted(set(a) - set(b)), sorted(set(b) - set(a))))
    return out


class OrderPredictor:
    """First-order effects of order edits on a recorded run (module docstring).

    ``OrderPredictor(traj, test, measure=None, mean=False).fit()`` runs one reverse sweep and keeps a_t
    for every step (memory T × n_test × P numbers; ``mean=True`` predicts the change of the mean
    measure over the test points instead: one row, T × P numbers). Then ``predict(schedule)`` -> Tensor[n_test] and ``insertion_curve(point)`` ->
    Tensor[T, n_test], each a few per-sample gradients and dot products.
    """

    def __init__(self, traj: Trajectory, test: DataLike, measure: Optional[Measure] = None, mean: bool = False):
        if not isinstance(traj, Trajectory):
            raise TypeError("OrderPredictor needs a dt.Trajectory (the result of dt.train)")
        self.traj, self.test, self.measure = traj, traj.check_data(test), measure
        self.mean = as_flag(mean, "mean")

    def fit(self) -> "OrderPredictor":
        """The reverse sweep: a_t = U_{t+1} ∂F_t/∂g for t = T−1..0, U_T = [∇m(θ_T), 0], U_t = U_{t+1} J_t."""
        traj, obj, rule, b = self.traj, self.traj.objective, self.traj.optimizer, self.traj.batch_size
        Ut = obj.measure_grads(traj.final, self.test, self.measure)
        if self.mean:
            Ut = Ut.mean(0, keepdim=True)
        U = torch.zeros(Ut.shape[0], traj.checkpoints[0].shape[0], dtype=Ut.dtype, device=Ut.device)
        U[:, :Ut.shape[1]] = Ut
        A: list = [None] * traj.T
        for t, s in traj.iter_states(reverse=True):
            _, X, y = traj.batch(t)
            lr = float(traj.lrs[t])
            g = traj.engine.grad(s, t, X, y)
            _, pull = vjp(lambda gr: rule.step(s, gr, lr, t), g)
            A[t] = vmap(pull)(U)[0].detach() if U.shape[0] else U[:, :g.shape[0]]
            if t > 0 and U.shape[0]:
                U = step_vjp(obj, rule, s, X, y, lr, t, b, U)
        self.sensitivities_ = torch.stack(A)               # [T, n_test, P]
        return self

    def _grads(self, points: list[int], t: int) -> torch.Tensor:
        traj = self.traj
        idx = torch.as_tensor(points, dtype=torch.int64, device=traj.device)
        return traj.objective.per_sample_grads(traj.params(t), traj.data.X[idx], traj.data.y[idx]).detach()

    def predict(self, schedule: Schedule) -> torch.Tensor:
        """Predicted measure(new order) − measure(recorded order), Tensor[n_test] (positive: the edit
        raises the test loss)."""
        if not hasattr(self, "sensitivities_"):
            raise RuntimeError("this OrderPredictor is not fitted yet: call .fit() first")
        schedule = _check_schedule(self.traj, schedule)
        out = torch.zeros(self.sensitivities_.shape[1], dtype=self.traj.dtype, device=self.traj.device)
        b = self.traj.batch_size
        for t, removed, inserted in schedule_changes(self.traj.schedule, schedule):
            G = self._grads(removed + inserted, t)
            sign = torch.cat([-torch.ones(len(removed)), torch.ones(len(inserted))]).to(G)
            out += self.sensitivities_[t] @ (sign @ G) / b
        return out

    def insertion_curve(self, point: int) -> torch.Tensor:
        """c_t = (1/b) a_t · ∇ℓ(θ_t, z_point) for every step t: Tensor[T, n_test] — the predicted change
        of the measure if the point were added to step t's batch (moving it from t₁ to t₂: c_{t₂} − c_{t₁})."""
        if not hasattr(self, "sensitivities_"):
            raise RuntimeError("this OrderPredictor is not fitted yet: call .fit() first")
        point = as_int(point, "point")
        if not 0 <= point < self.traj.schedule.n:
            raise IndexError(f"point {point} is outside the training set [0, {self.traj.schedule.n})")
        rows = [self.sensitivities_[t] @ self._grads([point], t)[0] for t in range(self.traj.T)]
        return torch.stack(rows) / self.traj.batch_size


def predict_order(traj: Trajectory, test: DataLike, schedule: Schedule, method: str = "unrolled", *,
                  measure: Optional[Measure] = None, dve=None) -> torch.Tensor:
    """Predicted measure(run along `schedule`) − measure(recorded run) per test point, Tensor[n_test],
    without retraining (module docstring). schedule: the same points, step count and b (edit
    ``traj.schedule`` with ``move``, ``swap``, ...). method: ``"unrolled"`` (exact Hessians, one
    reverse sweep; `OrderPredictor` keeps it for many edits) or ``"embedding"`` (the data value
    embedding recursion's curvature; `dve` = a `DataValueEmbedding` whose settings to use, default
    the Fisher one)."""
    if method == "unrolled":
        return OrderPredictor(traj, test, measure).fit().predict(schedule)
    if method != "embedding":
        raise ValueError(f"method must be 'unrolled' or 'embedding', got {method!r}")
    from .embedding import DataValueEmbedding
    from .projection_factory import build_projection
    from .state_recursion import run_state_recursion
    schedule = _check_schedule(traj, schedule)
    dve = dve if dve is not None else DataValueEmbedding()
    if not isinstance(dve, DataValueEmbedding):
        raise TypeError(f"dve must be a dt.DataValueEmbedding (its settings are used), got {type(dve).__name__}")
    if dve.optimizer not in ("recorded", "frozen_preconditioner"):
        raise ValueError(f"predict_order(method='embedding') follows the run's own update rule: give a dve with "
                         f"optimizer='recorded' or 'frozen_preconditioner', not {dve.optimizer!r}")
    frozen = dve.optimizer == "frozen_preconditioner"
    if frozen and traj.optimizer.name not in ("adam", "adamw"):
        raise ValueError(f"optimizer='frozen_preconditioner' holds Adam's v constant, but this run used "
                         f"{traj.optimizer!r}: use optimizer='recorded'")
    data = traj.check_data(test)
    proj = build_projection(traj, dve.proj_dim, dve.projection, dve.layerwise, dve.seed, dve.pca_samples,
                            dve.pca_step)
    changes = {t: rem + ins for t, rem, ins in schedule_changes(traj.schedule, schedule)}
    signs = {t: [-1.0] * len(rem) + [1.0] * len(ins) for t, rem, ins in schedule_changes(traj.schedule, schedule)}
    rule, b = traj.optimizer, traj.batch_size
    total = torch.zeros(proj.dim, dtype=traj.dtype, device=traj.device)

    def probe(t, s, g, Q, v_grad):   # the whole step's change, exact in its own rule, carried by Q
        nonlocal total
        if t in changes:
            idx = torch.as_tensor(changes[t], dtype=torch.int64, device=traj.device)
            G = traj.objective.per_sample_grads(rule.theta(s), traj.data.X[idx], traj.data.y[idx]).detach()
            dg = torch.as_tensor(signs[t], dtype=G.dtype, device=G.device) @ G / b
            kw = {} if v_grad is None else {"v_grad": v_grad}
            lr = float(traj.lrs[t])
            total = total + Q @ (rule.update(s, g + dg, lr, t, **kw) - rule.update(s, g, lr, t, **kw))
    run_state_recursion(traj, proj, dve.hessian, layerwise=dve.layerwise, frozen=frozen,
                        fisher_samples=dve.fisher_samples, seed=dve.seed, probe=probe)
    grads = proj.project(traj.objective.measure_grads(traj.final, data, measure))
    return grads @ total


def exact_order_change(traj: Trajectory, test: DataLike, schedule: Schedule, *,
                       measure: Optional[Measure] = None) -> torch.Tensor:
    """measure(run retrained along `schedule`) − measure(recorded run), Tensor[n_test]: the exact
    answer `predict_order` estimates (same θ_0, η_t, update rule, loss)."""
    schedule = _check_schedule(traj, schedule)
    data = traj.check_data(test)
    new = train(traj.model_at(0), traj.data, schedule, traj.lrs, loss=traj.loss, optimizer=traj.optimizer,
                device=traj.device, dtype=traj.dtype)
    f = traj.objective.measure_fn(measure)
    with torch.no_grad():
        return f(new.final, data) - f(traj.final, data)
