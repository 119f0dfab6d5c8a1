"""Multi-task learning without Spark: masked losses, architectures, loss weightings, the training loop on shards."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from wanderlens.config import TrainingConfig
from wanderlens.errors import ConfigError
from wanderlens.mtl.architectures import ARCHITECTURES, build_network
from wanderlens.mtl.data import FEATURES, read_shard
from wanderlens.mtl.local import LocalMultiTaskModel
from wanderlens.mtl.metrics import auc
from wanderlens.mtl.tasks import TaskSpec
from wanderlens.mtl.trainer import Ranks, TrainingRun, compute_losses, load_state, run_training, setup
from wanderlens.mtl.weighting import WEIGHTINGS, build_weighting

TASKS = [
    TaskSpec("highlight", "binary"),
    TaskSpec("scene", "multiclass", classes=["beach", "city", "mountain"]),
    TaskSpec("attributes", "multilabel", classes=["water", "people", "boats"]),
    TaskSpec("rating", "regression"),
]
DIM = 10


def synthetic(n: int, seed: int, missing: float = 0.3) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Features and learnable targets for TASKS; each label missing with probability `missing`."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    ys = [
        (x[:, 0] + x[:, 1] > 0).astype(np.float32),
        np.argmax(x[:, 2:5], axis=1).astype(np.int64),
        (x[:, 5:8] > 0).astype(np.float32),
        (2 * x[:, 8] - x[:, 9]).astype(np.float32),
    ]
    ms = [(rng.random(n) > missing).astype(np.float32) for _ in TASKS]
    return x, ys, ms


def write_table(path, x, ys, ms) -> None:
    """The Parquet layout `wanderlens.mtl.data.encode` writes (null = missing label)."""
    cols = {FEATURES: pa.array(list(x), pa.list_(pa.float32()))}
    for t, y, m in zip(TASKS, ys, ms, strict=True):
        keep = m > 0
        if t.type == "multilabel":
            vals = [None if not k else [float(i) for i in np.flatnonzero(r)] for r, k in zip(y, keep, strict=True)]
            cols[t.name] = pa.array(vals, pa.list_(pa.float64()))
        else:
            cols[t.name] = pa.array([float(v) if k else None for v, k in zip(y, keep, strict=True)], pa.float64())
    path.mkdir(parents=True)
    table = pa.table(cols)
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), path / "part-00000.parquet")
    pq.write_table(table.slice(half), path / "part-00001.parquet")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("mtl-shards")
    write_table(root / "train", *synthetic(1200, 1))
    write_table(root / "val", *synthetic(400, 2))
    test = synthetic(600, 3, missing=0.0)
    return root, test


ARCH = {"name": "mmoe", "expert_hidden": [32], "tower_hidden": [16], "num_experts": 3, "num_shared_experts": 1,
        "num_levels": 2, "dropout": 0.0}


def training_run(root, arch: str = "mmoe", **training) -> TrainingRun:
    """A run on the module's shards: small MMoE-sized networks, 6 epochs, lr 0.01, seed 3 unless overridden."""
    settings = {"learning_rate": 0.01, "epochs": 6, "batch_size": 64, "seed": 3, **training}
    return TrainingRun(tasks=[t.to_dict() for t in TASKS], arch={**ARCH, "name": arch},
                       training=TrainingConfig(**settings), input_dim=DIM, train_path=str(root / "train"),
                       val_path=str(root / "val"))


def test_task_spec_declarations_and_errors():
    tasks = TaskSpec.from_labels({"scene": {"type": "multiclass", "classes": ["a", "b"]},
                                  "highlight": {"type": "binary"}})
    assert [(t.name, t.type, t.label_col, t.classes) for t in tasks] == [
        ("scene", "multiclass", "scene", ["a", "b"]), ("highlight", "binary", "highlight", [0, 1])]
    with pytest.raises(ConfigError, match="unknown task type 'ordinal'"):
        TaskSpec("x", "ordinal")
    with pytest.raises(ConfigError, match="weight"):
        TaskSpec("x", "binary", weight=-1)


