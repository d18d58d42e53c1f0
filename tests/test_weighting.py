"""FAMO task weighting and PCGrad gradient surgery."""

from __future__ import annotations

import io
import itertools
import math

import numpy as np
import pytest
import torch

from meta.famo import FamoWeighting
from meta.pcgrad import pcgrad, project_conflicting

# Two tasks on separate coordinates whose losses differ 100x in scale: l_i = SCALES_i · θ_i².
SCALES = np.array([100.0, 1.0])


def _log_loss_rates(weighting: FamoWeighting | None, theta0: tuple[float, float]) -> np.ndarray:
    """Average per-step log-loss decrease of each task under gradient descent on Σ w_i ∇l_i."""
    lr, steps = 0.003, 200  # mean weights: θ0 shrinks by 0.7 a step, stable
    theta = np.array(theta0)
    first = SCALES * theta**2
    for _ in range(steps):
        losses = SCALES * theta**2
        if weighting is None:
            weights = np.full(2, 0.5)
        else:
            weighting.record_losses(losses)
            weights = weighting.weights()
        theta = theta - lr * weights * 2 * SCALES * theta
    return (np.log(first) - np.log(SCALES * theta**2)) / steps


def _imbalance(rates: np.ndarray) -> float:
    assert (rates > 0).all()
    return float(rates.max() / rates.min())


@pytest.mark.parametrize("theta0", [(1.0, 1.0), (1.0, 1.5), (1.5, 1.0)])
def test_famo_balances_log_loss_rates_across_scales(theta0: tuple[float, float]) -> None:
    assert _imbalance(_log_loss_rates(None, theta0)) > 10  # observed ~119
    assert _imbalance(_log_loss_rates(FamoWeighting(2), theta0)) < 1.5  # observed 1.0-1.24


def test_famo_logit_adaptation_prevents_collapse() -> None:
    # With frozen logits (z/l weights only) the task ahead takes over; FAMO's logits push back.
    assert _imbalance(_log_loss_rates(FamoWeighting(2, lr=0.0, decay=0.0), (1.0, 1.5))) > 10
    assert _imbalance(_log_loss_rates(FamoWeighting(2), (1.0, 1.5))) < 1.5


def test_famo_weights_uniform_before_losses_and_normalized() -> None:
    famo = FamoWeighting(3)
    weights = famo.weights()
    assert weights.dtype == np.float32 and weights.tolist() == pytest.approx([1 / 3] * 3)
    famo.record_losses(np.array([2.0, 0.5, 1e-12]))
    weights = famo.weights()
    assert weights.dtype == np.float32 and weights.sum() == pytest.approx(1.0, abs=1e-6)
    # Logits still 0: w ∝ 1 / max(l, eps).
    expected = 1 / np.array([2.0, 0.5, 1e-8])
    assert weights == pytest.approx(expected / expected.sum(), rel=1e-5)


def test_famo_first_logit_step_matches_adam_on_softmax_jacobian() -> None:
    lr = 0.025
    famo = FamoWeighting(2, lr=lr)
    famo.record_losses(np.array([1.0, 1.0]))
    famo.record_losses(np.array([0.5, 1.0]))  # task 0 fell faster: its logit goes down
    # First Adam step from ξ = 0 moves each logit by lr · sign(grad): ξ = (-lr, +lr).
    w0_over_w1 = (math.exp(-lr) / 0.5) / (math.exp(lr) / 1.0)
    weights = famo.weights()
    assert weights[0] / weights[1] == pytest.approx(w0_over_w1, rel=1e-5)
    assert weights[0] / weights[1] < 2.0  # below the z-uniform value l1 / l0


def test_famo_absent_task_keeps_previous_loss() -> None:
    absent, repeated = FamoWeighting(2), FamoWeighting(2)
    for famo, second in ((absent, np.nan), (repeated, 1.0)):
        famo.record_losses(np.array([1.0, 1.0]))
        famo.record_losses(np.array([0.5, second]))
        famo.record_losses(np.array([0.4, 0.8]))
    assert absent.weights() == pytest.approx(repeated.weights(), rel=1e-6)
    unseen = FamoWeighting(3)
    unseen.record_losses(np.array([1.0, 4.0, np.nan]))  # unseen task: geometric mean, 2
    assert unseen.weights() == pytest.approx(np.array([4, 1, 2]) / 7, rel=1e-5)


