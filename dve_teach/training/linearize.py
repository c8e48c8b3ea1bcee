"""What the estimators need of an update rule, derived from its one definition with torch.func.

A step is s_{t+1} = F_t(s_t, g_t(θ_t)) (`dve_teach.training.optim`), g_t the batch gradient
(1/b) Σ_{j∈B_t} ∇ℓ(θ_t, z_j). Nothing here is written per rule:

- `removal_deltas`: δ_{i,t} = s'_{t+1} − s_{t+1} when member i of the batch is dropped at step t,
  exact (both runs share s_t): F_t(s_t, g'_i) − F_t(s_t, g_t), with g'_i = g_t − g_i/b (zero-weight)
  or (Σ_j g_j − g_i)/(m − 1) (renormalized). For plain SGD it is (η/b) g_i
  (`trajectory.removal_directions`, the closed form the tests hold it to).
- `step_vjp`: U J_t for rows U [n, S], J_t = ∂s_{t+1}/∂s_t = ∂F/∂s + ∂F/∂g · H_t · E (E picks θ out
  of s, H_t the Hessian of the batch loss): a vjp of F plus one Hessian-vector product per row.
  For plain SGD: U − η(U H + λU).
- `rule_partials`: ∂F/∂s and ∂F/∂g as per-coordinate blocks (F acts on each coordinate of θ
  separately): A [k, k, P] with A[l, j, p] = ∂F_l[p]/∂s_j[p], and C [k, P] with C[l, p] = ∂F_l[p]/∂g[p]
  (k pieces of the state; jvps along all-ones directions), for the embedding recursion.
- `step_jacobian`: the explicit J_t [S, S] (``jacrev``; tiny models, `dve_teach.influence.explain`).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch.func import jacrev, jvp, vjp, vmap

from .functional import Objective
from .optim import UpdateRule

__all__ = ["removal_deltas", "step_vjp", "rule_partials", "step_jacobian", "batch_gradient"]


def batch_gradient(G: torch.Tensor, b: int) -> torch.Tensor:
    """g_t = (1/b) Σ_j g_j from per-sample gradients G [m, P]."""
    return G.sum(0) / b


def removal_deltas(rule: UpdateRule, s: torch.Tensor, G: torch.Tensor, lr: float, t: int, b: int,
                   renormalize: bool = False, v_grad: Optional[torch.Tensor] = None) -> torch.Tensor:
    """δ_i = F(s, g'_i) − F(s, g) for every member i of the batch: Tensor[m, S] (module docstring).

    G: per-sample gradients [m, P] at θ_t; s: the state s_t [S]. Computed as a difference of
    updates (not of new states), so it keeps full relative precision. ``v_grad``: as in
    `rule_partials` (Adam's second moment fed a fixed gradient)."""
    m = G.shape[0]
    S = G.sum(0, keepdim=True)
    if renormalize:
        if m < 2:
            raise ValueError("renormalize=True cannot remove the only point of a batch (divisor 0); "
                             "use renormalize=False")
        g_new = (S - G) / (m - 1)
    else:
        g_new = S / b - G / b
    g = (S / b).expand_as(G)
    s_rows = s.expand(m, -1)
    kw = {} if v_grad is None else {"v_grad": v_grad}
    return rule.update(s_rows, g_new, lr, t, **kw) - rule.update(s_rows, g, lr, t, **kw)


def step_vjp(objective: Objective, rule: UpdateRule, s: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
             lr: float, t: int, b: int, U: torch.Tensor) -> torch.Tensor:
    """U J_t for rows U [n, S] (module docstring): [n, S]."""
    P = s.shape[0] // rule.k
    theta = s[:P]
    w = torch.ones(X.shape[0], dtype=s.dtype, device=s.device)
    g = objective.batch_grad(theta, X, y, w, torch.as_tensor(float(b), dtype=s.dtype, device=s.device)).detach()
    _, pull = vjp(lambda st, gr: rule.step(st, gr, lr, t), s, g)
    Us, Ug = vmap(pull)(U)                           # U ∂F/∂s [n, S], U ∂F/∂g [n, P]
    HUg = objective.hvp(theta, X, y, b, Ug)          # rows (H Ugᵀ)ᵀ = Ug H (H symmetric)
    out = Us.clone()
    out[:, :P] += HUg
    return out


def rule_partials(rule: UpdateRule, s: torch.Tensor, g: torch.Tensor, lr: float, t: int,
                  v_grad: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(A [k, k, P], C [k, P]): the per-coordinate blocks of ∂F/∂s and ∂F/∂g at (s, g).

    ``v_grad`` (Adam only) feeds the second-moment estimate a fixed gradient, so v does not react
    to g (the frozen-preconditioner variant)."""
    k, P = rule.k, g.shape[-1]
    kw = {} if v_grad is None else {"v_grad": v_grad}
    f = lambda st, gr: rule.step(st, gr, lr, t, **kw)  # noqa: E731
    cols = []
    for j in range(k):
        e = torch.zeros_like(s)
        e[j * P:(j + 1) * P] = 1.0
        cols.append(jvp(lambda st: f(st, g), (s,), (e,))[1].reshape(k, P))    # column j: ∂F_l/∂s_j
    A = torch.stack(cols, dim=1)                                                 # [l, j, P]
    C = jvp(lambda gr: f(s, gr), (g,), (torch.ones_like(g),))[1].reshape(k, P)
    return A, C


def step_jacobian(objective: Objective, rule: UpdateRule, s: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
                  lr: float, t: int, b: int) -> torch.Tensor:
    """J_t = ds_{t+1}/ds_t [S, S], through the gradient's dependence on θ (exact Hessian)."""
    P = s.shape[0] // rule.k
    w = torch.ones(X.shape[0], dtype=s.dtype, device=s.device)
    d = torch.as_tensor(float(b), dtype=s.dtype, device=s.device)
    return jacrev(lambda st: rule.step(st, objective.batch_grad(st[:P], X, y, w, d), lr, t))(s).detach()