def test_masking_is_exact():
    """A task's loss and gradients come only from rows labelled for it; label-less rows add nothing."""
    torch.manual_seed(0)
    net = build_network({"name": "mmoe", "expert_hidden": [8], "tower_hidden": [4], "num_experts": 2},
                        DIM, [t.num_outputs for t in TASKS]).double()
    x, ys, ms = synthetic(32, 5, missing=0.5)
    ms[0][:4] = 1.0
    ms[0][4:8] = 0.0
    for m in ms:
        m[-3:] = 0.0  # the last three rows carry no label at all
    xt = torch.from_numpy(x).double().requires_grad_(True)
    yts = [torch.from_numpy(y).double() if y.dtype == np.float32 else torch.from_numpy(y) for y in ys]
    mts = [torch.from_numpy(m) for m in ms]
    cws = [None] * 4
    losses, counts = compute_losses(TASKS, net(xt), yts, mts, cws)
    assert counts.tolist() == [float(m.sum()) for m in ms]

    # Only the rows labelled for task 0, alone in their batch: same loss, same parameter gradients.
    keep = ms[0] > 0
    sub_losses, _ = compute_losses(TASKS, net(xt[keep]), [y[keep] for y in yts], [m[keep] for m in mts], cws)
    g_full = torch.autograd.grad(losses[0], list(net.parameters()), retain_graph=True, allow_unused=True)
    g_sub = torch.autograd.grad(sub_losses[0], list(net.parameters()), allow_unused=True)
    torch.testing.assert_close(losses[0], sub_losses[0], rtol=1e-12, atol=0)
    for a, b in zip(g_full, g_sub, strict=True):
        if a is None:
            assert b is None
        else:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-15)

    # Rows with a null label for task 0 receive exactly zero gradient from task 0's loss.
    (gx,) = torch.autograd.grad(losses[0], xt, retain_graph=True)
    assert torch.all(gx[~torch.from_numpy(keep)] == 0)
    assert torch.any(gx[torch.from_numpy(keep)] != 0)
    # Rows without any label contribute nothing to the combined loss.
    total = build_weighting("uncertainty", 4).double().combine(losses, counts > 0)
    (gx_all,) = torch.autograd.grad(total, xt)
    assert torch.all(gx_all[-3:] == 0)


def test_batch_without_labels_for_a_task_gives_zero_loss():
    net = build_network({"name": "shared_bottom", "expert_hidden": [8], "tower_hidden": []}, DIM,
                        [t.num_outputs for t in TASKS])
    x, ys, ms = synthetic(16, 6)
    ms[1][:] = 0.0
    losses, counts = compute_losses(TASKS, net(torch.from_numpy(x)), [torch.from_numpy(y) for y in ys],
                                    [torch.from_numpy(m) for m in ms], [None] * 4)
    assert counts[1] == 0 and losses[1] == 0 and losses[0] > 0


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_architectures_output_one_head_per_task(arch):
    net = build_network({"name": arch, "expert_hidden": [8, 6], "tower_hidden": [4], "num_levels": 2}, DIM,
                        [1, 3, 3, 1])
    outs = net(torch.zeros(5, DIM))
    assert [tuple(o.shape) for o in outs] == [(5, 1), (5, 3), (5, 3), (5, 1)]
    assert net.shared_parameters() and all(p.requires_grad for p in net.shared_parameters())


def test_linear_head_adds_a_linear_map_of_the_inputs_and_round_trips(shards):
    """`linear_head`: each task's logits are the network's plus a linear map of the inputs; with the network's
    output layers zeroed only the linear map is left. A trained run loads back into LocalMultiTaskModel."""
    net = build_network({"name": "mmoe", "expert_hidden": [8], "tower_hidden": [4], "linear_head": True}, DIM,
                        [1, 3])
    for tower in net.deep.towers:
        torch.nn.init.zeros_(tower.out.weight)
        torch.nn.init.zeros_(tower.out.bias)
    x = torch.randn(5, DIM)
    for out, lin in zip(net(x), net.linear, strict=True):
        assert torch.allclose(out, x @ lin.weight.T + lin.bias)
    assert net.shared_parameters() == net.deep.shared_parameters()
    root, test = shards
    run = dataclasses.replace(training_run(root), arch={**ARCH, "name": "mmoe", "linear_head": True})
    res = run_training(run)
    model = LocalMultiTaskModel(run.tasks, run.arch, DIM, load_state(res["state"]))
    assert isinstance(model.net, type(net))
    assert scores(model, test)[0] > constant_baseline(test)[0] + 0.2


