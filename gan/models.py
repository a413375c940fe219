"""Generator presets, the generator, the PatchGAN discriminator and inference preparation.

The generator has two paths (both fully convolutional, so any frame size and any tiling works):
- a colour path: a per-pixel MLP (1x1 convolutions) that learns the global colour transform
  of the style quickly by distribution matching; most grades are per-pixel colour functions;
- a texture path: a ResNet (CycleGAN/CUT layout) that adds a residual for strokes, smoothing
  and outlines on top of the recoloured frame, high-passed so that it adds detail and cannot
  shift the colours of whole regions. Its encoder also serves the PatchNCE loss.
y = c + T(c), c = colour(x). No normalization layers: nothing at inference depends on frame
statistics, so a tile gives the same pixels as the whole frame. Upsampling is resize + conv
(no checkerboard from transposed convolutions).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .protocol import UserError

ARCH_TYPE = "colour-resnet"
ARCH_VERSION = 7  # 2: full_band and detail_gain (painted keyframes); 3: texture_scale;
# 4: fine_gain; 5: tone_curves; 6: skip; 7: abstraction
PRESETS: dict[str, dict[str, int]] = {
    "draft": {"ngf": 16, "blocks": 6},      # CPU minutes
    "standard": {"ngf": 32, "blocks": 6},
    "high": {"ngf": 64, "blocks": 9},       # CycleGAN size, for GPUs
}
DOWNSAMPLINGS = 2
COLOUR_HIDDEN = 32
DETAIL_SIGMA = 4.0  # the texture path adds detail finer than this (pixels); colours are global
# The texture residual's two bands, split here (texture-path pixels): the fine band is the grain
# inside strokes, the coarse band their shapes. Each gets its own strength (texture_strength).
BAND_SIGMA = 2.0
TONE_KNOTS = 256  # points of each tone curve, evenly spaced over [0, 1] (one per 8-bit level)
# The abstraction's smoothing keeps an edge whose contrast's variance is well above this (a
# guided filter's epsilon, in [0, 1] units squared): a step of about 0.05 between regions.
SMOOTHING_EPSILON = 0.003
MAX_SMOOTHING_RADIUS = 32
MAX_OUTLINE = 4.0


def generator_arch(preset: str, paired: bool = False, texture_scale: float = 1.0,
                   skip: bool = False) -> dict[str, Any]:
    """The JSON description stored in a style file; build_generator(arch) rebuilds the model.

    `paired` (painted keyframes): the residual may change colours region by region (the paired
    loss anchors them) and the frame's own detail gets a gain. `texture_scale`: the texture path
    was trained on footage reduced by this factor, and runs so (StrokeScaled). `skip`: the
    texture path's full-size features reach its output directly (pixel-exact outlines, for an
    artist's keyframes). Only the models that need them get version 2, 3 or 6, so that other
    style files still open in older versions.
    """
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}: use one of {', '.join(PRESETS)}")
    arch = {"type": ARCH_TYPE, "version": 1, "preset": preset, **PRESETS[preset],
            "downsamplings": DOWNSAMPLINGS, "colour_hidden": COLOUR_HIDDEN,
            "detail_sigma": DETAIL_SIGMA}
    if paired:
        arch.update(version=2, full_band=True, detail_gain=True)
    if texture_scale != 1.0:
        arch.update(version=3, texture_scale=float(texture_scale))
    if skip:
        arch.update(version=6, skip=True)
    return arch


def with_fine_gain(arch: dict[str, Any], fine_gain: float) -> dict[str, Any]:
    """`arch` whose texture residual has its fine band (finer than BAND_SIGMA) `fine_gain` times
    as strong; version 4 only where the gain is not 1."""
    arch = {k: v for k, v in arch.items() if k != "fine_gain"}
    if fine_gain != 1.0:
        arch.update(version=max(4, arch["version"]), fine_gain=float(fine_gain))
    return arch


def with_tone_curves(arch: dict[str, Any]) -> dict[str, Any]:
    """`arch` whose output goes through per-channel tone curves (ToneCurves); version 5 or
    above."""
    return {**arch, "version": max(5, arch["version"]), "tone_curves": True}


def with_abstraction(arch: dict[str, Any], radius: int, outline: float) -> dict[str, Any]:
    """`arch` whose output is smoothed over `radius` pixels and outlined with strength `outline`
    (Abstraction); version 7 only where either is not 0."""
    arch = {k: v for k, v in arch.items() if k != "abstraction"}
    if radius or outline:
        arch.update(version=max(7, arch["version"]),
                    abstraction={"radius": int(radius), "outline": float(outline)})
    return arch


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, padding_mode="reflect"
                     if stride == 1 else "zeros")


class ColourPath(nn.Module):
    """Per-pixel colour transform: x + MLP(x), starting as the identity."""

    def __init__(self, hidden: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv2d(3, hidden, 1), nn.SiLU(), nn.Conv2d(hidden, hidden, 1),
                                 nn.SiLU(), nn.Conv2d(hidden, 3, 1))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(x * 2 - 1)


class ToneCurves(nn.Module):
    """Per-channel curves on the output, piecewise linear through TONE_KNOTS points: out_c =
    curve_c(y_c). They start as the identity; gan.tone_curves fits them after training."""

    def __init__(self):
        super().__init__()
        self.register_buffer("values", torch.linspace(0, 1, TONE_KNOTS).repeat(3, 1))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        values = self.values.float()
        # each knot's slope to the next one (the last knot's is never used beyond it: 0)
        slopes = F.pad(values[:, 1:] - values[:, :-1], (0, 1))
        out = torch.empty(y.shape, dtype=torch.float32, device=y.device)
        # One channel at a time, contiguous: gathering through a channels_last view is much
        # slower on CPUs (docs/decisions.md, "Tone curves").
        for channel in range(3):
            position = y[:, channel].float().clamp(0, 1).mul_(TONE_KNOTS - 1)
            knot = position.floor()
            index = knot.long()
            out[:, channel] = values[channel].take(index).add_(
                position.sub_(knot).mul_(slopes[channel].take(index)))
        return out.to(y.dtype)


class Abstraction(nn.Module):
    """Edge-preserving smoothing, then dark outlines, on the output (a cartoon's flat regions
    and lines; Winnemoller et al., "Real-time video abstraction", 2006): a self-guided filter
    of `radius` pixels (He et al. 2010), per channel, then y * (1 - outline * |gradient|), the
    Sobel gradient of the smoothed frame summed over its channels. Both follow the frame's
    own edges; gan.abstraction fits their strengths after training."""

    def __init__(self, radius: int, outline: float):
        super().__init__()
        self.radius, self.outline = int(radius), float(outline)
        sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
        self.register_buffer("sobel", torch.stack([sobel, sobel.T])[:, None].repeat(3, 1, 1, 1),
                             persistent=False)  # (6, 1, 3, 3): x and y of each channel

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.unclamped(y).clamp(0, 1).to(y.dtype)

    def unclamped(self, y: torch.Tensor) -> torch.Tensor:
        """The abstracted output before its clamp, in float32: what training goes through (a
        clamped pixel would get no gradient)."""
        # fp32 and NCHW, as HighPass: depthwise filters are very slow in bf16 or channels_last
        with torch.autocast(y.device.type, enabled=False):
            x = y.float().contiguous()
            if self.radius:
                x = self.smoothed(x)
            if self.outline:
                x = x * (1 - self.outline * self.gradient(x)).clamp(0, 1)
            return x

    def smoothed(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        mean, mean_of_squares = self._box(torch.cat([x, x * x], 1)).split(c, 1)
        variance = mean_of_squares - mean * mean
        a = variance / (variance + SMOOTHING_EPSILON)  # 1 keeps the pixel (an edge), 0 the mean
        mean_a, mean_b = self._box(torch.cat([a, mean - a * mean], 1)).split(c, 1)
        return mean_a * x + mean_b

    def _box(self, x: torch.Tensor) -> torch.Tensor:
        """The mean over (2 * radius + 1)^2 pixels, edges replicated, by running sums: the
        same cost for any radius (docs/decisions.md, "Abstraction from keyframes")."""
        r, k = self.radius, 2 * self.radius + 1
        for dim, padding in ((3, (r + 1, r, 0, 0)), (2, (0, 0, r + 1, r))):
            sums = F.pad(x, padding, mode="replicate").cumsum(dim)
            n = x.shape[dim]
            x = (sums.narrow(dim, k, n) - sums.narrow(dim, 0, n)) / k
        return x

    def gradient(self, x: torch.Tensor) -> torch.Tensor:
        """The Sobel gradient's magnitude, summed over the channels: (N, 1, H, W)."""
        n, c, h, w = x.shape
        g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.sobel, groups=c)
        squared = g.reshape(n, c, 2, h, w).square().sum(2)
        # The square root's derivative at 0 (a flat region) is infinite: 0 there instead.
        magnitude = torch.where(squared > 0, squared.clamp_min(1e-12).sqrt(), 0.0)
        return magnitude.sum(1, keepdim=True)


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels, 3), nn.ReLU(inplace=True),
                                  _conv(channels, channels, 3))
        # Without normalization, a deep stack stays well-behaved if each block starts small.
        with torch.no_grad():
            self.body[-1].weight.mul_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Upsample(nn.Module):
    """Bilinear x2 then a 3x3 convolution (no transposed convolution: no checkerboard)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = _conv(cin, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))


class HighPass(nn.Module):
    """x - GaussianBlur(x), per channel: only the detail finer than ~sigma pixels."""

    def __init__(self, sigma: float):
        super().__init__()
        self.radius = math.ceil(3 * sigma)
        offsets = torch.arange(-self.radius, self.radius + 1, dtype=torch.float32)
        kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
        self.register_buffer("kernel", (kernel / kernel.sum()).reshape(1, 1, 1, -1),
                             persistent=False)  # not a weight: not in style files

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # fp32 and NCHW on purpose: bf16 / channels_last depthwise convolutions take a very
        # slow path on CPUs (measured 100x slower); this costs a few ms per frame instead.
        with torch.autocast(x.device.type, enabled=False):
            n, c, h, w = x.shape
            detail = x.float().reshape(n * c, 1, h, w)
            r, kernel = self.radius, self.kernel.float()  # the model may have been cast to bf16
            blurred = F.conv2d(F.pad(detail, (r, r, 0, 0), mode="replicate"), kernel)
            blurred = F.conv2d(F.pad(blurred, (0, 0, r, r), mode="replicate"), kernel.transpose(2, 3))
            return (detail - blurred).reshape(n, c, h, w).to(x.dtype)


class Generator(nn.Module):
    """RGB in [0, 1] -> RGB in [0, 1], NCHW, any size (a multiple of `alignment` avoids
    resampling at the border)."""

    def __init__(self, arch: dict[str, Any]):
        super().__init__()
        self.arch = dict(arch)
        ngf, blocks, downs = int(arch["ngf"]), int(arch["blocks"]), int(arch["downsamplings"])
        self.colour = ColourPath(int(arch["colour_hidden"]))
        encoder: list[nn.Module] = [nn.Sequential(_conv(3, ngf, 7), nn.ReLU(inplace=True))]
        channels = ngf
        for _ in range(downs):
            encoder.append(nn.Sequential(_conv(channels, channels * 2, 3, stride=2),
                                         nn.ReLU(inplace=True)))
            channels *= 2
        encoder += [ResBlock(channels) for _ in range(blocks)]
        self.encoder = nn.ModuleList(encoder)
        decoder: list[nn.Module] = []
        for _ in range(downs):
            decoder += [Upsample(channels, channels // 2), nn.ReLU(inplace=True)]
            channels //= 2
        sigma = float(arch.get("detail_sigma", 0))
        self.high_pass = HighPass(sigma) if sigma > 0 else None
        # Detail gain: one more output channel scales the frame's own fine detail per pixel
        # (-1 flattens a region, >0 sharpens). Smoothing is what most painterly styles do, and
        # a decoder working from 1/4 resolution could not cancel pixel-fine texture itself.
        self.detail_gain = bool(arch.get("detail_gain")) and sigma > 0
        # Full band: the decoder's residual is not high-passed, so it may change colours region
        # by region too (painted keyframes, whose paired loss anchors the colours).
        self.full_band = bool(arch.get("full_band")) or sigma <= 0
        outputs = 4 if self.detail_gain else 3
        decoder.append(_conv(channels, outputs, 7))
        nn.init.zeros_(decoder[-1].weight)  # the texture path starts as "add nothing"
        nn.init.zeros_(decoder[-1].bias)
        self.decoder = nn.Sequential(*decoder)
        # Skip: the stem's full-size features reach the output through a 3x3 convolution
        # (pix2pix's U-Net skip, at the finest level only): everything else passes through
        # 1/4 resolution, where an outline's exact pixel is lost.
        self.skip = _conv(ngf, outputs, 3) if arch.get("skip") else None
        if self.skip is not None:
            nn.init.zeros_(self.skip.weight)
            nn.init.zeros_(self.skip.bias)
        self.fine_gain = float(arch.get("fine_gain", 1.0))
        self.fine_band = HighPass(BAND_SIGMA)
        abstraction = arch.get("abstraction")
        self.abstraction = Abstraction(**abstraction) if abstraction else None
        self.tone = ToneCurves() if arch.get("tone_curves") else None
        self.alignment = 2 ** downs
        self.receptive_margin = receptive_margin(arch)

    def nce_layers(self) -> list[int]:
        """Encoder layers whose features PatchNCE compares: the input, the stem and each
        downsampling. (CUT adds a mid-stack block; measured here it cost 35% of a training step
        for no gain in quality.)"""
        return [-1, *range(int(self.arch["downsamplings"]) + 1)]

    def encode(self, x: torch.Tensor, layers: list[int]) -> list[torch.Tensor]:
        """Features of `x` (in [0, 1]) after the given encoder layers (-1 = the input itself)."""
        features = []
        h = x * 2 - 1
        if -1 in layers:
            features.append(h)
        last = max(layers)
        for i, layer in enumerate(self.encoder):
            if i > last:
                break
            h = layer(h)
            if i in layers:
                features.append(h)
        return features

    def texture(self, c: torch.Tensor) -> torch.Tensor:
        """The texture path's residual for a recoloured frame c."""
        height, width = c.shape[-2:]
        pad_h, pad_w = -height % self.alignment, -width % self.alignment
        if pad_h or pad_w:  # the down/up path needs sizes on the alignment grid
            c = F.pad(c, (0, pad_w, 0, pad_h), mode="replicate")
        h = c * 2 - 1
        for i, layer in enumerate(self.encoder):
            h = layer(h)
            if i == 0:
                stem = h
        out = self.decoder(h)
        if self.skip is not None:
            out = out + self.skip(stem)
        residual = out[:, :3] if self.full_band else self.high_pass(out[:, :3])
        if self.detail_gain:
            residual = residual + out[:, 3:] * self.high_pass(c)
        residual = residual[..., :height, :width]
        if self.fine_gain != 1.0:
            residual = residual + (self.fine_gain - 1.0) * self.fine_band(residual)
        return residual

    def texture_bands(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(coarse, fine): the texture residual for a recoloured frame c split at BAND_SIGMA,
        float32; their sum is texture(c)."""
        residual = self.texture(c).float()
        fine = self.fine_band(residual)
        return residual - fine, fine

    def unclamped(self, c: torch.Tensor) -> torch.Tensor:
        """c + texture in float32: bf16 rounding of the colours would leave a fine pattern that
        a discriminator learns to spot (measured: it then wins and training collapses)."""
        return c.float() + self.texture(c).float()

    def finish(self, c: torch.Tensor) -> torch.Tensor:
        """Texture on top of a recoloured frame c = recolour(x), clamped to [0, 1], through the
        stages fitted after training."""
        return self.fitted_stages(self.unclamped(c).clamp(0, 1))

    def fitted_stages(self, y: torch.Tensor) -> torch.Tensor:
        """The output y in [0, 1] through the stages fitted after training, where the model
        has them: the abstraction, then the tone curves (fitted to what it gives)."""
        if self.abstraction is not None:
            y = self.abstraction(y)
        return y if self.tone is None else self.tone(y)

    def recolour(self, x: torch.Tensor) -> torch.Tensor:
        """The colour path's output, a valid colour (the texture path starts from it)."""
        return self.colour(x).clamp(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.finish(self.recolour(x))

    def bands(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(recoloured frame, coarse residual, fine residual), float32: the output is their
        clamped sum."""
        c = self.recolour(x)
        return (c.float(), *self.texture_bands(c))

    def scale_texture(self, gain: float) -> None:
        """Multiply the texture residual by `gain`, in the weights: the residual is linear in the
        decoder's last convolution and the skip's (their colour channels and their detail-gain
        channel alike)."""
        with torch.no_grad():
            for last in (self.decoder[-1], self.skip):
                if last is not None:
                    last.weight.mul_(gain)
                    last.bias.mul_(gain)


class StrokeScaled(nn.Module):
    """A generator whose strokes are `scale` times the size it was trained with: the texture
    path runs on the frame resized by 1 / scale and its residual is resized back, while the
    colour path (per pixel) runs at full size. Larger strokes also cost less (scale 2 runs the
    texture path on a quarter of the pixels); the frame's detail finer than the texture path's
    grid is kept as it is."""

    def __init__(self, generator: Generator, scale: float):
        super().__init__()
        self.generator = generator
        self.scale = float(scale)
        self.alignment = generator.alignment
        # the texture path's context, enlarged, plus the resampling kernels' reach
        margin = math.ceil((generator.receptive_margin + 2) * max(self.scale, 1.0)) + 2
        self.receptive_margin = -(-margin // self.alignment) * self.alignment

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(recoloured frame, texture residual) at full size, float32."""
        gen = self.generator
        height, width = x.shape[-2:]
        residual = gen.texture(gen.recolour(self._reduced(x).to(x.dtype))).float()
        return gen.recolour(x).float(), self._enlarged(residual, height, width)

    def bands(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(recoloured frame, coarse residual, fine residual) at full size, float32; the bands
        are split at the texture path's scale (Generator.texture_bands)."""
        gen = self.generator
        height, width = x.shape[-2:]
        coarse, fine = gen.texture_bands(gen.recolour(self._reduced(x).to(x.dtype)))
        return (gen.recolour(x).float(), self._enlarged(coarse, height, width),
                self._enlarged(fine, height, width))

    def _reduced(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        size = (max(1, round(height / self.scale)), max(1, round(width / self.scale)))
        # Resampled in float32: bf16 resizing loses the colours' low bits.
        return F.interpolate(x.float(), size=size, mode="bilinear", antialias=True,
                             align_corners=False)

    @staticmethod
    def _enlarged(residual: torch.Tensor, height: int, width: int) -> torch.Tensor:
        # Bicubic, not bilinear: enlarged strokes keep their edges (docs/decisions.md,
        # "session 7").
        return F.interpolate(residual, size=(height, width), mode="bicubic", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        colour, residual = self.parts(x)
        return self.generator.fitted_stages((colour + residual).clamp(0, 1))


def receptive_margin(arch: dict[str, Any]) -> int:
    """Pixels of context each output pixel depends on, on each side (half the receptive field,
    rounded up to the alignment): a tile overlap of this size gives seamless tiles."""
    downs, blocks = int(arch["downsamplings"]), int(arch["blocks"])
    radius, step = 3, 1  # stem 7x7
    for _ in range(downs):
        radius += step  # 3x3 stride 2
        step *= 2
    radius += blocks * 2 * step  # two 3x3 per block
    for _ in range(downs):
        step //= 2
        radius += step + step  # bilinear x2 (one source pixel) + 3x3
    radius += 3  # final 7x7
    if arch.get("detail_sigma", 0) > 0:
        radius += math.ceil(3 * arch["detail_sigma"])  # the high-pass blur
    if arch.get("fine_gain", 1.0) != 1.0:
        radius += math.ceil(3 * BAND_SIGMA)  # the fine band's blur
    if arch.get("abstraction"):
        radius += 2 * arch["abstraction"]["radius"] + 1  # two box filters, then the gradient
    align = 2 ** downs
    return -(-radius // align) * align


def build_generator(arch: dict[str, Any]) -> Generator:
    """Rebuild a generator from its JSON description (checked: style files are untrusted)."""
    if not isinstance(arch, dict) or arch.get("type") != ARCH_TYPE:
        raise UserError(f"unsupported model type {arch.get('type') if isinstance(arch, dict) else arch!r}"
                        f" (this version reads {ARCH_TYPE!r})")
    version = arch.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise UserError("bad model description: version must be an integer")
    if version > ARCH_VERSION:
        raise UserError(f"the model needs a newer version of this add-on (model version "
                        f"{version}, supported {ARCH_VERSION})")
    limits = {"ngf": (4, 256), "blocks": (1, 32), "downsamplings": (1, 4), "colour_hidden": (4, 256)}
    for key, (low, high) in limits.items():
        value = arch.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise UserError(f"bad model description: {key} must be an integer in {low}-{high}")
    sigma = arch.get("detail_sigma", 0)
    if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not 0 <= sigma <= 32:
        raise UserError("bad model description: detail_sigma must be a number in 0-32")
    for flag in ("detail_gain", "full_band", "tone_curves", "skip"):
        if not isinstance(arch.get(flag, False), bool):
            raise UserError(f"bad model description: {flag} must be true or false")
    scale = arch.get("texture_scale", 1.0)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not 1 <= scale <= 16:
        raise UserError("bad model description: texture_scale must be a number in 1-16")
    fine_gain = arch.get("fine_gain", 1.0)
    if not isinstance(fine_gain, (int, float)) or isinstance(fine_gain, bool) \
            or not 0 < fine_gain <= 16:
        raise UserError("bad model description: fine_gain must be a number in 0-16")
    abstraction = arch.get("abstraction")
    if abstraction is not None:
        _check_abstraction(abstraction)
    return Generator(arch)


def _check_abstraction(abstraction: Any) -> None:
    if not isinstance(abstraction, dict) or set(abstraction) != {"radius", "outline"}:
        raise UserError("bad model description: abstraction must have a radius and an outline")
    radius, outline = abstraction["radius"], abstraction["outline"]
    if not isinstance(radius, int) or isinstance(radius, bool) \
            or not 0 <= radius <= MAX_SMOOTHING_RADIUS:
        raise UserError(f"bad model description: the abstraction's radius must be an integer "
                        f"in 0-{MAX_SMOOTHING_RADIUS}")
    if not isinstance(outline, (int, float)) or isinstance(outline, bool) \
            or not 0 <= outline <= MAX_OUTLINE:
        raise UserError(f"bad model description: the abstraction's outline must be a number "
                        f"in 0-{MAX_OUTLINE:g}")


# -- discriminator --------------------------------------------------------------------------------

class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN (pix2pix/CycleGAN): one real/fake score per overlapping patch.

    With `detail_sigma`, it judges only the detail finer than that (a high-pass of its input):
    the colours are the colour path's business, learned by distribution matching, and a
    discriminator that could see them would drag whole regions towards a wrong hue (measured).
    No normalization (LSGAN is stable enough without, and it keeps channels_last fast).
    """

    def __init__(self, ndf: int = 64, layers: int = 3, detail_sigma: float = 0.0):
        super().__init__()
        self.high_pass = HighPass(detail_sigma) if detail_sigma > 0 else None
        body: list[nn.Module] = [nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        channels = ndf
        for i in range(1, layers + 1):
            out = ndf * min(2 ** i, 8)
            body += [nn.Conv2d(channels, out, 4, 2 if i < layers else 1, 1),
                     nn.LeakyReLU(0.2, inplace=True)]
            channels = out
        body.append(nn.Conv2d(channels, 1, 4, 1, 1))
        self.body = nn.Sequential(*body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.high_pass is not None:
            return self.body(self.high_pass(x) * 2)  # detail is small and centred on 0
        return self.body(x * 2 - 1)


def build_discriminator(ndf: int = 64, layers: int = 3, detail_sigma: float = 0.0
                        ) -> PatchDiscriminator:
    return PatchDiscriminator(ndf, layers, detail_sigma)


# -- inference ------------------------------------------------------------------------------------

def prepare_for_inference(gen: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """eval mode, no gradients, channels_last, weights in `dtype`.

    Callers pass float [0, 1] NCHW input in any dtype; cast it to `dtype` (and ideally to
    channels_last) for speed. Output comes back in `dtype`.
    """
    gen = gen.eval()
    for param in gen.parameters():
        param.requires_grad_(False)
    return gen.to(device=device, dtype=dtype, memory_format=torch.channels_last)


def load_stylizer(style_path: str, device: torch.device, dtype: torch.dtype,
                  stroke_scale: float = 1.0):
    """(the model that stylizes frames, StyleInfo): the generator of load_generator, its
    texture path run at the scale it was trained at times `stroke_scale`."""
    gen, info = load_generator(style_path, device, dtype)
    return stroke_scaled(gen, float(info.arch.get("texture_scale", 1.0)) * stroke_scale), info


def stroke_scaled(gen: Generator, scale: float) -> nn.Module:
    """`gen` with its texture path run at `scale` (StrokeScaled), or `gen` itself at 1."""
    return gen if scale == 1.0 else StrokeScaled(gen, scale)


def load_generator(style_path: str, device: torch.device, dtype: torch.dtype):
    """(generator ready for inference, StyleInfo) from a style file; weights only, no code."""
    from .stylefile import StyleFileError, load_style

    info, tensors = load_style(style_path)
    # The description is checked against the file's tensors on the meta device first (no
    # memory): a hostile file could describe a model of tens of GB with a few bytes.
    with torch.device("meta"):
        expected = build_generator(info.arch).state_dict()
    weights = {k: v for k, v in tensors.items() if k in expected}
    missing = sorted(set(expected) - set(weights))
    if missing:
        raise StyleFileError(f"{style_path}: the style file lacks weights ({missing[0]}, ...)")
    for name, value in weights.items():
        if tuple(value.shape) != tuple(expected[name].shape):
            raise StyleFileError(f"{style_path}: weight {name} has shape {tuple(value.shape)}, "
                                 f"the model needs {tuple(expected[name].shape)}")
    gen = build_generator(info.arch)
    gen.load_state_dict({k: v.float() for k, v in weights.items()})
    return prepare_for_inference(gen, device, dtype), info
