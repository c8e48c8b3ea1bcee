"""Update rules (dt.optim) against torch.optim, the one replay loop, and runs of every rule saved and
loaded. Oracle: a plain PyTorch training loop with torch.optim.SGD / Adam / AdamW on the same batches."""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt

from test_persistence import rewrite

RULES = {
    "sgd": (lambda: dt.optim.SGD(weight_decay=0.01), lambda p: torch.optim.SGD(p, lr=1.0, weight_decay=0.01)),
    "momentum": (lambda: dt.optim.SGD(momentum=0.9, weight_decay=0.01),
                 lambda p: torch.optim.SGD(p, lr=1.0, momentum=0.9, weight_decay=0.01)),
    "dampened": (lambda: dt.optim.SGD(momentum=0.8, dampening=0.3),
                 lambda p: torch.optim.SGD(p, lr=1.0, momentum=0.8, dampening=0.3)),
    "nesterov": (lambda: dt.optim.SGD(momentum=0.7, nesterov=True, weight_decay=0.02),
                 lambda p: torch.optim.SGD(p, lr=1.0, momentum=0.7, nesterov=True, weight_decay=0.02)),
    "adam": (lambda: dt.optim.Adam(betas=(0.8, 0.95), weight_decay=0.01),
             lambda p: torch.optim.Adam(p, lr=1.0, betas=(0.8, 0.95), weight_decay=0.01)),
    "adamw": (lambda: dt.optim.AdamW(), lambda p: torch.optim.AdamW(p, lr=1.0)),
}


def torch_loop(model, data, schedule, lrs, make_opt, loss_fn):
    """The oracle: an ordinary PyTorch loop; returns θ_t for t = 0..T as Tensor[T+1, P]."""
    import copy
    net = copy.deepcopy(model).double()
    opt = make_opt(net.parameters())
    flat = lambda: torch.cat([p.detach().reshape(-1) for p in net.parameters()]).clone()  # noqa: E731
    out = [flat()]
    b = schedule.batch_size
    for t, batch in enumerate(schedule.batches):
        for group in opt.param_groups:
            group["lr"] = float(lrs[t])
        opt.zero_grad()
        idx = torch.as_tensor(batch)
        (loss_fn(net(data.X[idx]), data.y[idx]).sum() / b).backward()
        opt.step()
        out.append(flat())
    return torch.stack(out)


@pytest.mark.parametrize("name", sorted(RULES))
def test_rules_match_torch_optim(blobs_mlp, name):
    p = blobs_mlp
    ours, theirs = RULES[name]
    lrs = [0.05 * (1 + 0.5 * torch.cos(torch.tensor(t / 3.0)).item()) for t in range(len(p.schedule))]
    if name in ("adam", "adamw"):
        lrs = [v / 10 for v in lrs]
    traj = dt.train(p.model, p.train, p.schedule, lrs, optimizer=ours())
    ref = torch_loop(p.model, p.train, p.schedule, lrs, theirs,
                     lambda o, y: torch.nn.functional.cross_entropy(o, y, reduction="none"))
    got = torch.stack([traj.params(t) for t in range(traj.T + 1)])
    assert torch.allclose(got, ref, rtol=1e-12, atol=1e-14), float((got - ref).abs().max())
    assert not torch.equal(ref[-1], ref[0])


def test_state_holds_the_rule_buffers(blobs_mlp):
    p = blobs_mlp
    P = p.traj.flat.P
    for rule, k in ((dt.optim.SGD(), 1), (dt.optim.SGD(momentum=0.9), 2), (dt.optim.Adam(), 3)):
        traj = dt.train(p.model, p.train, p.schedule, 0.01, optimizer=rule, checkpoint_every=3)
        assert traj.state(5).shape == (k * P,) and traj.params(5).shape == (P,)
        assert torch.equal(traj.params(5), traj.state(5)[:P])
        every = dt.train(p.model, p.train, p.schedule, 0.01, optimizer=rule)   # every state stored
        assert torch.equal(traj.state(5), every.state(5))                      # replayed from checkpoint 3
        assert torch.equal(dict(traj.iter_states())[5], every.state(5))
        if k == 3:   # v is a running mean of squared gradients: never negative, and not all zero
            v = traj.state(traj.T)[2 * P:]
            assert bool((v >= 0).all()) and float(v.max()) > 0


