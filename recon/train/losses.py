"""Training losses on magnitude images: SSIM (fastMRI's VarNet loss), L1, or both.

Both terms are scale-free: SSIM uses each slice's data range (the volume's ``max``
attribute, as fastMRI), and the L1 term is the mean absolute error divided by that range.
"""

from __future__ import annotations

import torch
from torch import nn

from recon.metrics import SSIMLoss
from recon.ops._checks import describe

__all__ = ["ReconLoss", "optimizer_step"]

_KINDS = ("ssim", "l1", "ssim_l1")


class ReconLoss(nn.Module):
    """``1 - SSIM``, ``mean|x - y| / max`` or ``(1 - SSIM) + l1_weight * mean|x - y| / max``.

    Args:
        kind: ``"ssim"``, ``"l1"`` or ``"ssim_l1"``.
        l1_weight: weight of the L1 term in ``"ssim_l1"``.

    Raises:
        ValueError: unknown ``kind`` or negative ``l1_weight``.

    Example:
        >>> loss_fn = ReconLoss("ssim_l1")
        >>> x, y = torch.rand(2, 32, 32), torch.rand(2, 32, 32)
        >>> loss = loss_fn(x, y, torch.ones(2))
    """

    def __init__(self, kind: str = "ssim", l1_weight: float = 1.0) -> None:
        super().__init__()
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {list(_KINDS)}, got {kind!r}")
        if isinstance(l1_weight, bool) or not isinstance(l1_weight, (int, float)) or not l1_weight >= 0:
            raise ValueError(f"l1_weight must be a number >= 0, got {l1_weight!r}")
        self.kind = kind
        self.l1_weight = float(l1_weight)
        self.ssim = SSIMLoss()

    def forward(self, output: torch.Tensor, target: torch.Tensor, max_value: torch.Tensor) -> torch.Tensor:
        """Loss of a batch.

        Args:
            output: predicted magnitude images ``(B, H, W)``.
            target: target images ``(B, H, W)``.
            max_value: ``(B,)`` data range per image (the volume's max).

        Returns:
            The scalar loss (mean over the batch).

        Raises:
            ValueError: shapes that differ or are not ``(B, H, W)``, or ``max_value`` not ``(B,)``.
        """
        if output.ndim != 3 or output.shape != target.shape:
            raise ValueError(
                f"output and target must both be (B, H, W), got {describe(output)} and {describe(target)}"
            )
        max_value = torch.as_tensor(max_value, dtype=output.dtype, device=output.device).reshape(-1)
        if max_value.shape[0] != output.shape[0]:
            raise ValueError(f"max_value must be ({output.shape[0]},), got {describe(max_value)}")
        loss = output.new_zeros(())
        if self.kind in ("ssim", "ssim_l1"):
            loss = loss + self.ssim(output.unsqueeze(1), target.unsqueeze(1), data_range=max_value)
        if self.kind in ("l1", "ssim_l1"):
            weight = 1.0 if self.kind == "l1" else self.l1_weight
            l1 = ((output - target).abs().flatten(1).mean(1) / max_value).mean()
            loss = loss + weight * l1
        return loss


def optimizer_step(
    model: nn.Module, loss: torch.Tensor, optimizer: torch.optim.Optimizer, grad_clip: float | None = None
) -> float:
    """One optimiser step on ``loss``: gradients zeroed, back-propagated, their norm clipped to
    ``grad_clip`` when given, ``optimizer.step()``; returns the loss as a float."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return float(loss.detach())
