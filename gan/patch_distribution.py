"""Patch-distribution matching without networks (GPDM, Elnekave & Weiss, ECCV 2022).

The texture of an image is the distribution of its small p x p patches, at several scales. Two
textures are compared by the sliced Wasserstein distance between their patch sets: every patch
is projected onto a few fresh random unit directions, each projection is sorted, and the sorted
values are compared. A projection of all patches at once is a convolution with the directions
as kernels, so the whole loss is one conv2d and one sort per pyramid level.

Two users:
- `PatchDistributionLoss`: the training term that pulls a generator's output towards the
  style's strokes, at stroke scale (a pyramid of levels, each half the size of the one above);
- `synthesize`: GPDM's direct optimisation of an image's pixels, started from a footage frame,
  which paints that frame with the style's patches: stylized keyframes made from a painting.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def random_directions(count: int, channels: int, patch: int, device: torch.device,
                      zero_mean: bool = False, generator: torch.Generator | None = None
                      ) -> torch.Tensor:
    """`count` random unit directions in patch space, as conv2d kernels (count, C, p, p).
    `zero_mean`: each direction sums to 0 per channel, so a projection ignores the patch's
    mean colour (the texture alone; the colours are then another loss's business).
    `generator` (on `device`): the same directions every time it is seeded alike."""
    kernels = torch.randn(count, channels, patch, patch, device=device, generator=generator)
    if zero_mean:
        kernels = kernels - kernels.mean(dim=(2, 3), keepdim=True)
    return kernels / kernels.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1)


def sorted_projections(images: torch.Tensor, kernels: torch.Tensor, stride: int = 1,
                       samples: int | None = None, random_offset: bool = True,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """(directions, patches) the projections of patches of `images`, sorted per direction: the
    patches on a grid of `stride` pixels at a random offset (at 0 without `random_offset`), and
    of those `samples` random ones. Both keep the cost down (on a CPU the backward pass of a
    stride-1 projection of four 128 x 128 crops takes 6 times that of a stride-2 one, and
    sorting takes longer than projecting); the subsets are fresh at each call, so over the
    steps every patch counts, unless `generator` (on the images' device) draws them."""
    if stride > 1 and random_offset:
        oy, ox = (int(v) for v in torch.randint(stride, (2,)))
        images = images[..., oy:, ox:]
    projected = F.conv2d(images.float(), kernels, stride=stride)  # (N, K, H', W')
    values = projected.flatten(2)
    if samples is not None and values.shape[0] * values.shape[2] > samples:
        per_image = max(1, samples // values.shape[0])
        values = values[:, :, torch.randint(values.shape[2], (per_image,), device=values.device,
                                            generator=generator)]
    return torch.sort(values.transpose(0, 1).flatten(1), dim=1).values


def patch_swd(output: torch.Tensor, target: torch.Tensor, patch: int = 7, projections: int = 64,
              stride: int = 1, samples: int | None = None, zero_mean: bool = False
              ) -> torch.Tensor:
    """Squared sliced Wasserstein distance between the p x p patches of `output` and `target`
    (NCHW, any sizes at least p), on a `stride` grid and subsampled to `samples` patches when
    given (see sorted_projections). When the sets differ in size, the target's sorted values
    are read at the output's quantiles."""
    kernels = random_directions(projections, output.shape[1], patch, output.device, zero_mean)
    ours = sorted_projections(output, kernels, stride, samples)
    with torch.no_grad():
        theirs = sorted_projections(target, kernels, stride, samples)
    return quantile_distance(ours, theirs)


def quantile_distance(ours: torch.Tensor, theirs: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of two sets of sorted projections (directions, values); when
    the sets differ in size, `theirs` is read at the quantiles of `ours`."""
    if theirs.shape[1] != ours.shape[1]:
        positions = torch.linspace(0, theirs.shape[1] - 1, ours.shape[1], device=ours.device)
        theirs = theirs[:, positions.round().long()]
    return (ours - theirs).pow(2).mean()


def pyramid(images: torch.Tensor, levels: int, smallest: int) -> list[torch.Tensor]:
    """`images` and up to `levels` - 1 halvings (area average), none smaller than `smallest`."""
    out = [images]
    while len(out) < levels and min(out[-1].shape[-2:]) // 2 >= smallest:
        out.append(F.avg_pool2d(out[-1], 2))
    return out


class PatchDistributionLoss(nn.Module):
    """Multi-scale patch SWD of an output batch against style images: p x p patches at `levels`
    pyramid levels (full size, 1/2, 1/4 ...), so a 7 x 7 patch at 1/4 size sees 28 pixels: the
    scale of brush strokes, not only of fine grain. Fresh random directions every call."""

    def __init__(self, patch: int = 7, levels: int = 3, projections: int = 64, stride: int = 2,
                 samples: int = 4096, zero_mean: bool = False):
        super().__init__()
        self.patch, self.levels, self.projections = patch, levels, projections
        self.stride, self.samples, self.zero_mean = stride, samples, zero_mean

    def forward(self, output: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        ours = pyramid(output, self.levels, 2 * self.patch)
        theirs = pyramid(style, len(ours), 1)
        total = sum(patch_swd(o, t, self.patch, self.projections, self.stride, self.samples,
                              self.zero_mean)
                    for o, t in zip(ours, theirs))
        return total / len(ours)


class PatchDistance:
    """A measure, not a loss: the sliced Wasserstein distance (the root of quantile_distance)
    between the p x p patches of images and those of one reference image, at `levels` pyramid
    levels, along fixed zero-mean directions drawn from `seed`, so that every image compared
    is measured alike. `strides`: the patch grid of each level (at offset 0). `samples`: at most
    so many patches of each level, at places drawn from `seed` too, so that batches of one size
    are measured on the same patches (sorting is what large images cost)."""

    def __init__(self, reference: torch.Tensor, levels: int = 4, directions: int = 128,
                 seed: int = 0, strides: tuple[int, ...] = (2, 1, 1, 1), patch: int = 7,
                 samples: int | None = None):
        generator = torch.Generator().manual_seed(seed)
        self.levels_count, self.strides, self.patch = levels, strides, patch
        self.seed, self.samples = seed, samples
        self.kernels = [random_directions(directions, reference.shape[1], patch,
                                          torch.device("cpu"), zero_mean=True,
                                          generator=generator).to(reference.device)
                        for _ in range(levels)]
        self.reference = self.sorted_levels(reference)

    @torch.no_grad()
    def sorted_levels(self, images: torch.Tensor) -> list[torch.Tensor]:
        levels = pyramid(images.float(), self.levels_count, 2 * self.patch)
        places = torch.Generator(images.device).manual_seed(self.seed)
        return [sorted_projections(level, kernels, stride, self.samples, random_offset=False,
                                   generator=places)
                for level, kernels, stride in zip(levels, self.kernels, self.strides)]

    def levels(self, images: torch.Tensor) -> list[float]:
        """The distance at each pyramid level, full size first (the patches of all images of
        the batch together)."""
        return [float(quantile_distance(ours, theirs).sqrt())
                for ours, theirs in zip(self.sorted_levels(images), self.reference)]

    def __call__(self, images: torch.Tensor) -> float:
        levels = self.levels(images)
        return sum(levels) / len(levels)


def synthesize(content: torch.Tensor, style: torch.Tensor, *, steps: int = 300, levels: int = 3,
               lr: float = 0.02, patch: int = 7, projections: int = 64, stride: int = 2,
               samples: int | None = 16384, zero_mean: bool = False,
               should_stop=lambda: False) -> torch.Tensor:
    """GPDM style transfer: the pixels of `content` (1, 3, H, W in [0, 1]), optimised with Adam
    from the content itself (which keeps its layout) so that their patch distribution, at
    `levels` pyramid levels, matches `style`'s. Returns the image, in [0, 1]."""
    loss_fn = PatchDistributionLoss(patch, levels, projections, stride, samples, zero_mean)
    image = content.detach().float().clone().requires_grad_(True)
    style = style.detach().float()
    optimizer = torch.optim.Adam([image], lr=lr)
    for _ in range(steps):
        if should_stop():
            break
        loss = loss_fn(image, style)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            image.clamp_(0, 1)
    return image.detach()