def test_default_and_sgd_rule_are_the_same_run(blobs_mlp):
    p = blobs_mlp
    a = dt.train(p.model, p.train, p.schedule, p.lr, weight_decay=0.01)
    b = dt.train(p.model, p.train, p.schedule, p.lr, optimizer=dt.optim.SGD(weight_decay=0.01))
    assert torch.equal(a.final, b.final) and a.optimizer == b.optimizer
    assert a.weight_decay == 0.01


def test_bad_optimizer_arguments_are_named():
    with pytest.raises(ValueError, match="momentum"):
        dt.optim.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="nesterov"):
        dt.optim.SGD(nesterov=True)
    with pytest.raises(TypeError, match="betas"):
        dt.optim.Adam(betas=0.9)
    with pytest.raises(ValueError, match="eps"):
        dt.optim.Adam(eps=0)
    with pytest.raises(ValueError, match="betas\\[1\\]"):
        dt.optim.AdamW(betas=(0.9, 1.0))


def test_train_refuses_ambiguous_or_foreign_optimizers(blobs_mlp):
    p = blobs_mlp
    with pytest.raises(ValueError, match="set it on the rule"):
        dt.train(p.model, p.train, p.schedule, 0.1, weight_decay=0.1, optimizer=dt.optim.Adam())
    with pytest.raises(TypeError, match="not a torch.optim optimizer"):
        dt.train(p.model, p.train, p.schedule, 0.1, optimizer=torch.optim.Adam)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        dt.train(p.model, p.train, p.schedule, 0.1, optimizer="rmsprop")


def test_adam_terms_stay_finite_where_a_gradient_is_always_zero():
    """A coordinate that never gets a gradient (an unused input) has v = 0: its step and its
    derivative are 0, not NaN (the √v trap)."""
    split = dt.datasets.blobs(n_train=20, n_test=5, seed=0)
    X = torch.cat([split.train.X, torch.zeros(20, 1, dtype=split.train.X.dtype)], 1)   # a dead input
    model = dt.models.mlp((3, 4, 3), seed=0)
    traj = dt.train(model, (X, split.train.y), dt.Schedule.shuffled(20, 5, epochs=1, seed=0), 0.01,
                    optimizer="adam")
    rule, s = traj.optimizer, traj.state(2)
    g = traj.engine.grad(s, 2, *traj.batch(2)[1:])
    J = torch.func.jacrev(lambda state: rule.step(state, g, 0.01, 2))(s)
    assert bool(torch.isfinite(J).all())
    dead = traj.flat.slices[0].start + 2   # weight of input 2 into hidden unit 0
    assert float(traj.params(traj.T)[dead] - traj.params(0)[dead]) == 0.0


def test_orders_and_selection_follow_the_rule(blobs_mlp):
    p = blobs_mlp
    rule = dt.optim.AdamW(weight_decay=0.05)
    scheds = [dt.Schedule.shuffled(30, 8, epochs=2, seed=s) for s in range(3)]
    many = dt.orders.train_orders(p.model, p.train, scheds, 0.01, optimizer=rule)
    for r, s in enumerate(scheds):
        one = dt.train(p.model, p.train, s, 0.01, optimizer=rule).final
        assert torch.allclose(many[r], one, rtol=1e-10, atol=1e-12)
    sel = dt.curation.select_and_train(p.model, p.train, p.test, p.schedule, 0.01, ratio=1, optimizer=rule)
    assert torch.equal(sel.trajectory.final, dt.train(p.model, p.train, p.schedule, 0.01, optimizer=rule).final)


