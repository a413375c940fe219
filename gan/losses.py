"""Training losses: LSGAN, PatchNCE (CUT), and sliced-Wasserstein distribution matching.

Images are NCHW in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


# -- adversarial ----------------------------------------------------------------------------------

def lsgan_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN (Mao et al. 2017), discriminator side: real -> 1, fake -> 0."""
    return 0.5 * ((real_scores.float() - 1).pow(2).mean() + fake_scores.float().pow(2).mean())


def lsgan_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Generator side: make the discriminator say 1 on fakes."""
    return (fake_scores.float() - 1).pow(2).mean()


# -- contrastive content preservation (CUT, Park et al. 2020) -------------------------------------

class PatchNCE(nn.Module):
    """Each output patch must be recognised as coming from the input patch at the same place,
    among `patches` other patches of the same image (InfoNCE, temperature 0.07), on several
    encoder layers, each through its own 2-layer MLP head."""

    def __init__(self, channels: list[int], patches: int = 256, temperature: float = 0.07,
                 head: int = 256):
        super().__init__()
        self.patches = patches
        self.temperature = temperature
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(c, head), nn.ReLU(inplace=True), nn.Linear(head, head))
            for c in channels)

    def forward(self, queries: list[torch.Tensor], keys: list[torch.Tensor]) -> torch.Tensor:
        """`queries`: features of the output, `keys`: features of the input (same layers)."""
        total = 0.0
        for head, query, key in zip(self.heads, queries, keys):
            n, c, h, w = key.shape
            ids = torch.randperm(h * w, device=key.device)[: self.patches]
            q = F.normalize(head(_take(query, ids).float()), dim=-1)
            k = F.normalize(head(_take(key.detach(), ids).float()), dim=-1).detach()
            logits = q @ k.transpose(1, 2) / self.temperature  # (n, p, p): positives on diagonal
            target = torch.arange(logits.shape[1], device=key.device).repeat(n)
            total = total + F.cross_entropy(logits.flatten(0, 1), target)
        return total / len(self.heads)


def _take(features: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(n, c, h, w) -> (n, len(ids), c) features at flat positions `ids`."""
    return features.flatten(2)[:, :, ids].transpose(1, 2)


# -- distribution matching ------------------------------------------------------------------------

def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = 64) -> torch.Tensor:
    """Squared sliced Wasserstein-2 distance between point sets a (N, D) and b (M, D).

    Both sets are projected on random directions and sorted; b is resampled to N quantiles
    when the sizes differ. Gradients flow into `a` (and `b` if it requires them).
    """
    directions = F.normalize(torch.randn(a.shape[1], projections, device=a.device), dim=0)
    pa = torch.sort(a.float() @ directions, dim=0).values
    pb = torch.sort(b.float() @ directions, dim=0).values
    if pb.shape[0] != pa.shape[0]:
        ranks = torch.linspace(0, pb.shape[0] - 1, pa.shape[0], device=a.device).round().long()
        pb = pb[ranks]
    return (pa - pb).pow(2).mean()


def _sample_rows(x: torch.Tensor, count: int) -> torch.Tensor:
    if x.shape[0] <= count:
        return x
    return x[torch.randint(x.shape[0], (count,), device=x.device)]


def colour_distribution_loss(out: torch.Tensor, style: torch.Tensor, samples: int = 8192
                             ) -> torch.Tensor:
    """SWD between the pixel colours of `out` and of `style`: learns the global grade."""
    pixels_out = out.permute(0, 2, 3, 1).reshape(-1, 3)
    pixels_style = style.permute(0, 2, 3, 1).reshape(-1, 3)
    return sliced_wasserstein(_sample_rows(pixels_out, samples), _sample_rows(pixels_style, samples),
                              projections=16)