def test_famo_state_dict_round_trip() -> None:
    famo = FamoWeighting(3)
    rng = np.random.default_rng(0)
    for _ in range(5):
        famo.record_losses(rng.uniform(0.1, 1.0, 3))
    buffer = io.BytesIO()
    torch.save(famo.state_dict(), buffer)
    buffer.seek(0)
    restored = FamoWeighting(3)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert np.array_equal(restored.weights(), famo.weights())
    losses = rng.uniform(0.1, 1.0, 3)
    famo.record_losses(losses)
    restored.record_losses(losses)
    assert np.array_equal(restored.weights(), famo.weights())


def _project(grad: torch.Tensor, onto: torch.Tensor) -> torch.Tensor:
    return (grad @ onto) / (onto @ onto) * onto


def test_pcgrad_removes_conflicting_component_only() -> None:
    generator = torch.Generator().manual_seed(0)
    g0 = torch.randn(50, generator=generator, dtype=torch.float64)
    g1 = -0.5 * g0 + torch.randn(50, generator=generator, dtype=torch.float64)
    assert g0 @ g1 < 0
    grads = torch.stack([g0, g1])
    projected = project_conflicting(grads, generator)
    for i, j in ((0, 1), (1, 0)):
        assert projected[i] @ grads[j] >= -1e-6
        assert projected[i] @ grads[j] == pytest.approx(0.0, abs=1e-9)
        orthogonal = projected[i] - _project(projected[i], grads[j])
        assert torch.allclose(orthogonal, grads[i] - _project(grads[i], grads[j]), atol=1e-12)


def test_pcgrad_leaves_aligned_gradients_unchanged() -> None:
    grads = torch.tensor([[1.0, 2.0, 0.0], [0.5, -0.1, 3.0], [0.0, 0.0, 0.0]])
    assert torch.equal(project_conflicting(grads), grads)


def test_pcgrad_matches_sequential_reference_in_some_order() -> None:
    grads = torch.randn(4, 30, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    projected = project_conflicting(grads, torch.Generator().manual_seed(2))
    for i in range(4):
        candidates = []
        for order in itertools.permutations([j for j in range(4) if j != i]):
            grad = grads[i].clone()
            for j in order:
                if grad @ grads[j] < 0:
                    grad -= _project(grad, grads[j])
            candidates.append(grad)
        assert any(torch.allclose(projected[i], c, atol=1e-12) for c in candidates)


def test_pcgrad_single_task_is_identity_and_zero_weights_are_ignored() -> None:
    grads = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    assert torch.equal(pcgrad(grads[:1], torch.tensor([1.0])), grads[0])
    assert torch.equal(pcgrad(grads, torch.tensor([0.0, 1.0, 0.0])), grads[1])
    # Task 2 conflicts with both but has weight 0: it projects nothing.
    assert torch.equal(pcgrad(grads, torch.tensor([0.5, 0.5, 0.0])), torch.tensor([0.5, 0.5]))
    combined = pcgrad(grads, torch.tensor([0.5, 0.25, 0.25]))
    assert not torch.allclose(combined, torch.tensor([0.25, 0.0]))  # the plain weighted sum


def test_loss_weighting_follows_the_running_mean_loss_and_ignores_absent_tasks() -> None:
    from meta.weighting import LossWeighting

    weighting = LossWeighting(2, smoothing=0.5)
    assert np.allclose(weighting.weights(), 0.5)
    weighting.record_losses(np.array([3.0, 1.0]))
    assert np.allclose(weighting.weights(), [0.75, 0.25])
    weighting.record_losses(np.array([np.nan, 3.0]))  # task 0 absent: its mean stays
    assert np.allclose(weighting.weights(), [0.6, 0.4])


def test_learning_progress_weighting_favours_the_task_whose_success_changes() -> None:
    from common.spec import Scheduler, Weighting
    from meta.weighting import build_weighting

    weighting = build_weighting(Weighting(name="learning_progress"), 2,
                                Scheduler(window=20, epsilon=0.2))
    weighting.record_success(0, np.ones(40, bool))
    weighting.record_success(1, np.r_[np.zeros(20, bool), np.ones(20, bool)])
    assert np.allclose(weighting.weights(), [0.1, 0.9])