def test_linear_warm_start_is_mllibs_logistic_regression_then_stays_frozen(shards):
    """`linear_warm_start`: before any epoch the model is the L2-regularised logistic regression of the
    standardised inputs (same coefficients as scikit-learn's with C = 1 / (l2 * rows)); the towers add nothing
    yet; training leaves the linear maps as fitted; epoch 0 of the history is that linear model."""
    from sklearn.linear_model import LogisticRegression

    root, test = shards
    l2 = 0.05
    run = dataclasses.replace(training_run(root, linear_warm_start=True, linear_l2=l2, epochs=3),
                              arch={**ARCH, "linear_head": True, "linear_gate": True, "standardization": True})
    loop = setup(run, Ranks())
    net = loop.model.net
    x, m = loop.train.x.numpy(), loop.train.ms[0].numpy() > 0
    assert np.allclose(net.mean.numpy(), x.mean(0), atol=1e-5)
    z = (x - x.mean(0)) / x.std(0)
    ref = LogisticRegression(C=1.0 / (l2 * m.sum()), tol=1e-10, max_iter=5000).fit(z[m], loop.train.ys[0].numpy()[m])
    head = net.net.linear[0]
    assert np.allclose(head.weight.numpy()[0], ref.coef_[0], atol=2e-3)
    assert np.allclose(head.bias.numpy(), ref.intercept_, atol=2e-3)
    gate = net.net.gate.detach()
    assert gate[0] > 1.0  # separable rows: the penalty shrank the logits, the stacking weight sharpens them
    xt = torch.from_numpy(x[:7])
    for out, lin, g in zip(net(xt), net.net.linear, gate, strict=True):
        assert torch.allclose(out, g * lin((xt - net.mean) * net.scale), atol=1e-5)
    # training rows see out-of-fold linear logits: close to, but not the same as, the full fit's
    full = head((torch.from_numpy(x) - net.mean) * net.scale)
    oof = full + loop.logit_offsets[0]
    assert not torch.allclose(oof, full) and auc(loop.train.ys[0].numpy()[m], oof.detach().numpy()[m, 0]) > 0.9
    fitted = [lin.weight.clone() for lin in net.net.linear]
    res = run_training(run)
    assert res["history"][0]["epoch"] == 0 and res["history"][0]["linear_warm_start"]["objective"] > 0
    model = LocalMultiTaskModel(run.tasks, run.arch, DIM, load_state(res["state"]))
    for before, lin in zip(fitted, model.net.net.linear, strict=True):
        assert torch.equal(before, lin.weight)
    assert scores(model, test)[0] > 0.95
    with pytest.raises(ConfigError, match="linear_head"):
        setup(dataclasses.replace(run, arch=ARCH), Ranks())


def test_unknown_architecture_and_weighting():
    with pytest.raises(ConfigError, match="unknown architecture"):
        build_network({"name": "transformer"}, DIM, [1])
    with pytest.raises(ConfigError, match="unknown loss weighting"):
        build_weighting("magic", 2)


def constant_baseline(test) -> list[float]:
    """Scores of the best constant predictor on each task (AUC 0.5, majority accuracy, F1 of all-positive
    or all-negative, RMSE of the mean)."""
    _, ys, _ = test
    maj = np.bincount(ys[1]).max() / len(ys[1])
    p = ys[2].mean()
    f1_all = 2 * p / (1 + p)
    return [0.5, maj, f1_all, float(ys[3].std())]


