"""train / Trajectory against a hand-written autograd SGD loop; checkpoints, persistence, errors."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dve_teach as dt

TOL = dict(atol=1e-12, rtol=0.0)


def hand_sgd(model, data, schedule, lrs, weight_decay, loss):
    """θ_t for t = 0..T of θ ← θ − η_t ((1/b) Σ ∇ℓ + λθ), with plain autograd on a module copy."""
    net = copy.deepcopy(model)
    flat = lambda: torch.cat([q.detach().reshape(-1) for q in net.parameters()]).clone()  # noqa: E731
    thetas = [flat()]
    for t, batch in enumerate(schedule.batches):
        idx = torch.tensor(batch)
        out = net(data.X[idx])
        per = (F.cross_entropy(out, data.y[idx], reduction="none") if loss == "cross_entropy"
               else ((out - data.y[idx]) ** 2).mean(1))
        net.zero_grad()
        (per.sum() / schedule.batch_size).backward()
        with torch.no_grad():
            for q in net.parameters():
                q -= lrs[t] * (q.grad + weight_decay * q)
        thetas.append(flat())
    return torch.stack(thetas)


def all_params(traj):
    return torch.stack([traj.params(t) for t in range(traj.T + 1)])


# ---- the recorded run is plain SGD ---------------------------------------------------------
@pytest.mark.parametrize("fixture", ["blobs_mlp", "linear_lsq"])
def test_train_matches_hand_sgd_with_weight_decay(fixture, request):
    p = request.getfixturevalue(fixture)
    traj = dt.train(p.model, p.train, p.schedule, p.lr, loss=p.loss, weight_decay=0.03)
    want = hand_sgd(p.model, p.train, p.schedule, [p.lr] * len(p.schedule), 0.03, p.loss)
    torch.testing.assert_close(all_params(traj), want, **TOL)
    assert (want[-1] - want[0]).abs().max() > 1e-3  # training moved
    assert torch.equal(traj.final, traj.params(-1)) and traj.T == len(p.schedule)
    # the stored module holds θ_T; the user's model is untouched
    torch.testing.assert_close(traj.flat.flatten(), want[-1], **TOL)
    torch.testing.assert_close(dt.functional.FlatModel(p.model).flatten(), want[0], atol=0, rtol=0)
    # recorded batch losses are the mean loss at θ_t before each step
    t = 3
    idx = list(p.schedule.batches[t])
    bl = traj.objective.losses(traj.params(t), p.train.X[idx], p.train.y[idx]).mean()
    assert float(traj.batch_losses[t]) == pytest.approx(float(bl), abs=1e-14)
    torch.testing.assert_close(traj.predict(p.test.X), traj.model_at()(p.test.X).detach(), **TOL)


def test_lr_float_list_callable(blobs_mlp):
    p = blobs_mlp
    T = len(p.schedule)
    fn = lambda t: 0.5 / (1 + t)  # noqa: E731
    by_fn = dt.train(p.model, p.train, p.schedule, fn)
    by_list = dt.train(p.model, p.train, p.schedule, [fn(t) for t in range(T)])
    assert torch.equal(by_fn.lrs, torch.tensor([fn(t) for t in range(T)], dtype=torch.float64))
    torch.testing.assert_close(all_params(by_fn), all_params(by_list), atol=0, rtol=0)
    want = hand_sgd(p.model, p.train, p.schedule, [fn(t) for t in range(T)], 0.0, p.loss)
    torch.testing.assert_close(all_params(by_list), want, **TOL)
    const = dt.train(p.model, p.train, p.schedule, 0.2)
    torch.testing.assert_close(all_params(const), all_params(dt.train(p.model, p.train, p.schedule, [0.2] * T)),
                               atol=0, rtol=0)
    with pytest.raises(ValueError, match=f"lr has 3 values but the schedule has {T} steps"):
        dt.train(p.model, p.train, p.schedule, [0.1] * 3)
    with pytest.raises(ValueError, match="learning rate at step 2 is -0.1"):
        dt.train(p.model, p.train, p.schedule, lambda t: -0.1 if t == 2 else 0.1)
    with pytest.raises(ValueError, match="finite"):
        dt.train(p.model, p.train, p.schedule, float("nan"))


def test_custom_loss_callable_equals_named(linear_lsq):
    p = linear_lsq

    def sq(out, y):
        return ((out - y) ** 2).mean(1)

    a = dt.train(p.model, p.train, p.schedule, p.lr, loss=sq, weight_decay=p.weight_decay)
    torch.testing.assert_close(all_params(a), all_params(p.traj), **TOL)
    with pytest.raises(ValueError, match="one value per example"):
        dt.train(p.model, p.train, p.schedule, p.lr, loss=lambda out, y: ((out - y) ** 2).mean())
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        dt.train(p.model, p.train, p.schedule, p.lr, loss="hinge")


# ---- checkpoints -----------------------------------------------------------------------------
@pytest.mark.parametrize("k", [3, 100])
def test_checkpoint_every_replays_identically(blobs_mlp, k):
    p = blobs_mlp
    sparse = dt.train(p.model, p.train, p.schedule, p.lr, checkpoint_every=k)
    full = p.traj
    assert sorted(sparse.checkpoints) == sorted({t for t in range(0, full.T + 1, k)} | {full.T})
    for t in range(full.T + 1):
        assert torch.equal(sparse.params(t), full.params(t)), t
    for rev in (False, True):
        got = list(sparse.iter_params(reverse=rev))
        want = list(full.iter_params(reverse=rev))
        order = list(range(full.T))[::-1] if rev else list(range(full.T))
        assert [t for t, _ in got] == [t for t, _ in want] == order
        assert all(torch.equal(a, b) for (_, a), (_, b) in zip(got, want))
        for start, stop in [(2, 5), (0, 1), (4, 4), (1, full.T)]:   # a range of steps
            part = list(sparse.iter_params(reverse=rev, start=start, stop=stop))
            steps = list(range(start, stop))[::-1] if rev else list(range(start, stop))
            assert [t for t, _ in part] == steps
            assert all(torch.equal(a, full.params(t)) for t, a in part)
    with pytest.raises(IndexError, match="out of range"):
        sparse.params(full.T + 1)
    with pytest.raises(IndexError, match="out of range"):
        list(sparse.iter_params(start=3, stop=2))
    with pytest.raises(ValueError, match="checkpoint_every must be >= 1"):
        dt.train(p.model, p.train, p.schedule, p.lr, checkpoint_every=0)


# ---- persistence -------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3])
def test_save_load_round_trip(blobs_mlp, tmp_path, k):
    p = blobs_mlp
    traj = dt.train(p.model, p.train, p.schedule, p.lr, checkpoint_every=k, weight_decay=0.01)
    path = tmp_path / "run.pt"
    traj.save(path)
    back = dt.Trajectory.load(path)
    assert torch.equal(back.final, traj.final)
    assert torch.equal(back.test_losses(p.test), traj.test_losses(p.test))
    assert back.schedule == traj.schedule and torch.equal(back.lrs, traj.lrs)
    assert back.weight_decay == 0.01 and back.checkpoint_every == k
    assert all(torch.equal(back.params(t), traj.params(t)) for t in range(traj.T + 1))
    torch.testing.assert_close(dt.exact_loo(back, p.test, [0, 1]), dt.exact_loo(traj, p.test, [0, 1]), **TOL)


# ---- errors ------------------------------------------------------------------------------
def test_divergence_names_step_and_suggests_smaller_lr(linear_lsq):
    p = linear_lsq
    # step 0's loss is finite but θ_1 ~ 1e200: the parameters grew without bound at step 0
    with pytest.raises(FloatingPointError, match=r"diverged at step 0\b.*max \|θ_1\|.*smaller lr"):
        dt.train(p.model, p.train, p.schedule, 1e200, loss=p.loss)


@pytest.mark.parametrize("layer", [nn.BatchNorm1d(4), nn.Dropout(0.1)])
def test_unsupported_layers(blobs_mlp, layer):
    model = nn.Sequential(nn.Linear(2, 4), layer, nn.Linear(4, 3)).double()
    with pytest.raises(TypeError, match=f"unsupported layer.*{type(layer).__name__}"):
        dt.train(model, blobs_mlp.train, blobs_mlp.schedule, 0.1)


class _Counting(nn.Module):
    """A Linear that counts its forward passes in a buffer (state a replay would not carry)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 3).double()
        self.register_buffer("calls", torch.zeros(1, dtype=torch.float64))

    def forward(self, x):
        if self.training:
            self.calls += 1
        return self.lin(x) * self.scale if hasattr(self, "scale") else self.lin(x)


