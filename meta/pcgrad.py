"""PCGrad gradient surgery (Yu et al., NeurIPS 2020) on flat per-task gradients."""

from __future__ import annotations

import torch


def project_conflicting(
    grads: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Project each task's gradient off the gradients it conflicts with.

    grads: (K, P), one flat gradient per task. For each task i, for the other tasks j in random
    order, if g_i·g_j < 0 then g_i -= (g_i·g_j / |g_j|²) g_j, g_j being the original gradient
    of j (as in the paper). Returns the (K, P) projected gradients.
    """
    num_tasks = grads.shape[0]
    # Row i: the other tasks in random order (i itself is sorted last and dropped).
    keys = torch.rand(num_tasks, num_tasks, generator=generator)
    keys.fill_diagonal_(2.0)
    orders = keys.argsort(1)[:, :-1].to(grads.device)
    sq_norms = (grads * grads).sum(1).clamp_min(torch.finfo(grads.dtype).tiny)
    projected = grads.clone()
    rows = torch.arange(num_tasks, device=grads.device)
    for step in range(num_tasks - 1):
        others = orders[rows, step]
        dots = (projected * grads[others]).sum(1)
        coefs = torch.where(dots < 0, dots / sq_norms[others], torch.zeros_like(dots))
        projected -= coefs[:, None] * grads[others]
    return projected


def pcgrad(
    grads: torch.Tensor, weights: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Weighted sum Σ w_i g_i' of the PCGrad-projected gradients, (P,).

    Weights sum to 1; rows with weight 0 are ignored entirely (they project no other row).
    """
    active = weights != 0
    projected = project_conflicting(grads[active], generator)
    return weights[active].to(grads.dtype) @ projected