def scores(model: LocalMultiTaskModel, test) -> list[float]:
    x, ys, _ = test
    full = model.predict_full(x)
    pred_ml = np.stack([np.isin(np.arange(3), p) for p in full["attributes"]["prediction"]])
    tp = (pred_ml & (ys[2] > 0)).sum()
    f1 = 2 * tp / (pred_ml.sum() + (ys[2] > 0).sum())
    return [auc(ys[0] > 0, full["highlight"]["probability"][:, 1]),
            float((full["scene"]["prediction"] == ys[1]).mean()), float(f1),
            float(np.sqrt(((full["rating"]["prediction"] - ys[3]) ** 2).mean()))]


RUNS = [(a, "equal") for a in ARCHITECTURES] + [("mmoe", w) for w in WEIGHTINGS if w != "equal"]


@pytest.mark.parametrize(("arch", "weighting"), RUNS)
def test_each_architecture_and_weighting_beats_constant(shards, arch, weighting):
    root, test = shards
    run = training_run(root, arch, loss_weighting=weighting)
    res = run_training(run)
    assert len(res["history"]) == 6
    first, last = res["history"][0]["loss"], res["history"][-1]["loss"]
    assert all(last[t.name] < first[t.name] for t in TASKS)
    model = LocalMultiTaskModel(run.tasks, run.arch, DIM, load_state(res["state"]))
    got, const = scores(model, test), constant_baseline(test)
    assert got[0] > const[0] + 0.2, got
    assert got[1] > const[1] + 0.2, got
    assert got[2] > const[2] + 0.05, got
    assert got[3] < 0.8 * const[3], got
    weights = res["history"][-1]["weights"]
    if weighting in ("equal", "pcgrad", "cagrad"):  # the gradient-conflict methods keep weights 1
        assert set(weights.values()) == {1.0}
    else:
        assert len(set(round(w, 6) for w in weights.values())) > 1  # the strategy moved the weights
    if weighting == "gradnorm":
        assert sum(weights.values()) == pytest.approx(4.0)


def test_early_stopping_restores_best_epoch(shards):
    root, _ = shards
    res = run_training(training_run(root, epochs=40, patience=2, learning_rate=0.05, monitor="scene"))
    hist = res["history"]
    assert hist[-1].get("stop") and len(hist) < 40
    best = max(h["val"]["scene"]["accuracy"] for h in hist)
    assert res["info"]["best_monitored"] == best
    assert hist[-1]["val"]["scene"]["accuracy"] <= best


def test_shards_split_between_ranks(shards):
    root, _ = shards
    a = read_shard(str(root / "train"), 0, 2, TASKS, DIM)
    b = read_shard(str(root / "train"), 1, 2, TASKS, DIM)
    whole = read_shard(str(root / "train"), 0, 1, TASKS, DIM)
    assert len(a) + len(b) == len(whole) == 1200
    np.testing.assert_array_equal(np.concatenate([a.x, b.x]), whole.x)
    # multilabel targets decode to the multi-hot rows they were written from
    x, ys, ms = synthetic(1200, 1)
    keep = ms[2] > 0
    np.testing.assert_array_equal(whole.targets[2][keep], ys[2][keep])
    np.testing.assert_array_equal(whole.masks[0], ms[0])


