"""FAMO task weighting (Fast Adaptive Multitask Optimization, Liu et al., NeurIPS 2023).

FAMO keeps task logits ξ (initially 0) and z = softmax(ξ). Its update direction is
Σ_i z_i ∇log l_i = Σ_i (z_i / l_i) ∇l_i, so as loss weights it is

    w_i = (z_i / l_i) / Σ_j (z_j / l_j),

with l the most recently recorded per-task loss, floored at ``eps`` (losses are assumed
non-negative). Before any loss is recorded the weights are uniform; a task that has never had a
loss recorded is given the geometric mean of the recorded ones (neutral in log space).

``record_losses(l_t)`` takes the per-task losses measured at the current parameters. If a
previous loss l_{t-1} exists, δ_i = log(l_{t-1,i}) − log(l_{t,i}) (both floored at ``eps``) is how
much each task's log-loss decreased since the last update, and the logits take one Adam step
(weight decay ``decay``) on the gradient J_softmax(ξ)^T δ, as in the official code
(``d = autograd.grad(softmax(w), w, grad_outputs=delta)``): descending on it lowers the weight of
the tasks whose loss fell fastest. Then l_{t-1} := l_t. Tasks absent from a batch are passed as
NaN: their δ is 0 and their previous loss is kept.

Per update: compute the per-task losses, ``record_losses`` them, then weight them with
``weights()``. In RL the "loss after the step" that FAMO needs is the next update's loss on a
fresh batch: the logit update lags one update behind and needs no extra forward pass.
"""

from __future__ import annotations

import numpy as np
import torch


class FamoWeighting:
    """FAMO loss weights from the per-task losses of successive updates."""

    def __init__(
        self, num_tasks: int, lr: float = 0.025, decay: float = 0.001, eps: float = 1e-8
    ) -> None:
        self.eps = eps
        self.logits = torch.zeros(num_tasks, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.logits], lr=lr, weight_decay=decay)
        self.prev_losses = np.full(num_tasks, np.nan)

    def _z(self) -> np.ndarray:
        """Task distribution softmax(ξ)."""
        return torch.softmax(self.logits.detach(), 0).double().numpy()

    def weights(self) -> np.ndarray:
        """Weight of each task's loss in the next update: z / l, normalized."""
        known = ~np.isnan(self.prev_losses)
        if not known.any():
            return np.full(len(self.prev_losses), 1.0 / len(self.prev_losses), np.float32)
        log_losses = np.log(np.maximum(self.prev_losses, self.eps))
        log_losses[~known] = log_losses[known].mean()
        scores = np.log(self._z()) - log_losses
        weights = np.exp(scores - scores.max())
        return (weights / weights.sum()).astype(np.float32)

    def record_losses(self, losses: np.ndarray) -> None:
        """Per-task losses at the current parameters (NaN: task absent from the batch)."""
        losses = np.asarray(losses, np.float64)
        present = ~np.isnan(losses)
        comparable = present & ~np.isnan(self.prev_losses)
        if comparable.any():
            prev_log = np.log(np.maximum(self.prev_losses[comparable], self.eps))
            delta = np.zeros(len(losses))
            delta[comparable] = prev_log - np.log(np.maximum(losses[comparable], self.eps))
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(
                    torch.softmax(self.logits, 0),
                    self.logits,
                    grad_outputs=torch.as_tensor(delta, dtype=self.logits.dtype),
                )
            self.logits.grad = grad
            self.optimizer.step()
        self.prev_losses[present] = losses[present]

    def state_dict(self) -> dict:
        """Logits, Adam state and last losses, as tensors (``torch.load(weights_only=True)``)."""
        return {
            "logits": self.logits.detach().clone(),
            "optimizer": self.optimizer.state_dict(),
            "prev_losses": torch.from_numpy(self.prev_losses.copy()),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` saved."""
        with torch.no_grad():
            self.logits.copy_(state["logits"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.prev_losses = state["prev_losses"].double().numpy().copy()