def test_buffers_constant_allowed_changing_or_running_refused(blobs_mlp):
    const = nn.Linear(2, 3).double()
    const.register_buffer("scale", torch.ones(1))          # never changes: replays exactly
    traj = dt.train(const, blobs_mlp.train, blobs_mlp.schedule, 0.1)
    bare = copy.deepcopy(const)
    del bare._buffers["scale"]
    plain = dt.train(bare, blobs_mlp.train, blobs_mlp.schedule, 0.1)
    assert torch.equal(traj.final, plain.final)
    counting = _Counting()
    with pytest.raises(TypeError, match="buffer calls changes in a forward pass"):
        dt.train(counting, blobs_mlp.train, blobs_mlp.schedule, 0.1)
    assert float(counting.calls) == 0.0                      # the model given is left as it was
    norm = nn.Sequential(nn.Linear(2, 4), nn.InstanceNorm1d(4, track_running_stats=True), nn.Linear(4, 3)).double()
    with pytest.raises(TypeError, match="running statistics"):
        dt.train(norm, blobs_mlp.train, blobs_mlp.schedule, 0.1)


def test_schedule_and_data_errors(blobs_mlp):
    p = blobs_mlp
    with pytest.raises(ValueError, match="indexes 20 points but the data has 30"):
        dt.train(p.model, p.train, dt.Schedule.shuffled(20, 8), 0.1)
    with pytest.raises(TypeError, match="dt.Schedule"):
        dt.train(p.model, p.train, [[0, 1]], 0.1)
    with pytest.raises(ValueError, match="X has 30 examples but y has 29"):
        dt.Data(p.train.X, p.train.y[:29])
    with pytest.raises(ValueError, match="X has 30 examples but y has 29"):
        dt.train(p.model, (p.train.X, p.train.y[:29]), p.schedule, 0.1)
    with pytest.raises(TypeError, match="Split"):
        dt.train(p.model, dt.datasets.blobs(30, 5), p.schedule, 0.1)
    with pytest.raises(TypeError, match="floating"):
        dt.train(p.model, p.train, p.schedule, 0.1, dtype=torch.int64)
    with pytest.raises(ValueError, match="weight_decay"):
        dt.train(p.model, p.train, p.schedule, 0.1, weight_decay=-1.0)