def test_task_gradient_hook():
    """The per-task gradients a weighting sees sum to the gradient of the summed loss; GradNorm's hook fills the
    same gradients as equal weighting at its first step (weights 1) and then moves its weights."""
    from wanderlens.mtl.weighting import TaskStep, task_gradients

    torch.manual_seed(0)
    net = build_network({"name": "mmoe", "expert_hidden": [8], "tower_hidden": [4], "num_experts": 2}, DIM,
                        [t.num_outputs for t in TASKS])
    x, ys, ms = synthetic(64, 8)
    ms[3][:] = 0.0  # no labelled rows for the last task in this batch

    def step() -> TaskStep:
        losses, counts = compute_losses(TASKS, net(torch.from_numpy(x)), [torch.from_numpy(y) for y in ys],
                                        [torch.from_numpy(m) for m in ms], [None] * 4)
        return TaskStep(losses, counts > 0, net.shared_parameters(), lambda t: t)

    s = step()
    grads = task_gradients(s)
    assert grads[3] is None and all(g is not None for g in grads[:3])
    total = torch.autograd.grad(s.losses.sum(), s.shared, retain_graph=True)
    for k, expected in enumerate(total):
        torch.testing.assert_close(sum(g[k] for g in grads[:3]), expected)

    build_weighting("equal", 4).backward(s)
    equal = [p.grad.clone() for p in net.parameters()]
    net.zero_grad(set_to_none=True)
    gradnorm = build_weighting("gradnorm", 4)
    assert gradnorm.needs_task_gradients
    gradnorm.backward(step())
    for a, b in zip(equal, [p.grad for p in net.parameters()], strict=True):
        torch.testing.assert_close(a, b)
    net.zero_grad(set_to_none=True)
    gradnorm.backward(step())  # the second step has initial losses to compare with
    assert gradnorm.current_weights().tolist() != [1.0] * 4


def test_training_run_pickles_and_fingerprints(shards):
    """TorchDistributor ships the run to each rank by pickling; resumable settings leave the fingerprint alone."""
    import pickle

    run = training_run(shards[0])
    again = pickle.loads(pickle.dumps(run))
    assert again == run and again.fingerprint() == run.fingerprint()
    longer = dataclasses.replace(run, training=run.training.model_copy(update={"epochs": 40, "patience": 3}))
    assert longer.fingerprint() == run.fingerprint()
    other = dataclasses.replace(run, training=run.training.model_copy(update={"learning_rate": 0.5}))
    assert other.fingerprint() != run.fingerprint()


