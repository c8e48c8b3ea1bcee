"""Multi-stage runs (issue 13) against oracles, on a very small char transformer (d = 8, 2 heads,
1 layer, context 6, 12 sequences per stage, float64): the recorded run and exact LOO of a stage-1
point equal a hand-written two-stage torch.optim loop (fresh optimizer at the boundary); the
first-order sweep equals explicit products of Jacobians built from each stage's own rule, with the
boundary as ∂ρ/∂s (θ passed, buffers dropped); embeddings equal explicit Fisher-Jacobian products
and their segments compose across the boundary; TracIn and grad-dot follow their definitions; a
run saves and loads bitwise and an edited stage field is refused."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch.func import jacrev

import dve_teach as dt
from dve_teach.training.linearize import removal_deltas
from test_char_transformer import tiny, tokens
from test_hostile_files import forge
from test_state_recursion import explicit_embeddings

B = 4
CONFIGS = {  # (stage-1 rule, its torch.optim twin), (stage-2 rule, twin)
    "adamw-adamw": ((dt.optim.AdamW(weight_decay=0.01), lambda p, lr: torch.optim.AdamW(p, lr, weight_decay=0.01)),
                    (dt.optim.AdamW(weight_decay=0.1), lambda p, lr: torch.optim.AdamW(p, lr, weight_decay=0.1))),
    "adamw-momentum": ((dt.optim.AdamW(), lambda p, lr: torch.optim.AdamW(p, lr)),
                       (dt.optim.SGD(momentum=0.9, weight_decay=0.01),
                        lambda p, lr: torch.optim.SGD(p, lr, momentum=0.9, weight_decay=0.01))),
}
LR1 = [0.01 * (k + 1) / 3 if k < 3 else 0.01 for k in range(6)]   # warm-up, then flat
LR2 = 0.005


def setup(config):
    (r1, _), (r2, _) = CONFIGS[config]
    d1, d2, test = tokens(12, seed=1), tokens(12, seed=2), tokens(3, seed=3)
    s1, s2 = dt.Schedule.shuffled(12, B, epochs=2, seed=0), dt.Schedule.shuffled(12, B, epochs=2, seed=1)
    stages = [dt.Stage(d1, s1, LR1, r1, "plays"), dt.Stage(d2, s2, LR2, r2, "sonnets")]
    return dt.train_stages(tiny(), stages), stages, test


def torch_loop(config, stages, drop=None):
    """θ_T of the two stages run with torch.optim (a fresh optimizer per stage); `drop` = a global
    index whose weight is 0 wherever it occurs (the divisor stays b)."""
    model, offset = tiny(), 0
    for (_, make), st in zip(CONFIGS[config], stages):
        lrs = dt.training.resolve_lrs(st.lr, len(st.schedule))
        opt = make(model.parameters(), float(lrs[0]))
        for t, batch in enumerate(st.schedule.batches):
            for grp in opt.param_groups:
                grp["lr"] = float(lrs[t])
            idx = torch.tensor(batch)
            w = torch.tensor([0.0 if offset + i == drop else 1.0 for i in batch], dtype=torch.float64)
            out = model(st.data.X[idx])
            losses = F.cross_entropy(out.transpose(1, 2), st.data.y[idx], reduction="none").mean(1)
            opt.zero_grad()
            ((w * losses).sum() / B).backward()
            opt.step()
        offset += len(st.data)
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_layout_of_a_staged_run():
    traj, stages, _ = setup("adamw-momentum")
    pre, fine = traj.stages
    assert (pre.name, pre.steps, pre.points) == ("plays", range(0, 6), range(0, 12))
    assert (fine.name, fine.steps, fine.points) == ("sonnets", range(6, 12), range(12, 24))
    assert traj.stage_of_point(15) == (1, 3)
    assert traj.schedule.batches[7] == tuple(12 + i for i in stages[1].schedule.batches[1])
    assert torch.equal(traj.data.X[12:], stages[1].data.X)
    assert traj.checkpoints[0].shape[0] == 3 * traj.flat.P      # laid out for the larger rule (AdamW)
    assert not bool(traj.checkpoints[traj.T][2 * traj.flat.P:].any())   # v dropped at the boundary


@pytest.mark.parametrize("config", list(CONFIGS))
def test_run_and_exact_loo_equal_a_hand_written_torch_optim_loop(config):
    traj, stages, test = setup(config)
    assert torch.allclose(traj.final, torch_loop(config, stages), rtol=0, atol=1e-12)
    m = lambda th: traj.objective.losses(th, test.X, test.y)  # noqa: E731
    for point in (2, 17):   # a stage-1 point replays through both stages; a stage-2 one through stage 2
        want = m(torch_loop(config, stages, drop=point)) - m(traj.final)
        got = dt.exact_loo(traj, test, [point])[0]
        assert torch.allclose(got, want, rtol=1e-9, atol=1e-13)


def boundary_aware_jacobian(traj, t):
    """J_t from step t's *own* stage rule (not the staged one): at a stage's first step (k > 0) the
    rule acts on ρ(s) = (θ, 0, …), so J = ∂F/∂s(ρ(s)) · diag(I, 0, …, 0)."""
    st = next(k for k, x in enumerate(traj.stages) if t in x.steps)
    info = traj.stages[st]
    rule, u, P, S = info.rule, t - info.steps.start, traj.flat.P, traj.checkpoints[0].shape[0]
    _, X, y = traj.batch(t)
    w, b = torch.ones(len(X), dtype=traj.dtype), torch.tensor(float(B), dtype=traj.dtype)
    s = traj.state(t)
    own = s[:rule.k * P].clone()
    if u == 0 and st > 0:
        own[P:] = 0.0
    Jo = jacrev(lambda z: rule.step(z, traj.objective.batch_grad(z[:P], X, y, w, b), float(traj.lrs[t]), u))(own)
    J = torch.zeros(S, S, dtype=traj.dtype)
    J[:rule.k * P, :rule.k * P] = Jo
    if u == 0 and st > 0:
        J[:, P:] = 0.0                       # ∂ρ/∂s: the old buffers reach nothing
    return J


def test_unrolled_equals_explicit_jacobian_products_across_the_boundary():
    traj, _, test = setup("adamw-momentum")
    P, S = traj.flat.P, traj.checkpoints[0].shape[0]
    U = torch.zeros(len(test), S, dtype=traj.dtype)
    U[:, :P] = traj.objective.measure_grads(traj.final, test)
    rows = [None] * traj.T
    for t in range(traj.T - 1, -1, -1):
        _, X, y = traj.batch(t)
        G = traj.objective.per_sample_grads(traj.params(t), X, y)
        rows[t] = removal_deltas(traj.optimizer, traj.state(t), G, float(traj.lrs[t]), t, B) @ U.T
        U = U @ boundary_aware_jacobian(traj, t)
    got = dt.unrolled_influence(traj, test).per_occurrence
    assert torch.allclose(got, torch.cat(rows), rtol=1e-9, atol=1e-14)
    by_step = dt.unrolled_influence(traj, test).by_step()
    assert by_step.shape[0] == traj.T


def test_embeddings_equal_explicit_products_and_segments_compose():
    traj, _, test = setup("adamw-adamw")
    want = explicit_embeddings(traj) @ traj.objective.measure_grads(traj.final, test).T
    R = torch.linalg.qr(torch.randn(traj.flat.P, 40, dtype=torch.float64,
                                    generator=torch.Generator().manual_seed(0)))[0].T
    for segments in (1, [6], [4, 9]):   # a cut at the boundary, and cuts inside each stage
        dve = dt.DataValueEmbedding(segments=segments).fit(traj)
        assert torch.allclose(dve.influence(test).per_occurrence, want, rtol=1e-8, atol=1e-13)
    proj = dt.DataValueEmbedding(projection=R).fit(traj)
    assert torch.allclose(proj.embeddings_, dve.embeddings_ @ R.T, rtol=1e-8, atol=1e-13)


def test_tracin_grad_dot_and_sgd_proxy_span_the_stages():
    traj, _, test = setup("adamw-momentum")
    tr, gd = dt.tracin(traj, test).per_occurrence, dt.grad_dot(traj, test).per_occurrence
    uT = traj.objective.measure_grads(traj.final, test)
    row = 0
    for t in range(traj.T):
        _, X, y = traj.batch(t)
        theta, scale = traj.params(t), float(traj.lrs[t]) / B
        ut = traj.objective.measure_grads(theta, test)
        for i in range(len(X)):
            g = traj.objective.per_sample_grads(theta, X[i:i + 1], y[i:i + 1])[0]
            assert torch.allclose(tr[row], scale * ut @ g, rtol=1e-10, atol=1e-15)
            assert torch.allclose(gd[row], scale * uT @ g, rtol=1e-10, atol=1e-15)
            row += 1
    proxy = dt.DataValueEmbedding(optimizer="sgd_proxy").fit(traj).influence(test)
    assert proxy.per_occurrence.shape == tr.shape and bool(torch.isfinite(proxy.per_occurrence).all())


def test_save_load_bitwise_and_edited_stage_fields_refused(tmp_path):
    traj, _, test = setup("adamw-momentum")
    traj.save(tmp_path / "run.dvt")
    back = dt.Trajectory.load(tmp_path / "run.dvt")
    from safetensors import safe_open
    with safe_open(str(tmp_path / "run.dvt"), "pt") as f:
        assert json.loads(f.metadata()["dve_teach"])["version"] == 4      # written for staged runs only
    assert back.optimizer == traj.optimizer and back.stages == traj.stages
    assert all(torch.equal(back.checkpoints[t], traj.checkpoints[t]) for t in traj.checkpoints)
    assert torch.equal(dt.unrolled_influence(back, test).per_occurrence, dt.unrolled_influence(traj, test).per_occurrence)

    def edit(key, value, stage=1):
        def f(meta):
            meta["optimizer"]["stages"][stage][key] = value
        return f
    edits = {"start": edit("start", 5), "first_index": edit("first_index", 11),
             "rule": edit("rule", dt.optim.SGD(momentum=0.5, weight_decay=0.01).spec()),
             "name": edit("name", {"x": 1}), "n": lambda meta: meta["optimizer"].update(n=25),
             "weight_decay": lambda meta: meta.update(weight_decay=0.0),
             "version": lambda meta: meta.update(version=3)}
    for what, f in edits.items():
        out = forge(tmp_path / "run.dvt", tmp_path / f"{what}.dvt", edit_meta=f)
        with pytest.raises(ValueError):
            dt.Trajectory.load(out)


def test_bad_stages_refused_with_the_fix():
    d1, d2 = tokens(12, seed=1), tokens(8, seed=2)
    s1 = dt.Schedule.shuffled(12, 4)
    with pytest.raises(ValueError, match="share the nominal batch size"):
        dt.train_stages(tiny(), [dt.Stage(d1, s1, 0.01), dt.Stage(d2, dt.Schedule.shuffled(8, 2), 0.01)])
    with pytest.raises(ValueError, match="n=8"):
        dt.train_stages(tiny(), [dt.Stage(d1, s1, 0.01), dt.Stage(d2, s1, 0.01)])
    with pytest.raises(TypeError, match="dt.Stage"):
        dt.train_stages(tiny(), [(d1, s1, 0.01)])
    with pytest.raises(ValueError, match="make them alike"):
        dt.train_stages(tiny(), [dt.Stage(d1, s1, 0.01), dt.Stage(tokens(12, L=5), s1, 0.01)])
    traj, _, test = setup("adamw-adamw")
    with pytest.raises(ValueError, match="frozen_preconditioner"):
        dt.DataValueEmbedding(optimizer="frozen_preconditioner").fit(traj)
    with pytest.raises(NotImplementedError, match="unrolled_influence"):
        dt.sgd_influence(traj, test)
    with pytest.raises(NotImplementedError, match="stages"):
        dt.influence_function(traj, test)