def test_test_data_checks(blobs_mlp):
    traj = blobs_mlp.traj
    with pytest.raises(ValueError, match="feature shape"):
        traj.test_losses((torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, dtype=torch.int64)))
    with pytest.raises(TypeError, match="float32"):
        traj.test_losses((torch.zeros(2, 2), torch.zeros(2, dtype=torch.int64)))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_cuda_requested_without_cuda(blobs_mlp):
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        dt.train(blobs_mlp.model, blobs_mlp.train, blobs_mlp.schedule, 0.1, device="cuda")


# ---- GPU ---------------------------------------------------------------------------------
@pytest.mark.gpu
def test_gpu_train_and_exact_loo_match_cpu(blobs_mlp):
    p = blobs_mlp
    cuda = dt.train(p.model, p.train, p.schedule, p.lr, device="cuda", weight_decay=0.01)
    cpu = dt.train(p.model, p.train, p.schedule, p.lr, weight_decay=0.01)
    assert cuda.device.type == "cuda" and cuda.final.device.type == "cuda"
    torch.testing.assert_close(cuda.final.cpu(), cpu.final, atol=1e-10, rtol=0)
    pts, sts = cpu.schedule.occurrence_pairs()
    pts, sts = pts[::4], sts[::4]
    for steps in (sts, None):
        got = dt.exact_loo(cuda, p.test.to("cuda"), pts, steps)
        assert got.device.type == "cuda"
        torch.testing.assert_close(got.cpu(), dt.exact_loo(cpu, p.test, pts, steps), atol=1e-10, rtol=0)


@pytest.mark.gpu
def test_gpu_mixed_devices_refused(blobs_mlp):
    p = blobs_mlp
    cuda = dt.train(p.model, p.train, p.schedule, p.lr, device="cuda")
    with pytest.raises(ValueError, match="mixed devices"):
        dt.exact_loo(cuda, p.test, [0])
    with pytest.raises(ValueError, match="mixed devices"):
        cuda.test_losses(p.test)
    with pytest.raises(ValueError, match="X is on cpu but y on cuda"):
        dt.Data(p.train.X, p.train.y.to("cuda"))
