"""The tiny causal transformer and the sequence loss (issue 13), against oracles: the per-sequence
loss is the explicit mean of per-position cross-entropies, the model is causal, vmapped per-example
gradients equal autograd's one sequence at a time, Hessian-vector products equal the dense Hessian
(jacrev of grad), and a run saves, loads (rebuilt from its spec) and replays bitwise."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import dve_teach as dt
from dve_teach.training.functional import FlatModel, Objective


def tiny(seed=0, context=6):
    return dt.models.char_transformer(11, d_model=8, n_heads=2, n_layers=1, context=context, seed=seed)


def tokens(n, L=6, V=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, V, (n, L + 1), generator=g)
    return dt.Data(X[:, :-1].contiguous(), X[:, 1:].contiguous())


def test_sequence_loss_is_the_mean_over_positions():
    model, d = tiny(), tokens(5)
    obj = Objective(FlatModel(model), "cross_entropy")
    got = obj.losses(obj.flat.flatten(), d.X, d.y)
    out = model(d.X)
    want = torch.stack([torch.stack([F.cross_entropy(out[i, l], d.y[i, l]) for l in range(6)]).mean()
                        for i in range(5)])
    assert torch.allclose(got, want, rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match=r"next-token labels of shape \[5, 6\]"):
        dt.functional.cross_entropy(out, d.y[:, :3])


def test_causal_and_deterministic():
    model, d = tiny(), tokens(3)
    X2 = d.X.clone()
    X2[:, 4] = (X2[:, 4] + 1) % 11
    a, b = model(d.X), model(X2)
    assert torch.equal(a[:, :4], b[:, :4]) and not torch.allclose(a[:, 4:], b[:, 4:])
    assert torch.equal(tiny(seed=3).head.weight, tiny(seed=3).head.weight)
    assert not torch.equal(tiny(seed=3).head.weight, tiny(seed=4).head.weight)


def test_per_example_gradients_and_hvp_match_autograd():
    model, d = tiny(), tokens(4)
    obj = Objective(FlatModel(model), "cross_entropy")
    theta = obj.flat.flatten()
    G = obj.per_sample_grads(theta, d.X, d.y)
    for i in range(4):
        model.zero_grad()
        F.cross_entropy(model(d.X[i:i + 1])[0], d.y[i]).backward()
        want = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        assert torch.allclose(G[i], want, rtol=1e-10, atol=1e-13)
    # oracle: plain autograd's dense Hessian (torch.func.hessian is wrong through nn.LayerNorm in torch 2.13)
    H = torch.autograd.functional.hessian(lambda th: obj.losses(th, d.X, d.y).sum() / 4, theta)
    assert torch.allclose(H, H.T, atol=1e-12)
    V = torch.randn(3, theta.numel(), dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(obj.hvp(theta, d.X, d.y, 4, V), V @ H, rtol=1e-9, atol=1e-12)


def test_spec_shapes_bounds_and_round_trip(tmp_path):
    for sizes in [(11, 8, 2, 1, 6), (75, 48, 4, 2, 32), (5, 12, 3, 3, 4)]:
        m = dt.models.char_transformer(*sizes)
        spec = dt.models.model_spec(m)
        assert dt.models.spec_param_shapes(spec) == [(n, list(p.shape)) for n, p in m.named_parameters()]
        assert [n for n, _ in dt.models.build_model(spec).named_parameters()] == [n for n, _ in m.named_parameters()]
    with pytest.raises(ValueError, match="multiple of n_heads"):
        dt.models.char_transformer(11, d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="bound"):
        dt.models.spec_param_shapes({"kind": "char_transformer", "vocab": 10 ** 9, "d_model": 8, "n_heads": 2,
                                     "n_layers": 1, "context": 6})
    d = tokens(12)
    traj = dt.train(tiny(), d, dt.Schedule.shuffled(12, 4, epochs=2, seed=0), 0.01, optimizer="adamw")
    traj.save(tmp_path / "run.dvt")
    back = dt.Trajectory.load(tmp_path / "run.dvt")
    assert type(back.model) is dt.models.CharTransformer
    assert all(torch.equal(back.checkpoints[t], traj.checkpoints[t]) for t in traj.checkpoints)
    assert torch.equal(back.predict(d.X), traj.predict(d.X))


def test_tied_weights_refused_and_sampled_fisher_refused_for_sequences():
    m = tiny()
    m.head.weight = m.tok.weight
    with pytest.raises(TypeError, match="tied weights"):
        dt.train(m, tokens(8), dt.Schedule.shuffled(8, 4), 0.01)
    traj = dt.train(tiny(), tokens(8), dt.Schedule.shuffled(8, 4), 0.01)
    with pytest.raises(ValueError, match="sequences.*hessian='fisher'"):
        dt.DataValueEmbedding(hessian="sampled_fisher").fit(traj)
    bad = dt.Data(tokens(8).X, tokens(8).y.clone().fill_(11))
    with pytest.raises(ValueError, match="outside 0..10"):
        dt.train(tiny(), bad, dt.Schedule.shuffled(8, 4), 0.01)


def test_influence_function_exact_equals_cg_through_layer_norm():
    """The dense Hessian of the exact solver (jacrev of the gradient) agrees with the cg solver's
    Hessian-vector products on a model with LayerNorm (torch.func.hessian would not)."""
    d = tokens(10)
    traj = dt.train(tiny(), d, dt.Schedule.shuffled(10, 5, epochs=2, seed=0), 0.05)
    a = dt.influence_function(traj, tokens(2, seed=5), damping=1.0, solver="exact")
    b = dt.influence_function(traj, tokens(2, seed=5), damping=1.0, solver="cg", tol=1e-12)
    assert torch.allclose(a, b, rtol=1e-7, atol=1e-12)


def test_ggn_embeddings_on_sequences_equal_explicit_products():
    """hessian='ggn' factors the per-sequence loss in all L·V outputs: the embeddings equal explicit
    Jacobian products with H̃ = (1/b) Σ J_iᵀ H_out,i J_i (the state-recursion tests' oracle)."""
    from test_state_recursion import explicit_embeddings
    d, test = tokens(8), tokens(2, seed=4)
    traj = dt.train(tiny(), d, dt.Schedule.shuffled(8, 4, epochs=1, seed=0), 0.05, optimizer="adam")
    want = explicit_embeddings(traj, hessian="ggn") @ traj.objective.measure_grads(traj.final, test).T
    got = dt.DataValueEmbedding(hessian="ggn").fit(traj).influence(test).per_occurrence
    assert torch.allclose(got, want, rtol=1e-8, atol=1e-14)