def test_divergence_is_one_rule_for_every_loop(blobs_mlp):
    p = blobs_mlp
    with pytest.raises(FloatingPointError, match="training diverged at step"):
        dt.train(p.model, p.train, p.schedule, 1e6, optimizer=dt.optim.SGD(momentum=0.9))
    with pytest.raises(FloatingPointError, match="order 0 diverged at step"):
        dt.orders.train_orders(p.model, p.train, [p.schedule], 1e6, optimizer=dt.optim.SGD(momentum=0.9))
    with pytest.raises(FloatingPointError, match="training diverged at step"):
        dt.curation.select_and_train(p.model, p.train, p.test, p.schedule, 1e6, ratio=1, optimizer=dt.optim.SGD(momentum=0.9))


# ---- saved runs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("rule", [dt.optim.SGD(momentum=0.9, nesterov=True), dt.optim.Adam(eps=1e-6),
                                  dt.optim.AdamW(betas=(0.8, 0.9), weight_decay=0.1)], ids=repr)
def test_round_trip_keeps_the_rule_and_its_state(blobs_mlp, tmp_path, rule):
    p = blobs_mlp
    traj = dt.train(p.model, p.train, p.schedule, 0.01, optimizer=rule, checkpoint_every=3)
    traj.save(tmp_path / "run.dvt")
    back = dt.Trajectory.load(tmp_path / "run.dvt")
    assert back.optimizer == rule and back.weight_decay == rule.weight_decay
    for t in range(traj.T + 1):
        assert torch.equal(back.state(t), traj.state(t))
    assert torch.equal(dt.exact_loo(back, p.test, [3]), dt.exact_loo(traj, p.test, [3]))


def test_version_2_files_still_load(blobs_mlp, tmp_path):
    """A version-2 file (plain SGD, "optimizer": "sgd", checkpoints θ_t) loads as an SGD run."""
    p = blobs_mlp
    traj = dt.train(p.model, p.train, p.schedule, p.lr, weight_decay=0.02)
    traj.save(tmp_path / "v3.dvt")

    def as_v2(m):
        m["version"], m["optimizer"] = 2, "sgd"
    old = rewrite(tmp_path / "v3.dvt", tmp_path / "v2.dvt", edit_meta=as_v2)
    back = dt.Trajectory.load(old)
    assert back.optimizer == dt.optim.SGD(weight_decay=0.02)
    assert torch.equal(back.final, traj.final)

    def adam_in_v2(m):
        m["version"], m["optimizer"] = 2, "adam"
    with pytest.raises(dt.DamagedFileError, match="version-2 file"):
        dt.Trajectory.load(rewrite(tmp_path / "v3.dvt", tmp_path / "bad.dvt", edit_meta=adam_in_v2))


def test_edited_optimizer_fields_are_refused(blobs_mlp, tmp_path):
    p = blobs_mlp
    traj = dt.train(p.model, p.train, p.schedule, 0.01, optimizer=dt.optim.Adam(), checkpoint_every=2)
    traj.save(tmp_path / "run.dvt")
    src, out = tmp_path / "run.dvt", tmp_path / "edit.dvt"
    with pytest.raises(dt.DamagedFileError, match="not a dt.optim rule"):
        dt.Trajectory.load(rewrite(src, out, edit_meta=lambda m: m.__setitem__("optimizer", {"name": "evil"})))
    with pytest.raises(dt.DamagedFileError, match="not a dt.optim rule"):
        dt.Trajectory.load(rewrite(src, out, edit_meta=lambda m: m["optimizer"].__setitem__("eps", "1e-8")))
    with pytest.raises(dt.DamagedFileError, match="differs from the optimizer"):
        dt.Trajectory.load(rewrite(src, out, edit_meta=lambda m: m.__setitem__("weight_decay", 0.5)))
    with pytest.raises(dt.DamagedFileError, match="state vector"):    # an SGD-sized checkpoint in an Adam run
        P = traj.flat.P
        dt.Trajectory.load(rewrite(src, out, edit_tensors=lambda t: t.__setitem__("checkpoint.2", t["checkpoint.2"][:P])))
    with pytest.raises(ValueError, match="does not replay"):          # another β₁ changes the replayed state
        dt.Trajectory.load(rewrite(src, out, edit_meta=lambda m: m["optimizer"].__setitem__("betas", [0.5, 0.999])))