def test_pcgrad_projects_exactly_conflicting_gradients():
    """Two conflicting gradients: each is projected onto the other's normal plane, then they are summed."""
    from wanderlens.mtl.weighting import pcgrad

    g1, g2 = torch.tensor([1.0, 1.0], dtype=torch.float64), torch.tensor([-1.0, 0.0], dtype=torch.float64)
    expected = (g1 - (g1 @ g2) / (g2 @ g2) * g2) + (g2 - (g2 @ g1) / (g1 @ g1) * g1)
    for order in ([0, 1], [1, 0]):
        torch.testing.assert_close(pcgrad(torch.stack([g1, g2]), order), expected)
    torch.testing.assert_close(expected, torch.tensor([-0.5, 1.5], dtype=torch.float64))
    # exactly opposite gradients cancel; agreeing gradients are summed unchanged
    torch.testing.assert_close(pcgrad(torch.stack([g1, -g1])), torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(pcgrad(torch.stack([g1, 2 * g1])), 3 * g1)


def test_cagrad_without_conflict_is_the_summed_gradient_and_with_conflict_helps_both():
    from wanderlens.mtl.weighting import cagrad

    g = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(cagrad(g, 0.0), g.sum(0))
    conflict = torch.tensor([[1.0, 0.2], [-0.5, 1.0]], dtype=torch.float64)
    d = cagrad(conflict, 0.5)
    assert float(conflict[0] @ d) > 0 and float(conflict[1] @ d) > 0


def test_pcgrad_hook_writes_projected_shared_gradient():
    """Through the trainer's hook: the shared parameters get the PCGrad combination, the rest the summed loss's
    gradient."""
    from wanderlens.mtl.weighting import TaskStep, flat_task_gradients, pcgrad

    torch.manual_seed(0)
    net = build_network({"name": "shared_bottom", "expert_hidden": [8], "tower_hidden": [4]}, DIM,
                        [t.num_outputs for t in TASKS])
    x, ys, ms = synthetic(64, 8)
    losses, counts = compute_losses(TASKS, net(torch.from_numpy(x)), [torch.from_numpy(y) for y in ys],
                                    [torch.from_numpy(m) for m in ms], [None] * 4)
    step = TaskStep(losses, counts > 0, net.shared_parameters(), lambda t: t)
    grads, _ = flat_task_gradients(step)
    tower = list(net.towers[0].parameters())
    expected_tower = torch.autograd.grad(losses.sum(), tower, retain_graph=True)
    weighting = build_weighting("pcgrad", 4)
    order = torch.randperm(4, generator=torch.Generator().manual_seed(0)).tolist()
    weighting.backward(step)
    got = torch.cat([p.grad.reshape(-1) for p in step.shared]).double()
    torch.testing.assert_close(got, pcgrad(grads, order).float().double())
    for p, e in zip(tower, expected_tower, strict=True):
        torch.testing.assert_close(p.grad, e)


def test_lr_schedules_and_modality_dropout():
    from wanderlens.mtl.trainer import drop_modalities, lr_factor

    cos = TrainingConfig(epochs=10, lr_schedule="cosine", warmup_epochs=1)
    assert lr_factor(cos, 0, 10) == pytest.approx(0.1)
    assert lr_factor(cos, 9, 10) == pytest.approx(1.0)
    assert lr_factor(cos, 10, 10) == pytest.approx(1.0)
    assert lr_factor(cos, 55, 10) == pytest.approx(0.5)
    assert lr_factor(cos, 99, 10) < 0.01
    one = TrainingConfig(epochs=10, lr_schedule="onecycle")
    assert lr_factor(one, 0, 10) == pytest.approx(1 / 25) and lr_factor(one, 30, 10) == pytest.approx(1.0)
    assert lr_factor(TrainingConfig(epochs=10), 50, 10) == 1.0

    torch.manual_seed(0)
    x = torch.ones(2000, 7)  # blocks [0, 3) flag 5 and [3, 5) flag 6
    x[:10, 3:5] = 0.0
    x[:10, 6] = 0.0  # the first rows have no second block
    before = x.clone()
    out = drop_modalities(x, [[0, 3, 5], [3, 5, 6]], 0.3)
    a_gone, b_gone = out[:, 5] == 0, out[:, 6] == 0
    assert torch.all(out[a_gone, 0:3] == 0) and torch.all(out[b_gone, 3:5] == 0)
    assert not torch.any(a_gone & b_gone)  # a row keeps at least one block
    assert not torch.any(a_gone[:10])  # the only block of a row is never blanked
    assert 0.2 < float(a_gone[10:].double().mean()) < 0.4
    assert torch.equal(x, before)  # the input is not modified in place


def test_label_smoothing_raises_the_loss_of_confident_right_answers():
    from wanderlens.mtl.losses import task_loss

    t = TaskSpec("h", "binary")
    z, y, m = torch.tensor([[8.0]]), torch.tensor([1.0]), torch.tensor([1.0])
    assert task_loss(t, z, y, m, smoothing=0.1)[0] > task_loss(t, z, y, m)[0]


def test_thresholds_and_temperature():
    from wanderlens.mtl.calibration import f1_threshold, fit_calibration, fit_temperature

    thr, f1 = f1_threshold(np.array([0.9, 0.8, 0.3, 0.2, 0.1]), np.array([1, 1, 1, 0, 0]))
    assert 0.2 < thr < 0.3 and f1 == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    logit = (2 * y - 1) * 1.0 + rng.normal(size=4000)  # true logit scale 2; overconfident x3 below
    t = fit_temperature("binary", 3 * 2 * logit[:, None], y)
    assert 2.5 < t < 3.5
    tasks = [TaskSpec("h", "binary"), TaskSpec("a", "multilabel", classes=["p", "q"])]
    z_ml = rng.normal(size=(4000, 2)) + 2 * (rng.random((4000, 2)) < 0.2) - 1.5
    y_ml = (z_ml > -0.5).astype(float)
    cal = fit_calibration(tasks, [6 * logit[:, None], z_ml], [y, y_ml], [np.ones(4000), np.ones(4000)],
                          True, "per_label")
    assert set(cal) == {"h", "a"} and 2.5 < cal["h"]["temperature"] < 3.5
    assert len(cal["a"]["threshold"]) == 2
