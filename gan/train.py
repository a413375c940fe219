"""Style training: one-sided CUT (Park et al. 2020) with a global colour path, painted keyframes
and a temporal term.

The generator is y = c + T(c) with c = colour(x) a per-pixel colour transform and T a texture
residual (see models). Per step, on random crops of footage x and style s:
    colour path: sliced Wasserstein distance between its colours and the style's, on pixels
                 drawn from all pooled frames, + L1 to the painted colours at the same pixels
                 of the keyframes (it gets no other gradient)
    texture path: LSGAN(D(y)) + PatchNCE(y, x) + identity PatchNCE(T-path(s), s)
                  + L1(y, painted) on aligned keyframe crops (few-shot, paired)
                  + temporal: L1 between y_t and the output of frame t-1 warped by the flow
                    (DIS, measured on the footage), on the pixels the flow can be trusted on
    D: LSGAN(D(s), D(y)); unpaired, it judges detail only (a high-pass of its input)
With keyframes, PatchNCE gives way to the paired L1; with keyframes alone (no unpaired style),
the adversarial term goes too: it is then a paired problem, which L1 learns best here.
Before the first step the colour path is fitted alone (a few seconds), so the GAN starts from
the style's palette. Colour grades are learned by distribution matching, which is fast and
exact; the adversarial part adds strokes, smoothing and outlines. Keyframe and temporal crops
take places in the footage batch, so they cost little more than a normal step. After training,
a style learned without keyframes gets an abstraction (flattened regions, dark outlines on the
frame's own edges) as strong as the style's patches show (abstraction; none for a grade), then
per-channel tone curves on its output, fitted so that each channel has the style's distribution
exactly (tone_curves): the hard steps of a posterized or clipped look, which the smooth colour
path does not learn. A style learned from an artist's keyframes gets, before training, the
abstraction they show, which training goes through, and after it curves fitted to the painted
frames where they bring it closer to them.

The style file holds an exponential moving average of the generator's weights (with a warm-up,
so a short CPU run averages its last steps): smoother than the last step's weights, which move
with the adversarial game. With keyframes, the generator's residual is full-band and it gets a
detail gain (models.generator_arch(paired=True)): painted frames recolour regions and flatten
texture, which a residual made at 1/4 resolution cannot do by itself (measured: stylization
from 3 keyframes 0.535 -> 0.600 with both, same 5 minutes). An artist's keyframes also give the
texture path a skip from its full-size features (models.generator_arch(skip=True)): their
outlines sit on exact pixels.

Frames are sampled with random access from bounded pools (never a whole clip in memory).
Checkpoints (plain tensors, numbers and strings: loaded with weights_only=True) make a job
resumable: step count, optimizer state, schedule and elapsed time budget continue.

Launched by torchrun, the same training runs on several processes (GPUs, machines) that average
their gradients every step; rank 0 reads and writes the files (see distributed.py).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import tempfile
import time
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from . import device as device_mod
from . import distributed
from . import abstraction, losses, models, texture_strength, tone_curves
from .fileio import atomic_write
from .frames import FrameSourceError
from .images import resized, to_images, to_tensor, write_image
from .keyframe_painting import PAINT_SIDE, paint_keyframes
from .patch_distribution import PatchDistributionLoss
from .protocol import (DEFAULT_STABILIZE, CancelledError, CancelToken, ProgressMeter, Reporter,
                       SourceSpec, TrainJob, UserError)
from .sampling import (CONTENT_SCALE, FEW_FRAMES, FakeMotion, FramePool, KeyframePairs,
                       MotionPairs, style_scale_range)

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "ganstyle-checkpoint"
CHECKPOINT_VERSION = 1
LOSS_PLOT_NAME = "loss.png"
PREVIEW_FRAMES = 3
PREVIEW_WIDTH = 256
THUMBNAIL_SIZE = 128
MAX_HISTORY = 2000  # loss-plot points kept (older ones are thinned out)


@dataclasses.dataclass
class Settings:
    """Training hyperparameters; stored in the checkpoint and the style file's metadata."""
    crop: int = 128
    batch: int = 4
    lr: float = 2e-4
    ndf: int = 32
    # Adversarial : NCE = 0.5 : 2 (CUT uses 1:1, FastCUT 1:10): keeps the adversarial texture
    # from drifting away from the content (docs/decisions.md, "Loss weights").
    adversarial_weight: float = 0.5
    nce_weight: float = 2.0
    identity_weight: float = 1.0
    identity_crops: int = 1
    colour_weight: float = 10.0
    range_weight: float = 1.0
    colour_fit_steps: int = 300
    colour_fit_lr: float = 1e-2
    decay_from: float = 0.5  # fraction of the budget after which the learning rate decays to 0
    keyframe_weight: float = 100.0  # pix2pix's L1 weight (its 100 on [-1, 1] is 50 here)
    keyframe_crops: int = 3  # of the footage batch, when there are keyframes
    temporal_weight: float = 0.0
    temporal_crops: int = 2  # of the footage batch, when the temporal term is on
    ema_decay: float = 0.999  # the style file holds an exponential moving average of the weights
    patch_weight: float = 0.0  # multi-scale patch distribution against the style (strokes)
    patch_levels: int = 3
    keyframe_pool: int = 1  # the keyframe L1 compares averages of pool x pool pixels
    # The patch term's target where there are keyframes: the painted crops (an artist's
    # keyframes are the style) or the style's own crops (frames the add-on painted only
    # approximate the painting's strokes; they hold the layout and the colours).
    patch_against_style: bool = False
    paint_steps: int = 100  # optimisation steps per auto keyframe (keyframe_painting)


PRESET_SETTINGS = {
    "draft": Settings(crop=128, batch=4, ndf=32),
    "standard": Settings(crop=192, batch=4, ndf=64),
    "high": Settings(crop=256, batch=2, ndf=64),
}


AUTO_KEYFRAMES = 3  # footage frames painted with a still style's patches
KEYFRAMES_ALONE_LR = 3e-4  # the learning rate of a paired problem without an adversary


def auto_keyframe_count(job: TrainJob, style_frames: int) -> int:
    """How many footage frames to paint with the style's patches before training: the job's
    choice, or AUTO_KEYFRAMES for a still style (a painting: fewer than FEW_FRAMES frames)
    without painted keyframes. A clip's many frames teach its look unpaired; painted frames,
    which only approximate a look, would blur an exact colour grade."""
    if job.auto_keyframes is not None:
        return job.auto_keyframes
    return AUTO_KEYFRAMES if job.style and not job.keyframes and style_frames < FEW_FRAMES else 0


def settings_for(job: TrainJob, auto_keyframes: int = 0) -> Settings:
    overrides = {k: v for k, v in (("crop", job.crop), ("batch", job.batch)) if v is not None}
    settings = dataclasses.replace(PRESET_SETTINGS[job.preset], **overrides,
                                   temporal_weight=float(job.temporal_weight))
    if auto_keyframes and not job.keyframes:
        # Frames painted by the add-on show strokes, not where each stroke must fall: the L1
        # holds the layout and colours on 16 x 16 averages, leaving the strokes inside them
        # free, and the patch term asks for the painting's own strokes.
        settings.keyframe_pool, settings.patch_weight = 16, 2000.0
        settings.patch_against_style = True
    if job.patch_weight is not None:
        settings.patch_weight = float(job.patch_weight)
    if job.keyframes or auto_keyframes:
        # Paired training: the keyframes' L1 keeps the content where PatchNCE would, and better
        # (docs/decisions.md, "Loss weights").
        settings.nce_weight = settings.identity_weight = 0.0
        # one crop left for the temporal term, when it is on
        settings.keyframe_crops = max(1, settings.batch - (1 if settings.temporal_weight > 0 else 0))
        if not job.style:
            # Keyframes alone: a paired problem, and a discriminator that sees three pictures
            # only costs steps (docs/decisions.md, "Loss weights"); without an adversary, a
            # larger step learns more in the budget (docs/decisions.md, "Abstraction from
            # keyframes").
            settings.adversarial_weight = 0.0
            settings.lr = KEYFRAMES_ALONE_LR
    # The colour fit takes a few seconds; a budget of a few steps (a test, a smoke run) gets
    # a proportionate share instead.
    if job.minutes is None or job.minutes < 1:
        budget_steps = [job.steps * 10] if job.steps else []
        budget_steps += [int(job.minutes * 300)] if job.minutes else []
        settings.colour_fit_steps = max(10, min(settings.colour_fit_steps, *budget_steps))
        settings.paint_steps = max(10, min(settings.paint_steps, *budget_steps))
    return settings


def _pooled(images: torch.Tensor, size: int) -> torch.Tensor:
    return images if size <= 1 else F.avg_pool2d(images, size)


def ema_average(max_decay: float):
    """Exponential moving average with a warm-up (decay (1 + n) / (10 + n), at most max_decay), so
    that a short CPU run averages its last steps, not its random start."""
    def average(averaged: torch.Tensor, current: torch.Tensor, count) -> torch.Tensor:
        decay = min(max_decay, (1.0 + float(count)) / (10.0 + float(count)))
        return averaged + (current - averaged) * (1.0 - decay)
    return average


# -- checkpoints --------------------------------------------------------------------------------

def save_checkpoint(path: str, state: dict[str, Any]) -> None:
    """temp file + fsync + rename: a crash leaves the old checkpoint or the new one, whole."""
    atomic_write(path, lambda handle: torch.save(state, handle), overwrite=True)


def load_checkpoint(path: str) -> dict[str, Any]:
    """weights_only=True: a checkpoint can hold tensors, numbers and strings, never code."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged or foreign file
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # torch adds pages
        raise UserError(f"cannot resume: {path} is not a usable checkpoint ({reason})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"cannot resume: {path} is not a checkpoint of this add-on")
    if state.get("version", 0) > CHECKPOINT_VERSION:
        raise UserError(f"cannot resume: {path} was written by a newer version of this add-on")
    return state


# -- pictures: previews and loss plot -----------------------------------------------------------

def stylize_images(gen: torch.nn.Module, images: np.ndarray, device: torch.device,
                   autocast) -> np.ndarray:
    """Run the generator in eval mode on a few small uint8 frames (previews, thumbnail)."""
    was_training = gen.training
    gen.eval()
    try:
        with torch.no_grad(), autocast():
            return to_images(gen(to_tensor(images, device)))
    finally:
        gen.train(was_training)


def preview_inputs(pool: FramePool) -> np.ndarray:
    """A few footage frames spread over the sources, scaled to PREVIEW_WIDTH (multiple of 4)."""
    entries = pool.entries
    picks = [entries[int(i)] for i in np.linspace(0, len(entries) - 1, PREVIEW_FRAMES).round()]
    frames = []
    for source, index in picks:
        try:
            frames.append(pool.read(source, index))
        except FrameSourceError:
            frames.append(pool.frames[0])
    height, width = frames[0].shape[:2]
    out_h = max(4, int(round(PREVIEW_WIDTH * height / width / 4)) * 4)
    return np.stack([cv2.resize(f, (PREVIEW_WIDTH, out_h), interpolation=cv2.INTER_AREA)
                     for f in frames])


LOSS_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                (140, 86, 75), (227, 119, 194), (127, 127, 127)]


def draw_loss_plot(history: dict[str, list[float]], steps: list[int], size=(640, 360)) -> np.ndarray:
    """Each loss on its own min-max scale (their magnitudes differ by 100x), smoothed, on one
    chart with a legend. Drawn with OpenCV: no plotting library needed."""
    width, height = size
    image = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 10, width - 10, 30, height - 25
    cv2.rectangle(image, (left, top), (right, bottom), (200, 200, 200), 1)
    if len(steps) >= 2:
        span = max(steps[-1] - steps[0], 1)
        xs = left + (np.asarray(steps, float) - steps[0]) / span * (right - left)
        for n, (name, values) in enumerate(sorted(history.items())):
            smooth = _ema(np.asarray(values, float))
            finite = np.isfinite(smooth)
            if finite.sum() < 2:
                continue
            low, high = smooth[finite].min(), smooth[finite].max()
            ys = bottom - (smooth - low) / max(high - low, 1e-12) * (bottom - top)
            points = np.stack([xs, ys], 1)[finite].round().astype(np.int32)
            colour = LOSS_COLOURS[n % len(LOSS_COLOURS)]
            cv2.polylines(image, [points], False, colour, 1, cv2.LINE_AA)
            label = f"{name} {smooth[finite][-1]:.3g}"
            cv2.putText(image, label, (left + 4 + 105 * n, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        colour, 1, cv2.LINE_AA)
        cv2.putText(image, f"step {steps[0]}", (left, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (90, 90, 90), 1, cv2.LINE_AA)
        text = f"step {steps[-1]}"
        cv2.putText(image, text, (right - 8 * len(text), height - 8), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (90, 90, 90), 1, cv2.LINE_AA)
    return image


def _ema(values: np.ndarray, weight: float = 0.9) -> np.ndarray:
    out = np.empty_like(values)
    running = values[0]
    for i, value in enumerate(values):
        running = weight * running + (1 - weight) * value if i else value
        out[i] = running
    return out


# -- training -------------------------------------------------------------------------------------

class Trainer:
    """The state of one training run: models, optimizers, frame pools, budget, history."""

    def __init__(self, job: TrainJob, reporter: Reporter, cancel: CancelToken):
        self.job = job
        self.reporter = reporter
        self.cancel = cancel
        self.work_dir = job.resolved_work_dir
        self.checkpoint_path = os.path.join(self.work_dir, CHECKPOINT_NAME)
        # One process, or one of torchrun's (process group joined, GPU LOCAL_RANK pinned).
        self.group, self.device = distributed.start(job.device)
        self.dtype = device_mod.pick_dtype(self.device)
        self.step = 0
        self.elapsed_before = 0.0  # seconds of budget spent by earlier runs (resume)
        self.history: dict[str, list[float]] = {}
        self.history_steps: list[int] = []
        self._sums: dict[str, float] = {}
        self._count = 0
        self.last_losses: dict[str, float] = {}

    # - setup -
    def check_paths(self) -> dict[str, Any] | None:
        """All refusals happen here, before any training: returns the checkpoint to resume."""
        job = self.job
        if os.path.lexists(job.out):
            raise UserError(f"{job.out} already exists: choose another name for the style file "
                            "(nothing is overwritten)")
        out_dir = os.path.dirname(os.path.abspath(job.out))
        if not os.path.isdir(out_dir):
            raise UserError(f"the folder for the style file does not exist: {out_dir}")
        try:  # found now, not after the training: a read-only or full folder
            with tempfile.TemporaryFile(dir=out_dir):
                pass
        except OSError as exc:
            raise UserError(f"cannot write the style file into {out_dir}: "
                            f"{exc.strerror or exc}") from None
        has_checkpoint = os.path.isfile(self.checkpoint_path)
        if job.resume:
            if not has_checkpoint:
                raise UserError(f"nothing to resume: no checkpoint in {self.work_dir}")
            state = load_checkpoint(self.checkpoint_path)
            if state.get("preset") != job.preset:
                raise UserError(f"cannot resume: the checkpoint is for preset "
                                f"{state.get('preset')!r}, the job asks for {job.preset!r}")
            return state
        if has_checkpoint:
            raise UserError(f"{self.work_dir} already holds a checkpoint: resume it, or choose "
                            "another work folder (nothing is overwritten)")
        return None

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype,
                              enabled=self.dtype != torch.float32)

    def prepare_work_dir(self) -> dict[str, Any] | None:
        state = self.check_paths()
        os.makedirs(self.work_dir, exist_ok=True)
        return state

    def build(self, state: dict[str, Any] | None) -> None:
        job = self.job
        seed = job.seed + (state["step"] if state else 0)  # a resumed run draws new crops
        torch_seed, numpy_seed = distributed.seed_for(seed, self.group.rank)  # rank 0: seed
        torch.manual_seed(torch_seed)
        self.rng = np.random.default_rng(numpy_seed)
        self.keyframes = KeyframePairs(job.keyframes, self.rng) if job.keyframes else None
        self.content = FramePool(self.footage_specs(), self.rng, self.reporter, "footage")
        self.style = FramePool(self.style_specs(), self.rng, self.reporter, "style")
        self.auto_keyframes = auto_keyframe_count(job, len(self.style.entries))
        if state is not None:  # the run goes on exactly as it started
            known = {f.name for f in dataclasses.fields(Settings)}
            saved = json.loads(state["settings"])
            self.settings = Settings(**{k: v for k, v in saved.items() if k in known})
            self.arch = json.loads(state["arch"])
        else:
            self.settings = settings_for(job, self.auto_keyframes)
            # Painted frames change colours region by region, not only fine detail; the paired
            # L1 anchors the colours, so the texture path may add residuals of any frequency.
            # So may strokes, which the patch term asks for.
            # Frames painted by the add-on are painted at PAINT_SIDE pixels: the texture path
            # learns at that scale (where their strokes are sharp, and a crop sees more of the
            # scene) and runs at it (models.StrokeScaled), strokes keeping their size relative
            # to the frame.
            scale = 1.0
            if self.auto_keyframes:
                scale = max(1.0, min(self.content.sources[0].size) / PAINT_SIDE)
            # An artist's keyframes place each outline: the texture path gets a full-size skip.
            self.arch = models.generator_arch(
                job.preset, paired=bool(job.keyframes or self.auto_keyframes
                                        or self.settings.patch_weight),
                texture_scale=round(scale, 3), skip=bool(job.keyframes))
            if job.keyframes:
                self.arch = self.keyframe_abstraction(self.arch)
        # Several processes train one model: rank 0's choices hold for all (a rank that drops
        # an unreadable frame could otherwise count the style's frames differently).
        self.settings, self.arch, self.auto_keyframes = self.group.from_main(
            lambda: (self.settings, self.arch, self.auto_keyframes))
        settings = self.settings
        texture_scale = float(self.arch.get("texture_scale", 1.0))
        self.content_scale = (CONTENT_SCALE[0] / texture_scale, CONTENT_SCALE[1] / texture_scale)
        self.gen = models.build_generator(self.arch).to(self.device)
        # Unpaired, D judges detail only; with keyframes, whole pictures like the generator's.
        self.disc = models.build_discriminator(
            settings.ndf, detail_sigma=0.0 if self.arch.get("full_band")
            else self.arch["detail_sigma"]).to(self.device)
        self.nce_layers = self.gen.nce_layers()
        with torch.no_grad():
            channels = [f.shape[1] for f in self.gen.encode(
                torch.zeros(1, 3, 32, 32, device=self.device), self.nce_layers)]
        self.nce = losses.PatchNCE(channels).to(self.device)
        self.patches = PatchDistributionLoss(levels=settings.patch_levels)
        for module in (self.gen, self.disc, self.nce):
            module.to(memory_format=torch.channels_last)
        betas = (0.5, 0.999)
        self.opt_g = torch.optim.Adam([*self.gen.parameters(), *self.nce.parameters()],
                                      lr=settings.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=settings.lr, betas=betas)
        self.ema = torch.optim.swa_utils.AveragedModel(
            self.gen, avg_fn=ema_average(settings.ema_decay))
        if state is not None:
            try:
                self.gen.load_state_dict(state["generator"])
                self.disc.load_state_dict(state["discriminator"])
                self.nce.load_state_dict(state["nce"])
                self.opt_g.load_state_dict(state["opt_g"])
                self.opt_d.load_state_dict(state["opt_d"])
                if "ema" in state:  # checkpoints from before the average start it afresh
                    self.ema.load_state_dict(state["ema"])
            except (KeyError, RuntimeError, ValueError) as exc:
                raise UserError(f"cannot resume: the checkpoint in {self.work_dir} does not fit "
                                f"this version's model ({str(exc).splitlines()[0]})") from None
            self.step = int(state["step"])
            self.elapsed_before = float(state["elapsed_s"])
            self.history = {k: list(map(float, v)) for k, v in state["history"].items()}
            self.history_steps = [int(s) for s in state["history_steps"]]
        self.group.broadcast_modules((self.gen, self.disc, self.nce, self.ema))
        width, height = self.content.sources[0].size
        self.style_scale = tuple(s / texture_scale for s in style_scale_range(
            self.style, (width, height), job.stroke_scale))
        self.motion = None
        if settings.temporal_weight > 0:
            self.motion = MotionPairs(self.content, self.rng)
            if not self.motion:
                self.reporter.emit("log", message="no consecutive footage frames: the temporal "
                                                  "term uses made-up motion")
                self.motion = FakeMotion(self.content, self.rng)
        self.preview_inputs = preview_inputs(self.content)

    def keyframe_abstraction(self, arch: dict[str, Any]) -> dict[str, Any]:
        """`arch` with the abstraction that the artist's keyframes show, which training then
        goes through."""
        fit = abstraction.fit_to_keyframes(self.keyframes.inputs, self.keyframes.targets,
                                           self.device)
        if fit.strengths == abstraction.NONE:
            return arch
        radius, outline = fit.strengths
        self.reporter.emit("log", message=f"abstraction fitted to the keyframes: regions "
                                          f"smoothed over {radius} px, outlines x{outline:g}")
        return models.with_abstraction(arch, radius, outline)

    def footage_specs(self) -> list[SourceSpec]:
        """The footage; without any, the footage the keyframes were painted on."""
        if self.job.content:
            return self.job.content
        unique = {json.dumps(k.footage): k.footage for k in self.job.keyframes}
        return [SourceSpec(path) for path in unique.values()]

    def style_specs(self) -> list[SourceSpec]:
        """The style sources, and the painted keyframes (they show the style too)."""
        painted = [k.painted for k in self.job.keyframes]
        return [*self.job.style, *([SourceSpec(painted)] if painted else [])]

    def close(self) -> None:
        for pool in ("content", "style"):
            if hasattr(self, pool):
                getattr(self, pool).close()
        self.group.close()

    # - budget -
    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def progress_fraction(self) -> float:
        fractions = []
        if self.job.steps:
            fractions.append(self.step / self.job.steps)
        if self.job.minutes:
            fractions.append(self.elapsed() / (self.job.minutes * 60))
        return min(max(fractions), 1.0)

    def learning_rate(self) -> float:
        """Constant, then linear decay to 0 over the end of the budget (CUT's schedule). Several
        processes use rank 0's fraction of this step (their clocks differ)."""
        fraction = self.agreed_fraction if self.group.active else self.progress_fraction()
        start = self.settings.decay_from
        factor = 1.0 if fraction <= start else max(0.0, (1 - fraction) / (1 - start))
        return self.settings.lr * factor

    # - steps -
    def colour_loss(self) -> torch.Tensor:
        """Sliced Wasserstein distance between the colour path's output on random footage
        pixels and random style pixels, drawn from all pooled frames: the global palette, not
        the few crops of one step (whose colours differ from crop to crop). Without keyframes,
        that distribution is the only colour target, and its pixels are drawn away from the
        frames' strongest edges (the colours of regions: FramePool.region_pixels); keyframes
        pin the colours pixel by pixel, away from their edges too where the model has an
        abstraction (its lines are drawn after the colour path: learned there too, they would
        be drawn twice)."""
        side = 64  # 64 x 64 = 4096 pixels on each side of the match
        regions = self.keyframes is None or self.gen.abstraction is not None
        content, style = ((pool.region_pixels if regions else pool.pixels)(side * side)
                          for pool in (self.content, self.style))
        content = to_tensor(content.reshape(1, side, side, 3), self.device)
        style = to_tensor(style.reshape(1, side, side, 3), self.device)
        loss = losses.colour_distribution_loss(self.gen.colour(content), style)
        if self.keyframes is not None:  # the painted colours at the same pixels
            keyframes = self.keyframes
            inputs, targets = (keyframes.region_pixels if regions else keyframes.pixels)(
                side * side)
            inputs = to_tensor(inputs.reshape(1, side, side, 3), self.device)
            targets = to_tensor(targets.reshape(1, side, side, 3), self.device)
            loss = loss + (self.gen.colour(inputs) - targets).abs().mean()
        return loss

    def fit_colours(self) -> None:
        """Fit the colour path alone before the first step: a few seconds, and the GAN starts
        from the style's palette instead of the identity."""
        optimizer = torch.optim.Adam(self.gen.colour.parameters(), lr=self.settings.colour_fit_lr)
        for _ in range(self.settings.colour_fit_steps):
            # Several processes stop together, at the training loop's next step (one that
            # left this loop alone would wait there for the others forever).
            if self.cancel.requested and not self.group.active:
                return
            loss = self.colour_loss()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.group.average_gradients(self.gen.colour.parameters())
            optimizer.step()

    def train_step(self) -> dict[str, float]:
        settings = self.settings
        for group in (*self.opt_g.param_groups, *self.opt_d.param_groups):
            group["lr"] = self.learning_rate()
        crop, batch = settings.crop, settings.batch
        # The footage batch: keyframe crops, then frame-t crops of motion pairs, then random
        # footage crops.
        parts, paired, moving = [], 0, 0
        if self.keyframes is not None:
            paired = min(settings.keyframe_crops, batch)
            inputs, painted = self.keyframes.crops(paired, crop, self.content_scale)
            parts.append(inputs)
        if self.motion:
            moving = min(settings.temporal_crops, batch - paired)
            frames, previous, flows, masks = self.motion.crops(moving, crop, self.content_scale)
            parts.append(frames)
        parts.append(self.content.crops(batch - paired - moving, crop, self.content_scale))
        x = to_tensor(np.concatenate(parts), self.device)
        s = to_tensor(self.style.crops(batch, crop, self.style_scale), self.device)
        # Dequantize: real pixels sit on a 1/255 grid, generated ones do not; a discriminator
        # that judges fine detail would learn that difference instead of the style.
        s = (s + (torch.rand_like(s) - 0.5) / 255).clamp(0, 1)
        gen, layers = self.gen, self.nce_layers
        with self.autocast():
            # The colour path learns from the colour distribution only: adversarial and NCE
            # gradients stop at its output (measured: letting them through recoloured whole
            # regions wrongly, and halved the gap closure on a colour grade).
            raw = gen.unclamped(gen.recolour(x).detach())
            if gen.abstraction is not None:  # chosen from keyframes before training
                raw = gen.abstraction.unclamped(raw)
            y = raw.clamp(0, 1)
            terms = {}
            if settings.adversarial_weight:
                terms["gan"] = settings.adversarial_weight * losses.lsgan_g_loss(self.disc(y))
            # A clamped pixel gets no gradient from the other losses: pull it back into range.
            terms["range"] = settings.range_weight * (raw - y).abs().mean()
            if settings.nce_weight:
                with torch.no_grad():
                    keys = gen.encode(x, layers)
                terms["nce"] = settings.nce_weight * self.nce(gen.encode(y, layers), keys)
            if settings.identity_weight:
                # Identity NCE on a few style crops only: a full batch would double the step.
                s_idt = s[: settings.identity_crops]
                with torch.no_grad():
                    style_keys = gen.encode(s_idt, layers)
                y_idt = gen.finish(gen.recolour(s_idt).detach())
                terms["idt"] = settings.identity_weight * self.nce(gen.encode(y_idt, layers),
                                                                   style_keys)
            terms["colour"] = settings.colour_weight * self.colour_loss()
            if paired:
                target = to_tensor(painted, self.device)
                terms["keyframe"] = settings.keyframe_weight * (
                    _pooled(raw[:paired], settings.keyframe_pool)
                    - _pooled(target, settings.keyframe_pool)).abs().mean()
            if settings.patch_weight:
                # Against the painted crops where there are keyframes (unless the settings ask
                # for the style's): the same strokes there, wherever they fall.
                if paired and not settings.patch_against_style:
                    terms["patch"] = settings.patch_weight * self.patches(raw[:paired], target)
                else:
                    terms["patch"] = settings.patch_weight * self.patches(raw, s)
            if moving:
                terms["temporal"] = settings.temporal_weight * self.temporal_loss(
                    y[paired:paired + moving], previous, flows, masks)
        loss_g = sum(terms.values())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.group.average_gradients(p for group in self.opt_g.param_groups
                                     for p in group["params"])
        self.opt_g.step()
        self.ema.update_parameters(gen)
        if settings.adversarial_weight:
            with self.autocast():
                loss_d = losses.lsgan_d_loss(self.disc(s), self.disc(y.detach()))
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.group.average_gradients(self.disc.parameters())
            self.opt_d.step()
            terms["d"] = loss_d
        if self.step % 4 == 0:
            self.content.refresh()
            self.style.refresh()
        if self.motion and self.step % 16 == 0:
            self.motion.refresh()
        return {name: float(value.detach()) for name, value in terms.items()}

    def temporal_loss(self, outputs: torch.Tensor, previous: np.ndarray, flows: np.ndarray,
                      masks: np.ndarray) -> torch.Tensor:
        """Mean |y_t - warp(y_t-1)| on the pixels where the footage's flow is trusted. The
        previous frame's output is a fixed target (no gradient): cheaper, and it steers the
        frame being trained rather than both towards each other."""
        gen = self.gen
        with torch.no_grad():
            before = gen.finish(gen.recolour(to_tensor(previous, self.device))).float()
        flow = torch.from_numpy(flows).to(self.device)
        mask = torch.from_numpy(masks).to(self.device)[:, None]
        h, w = mask.shape[2], mask.shape[3]
        ys, xs = torch.meshgrid(torch.arange(h, device=self.device, dtype=torch.float32),
                                torch.arange(w, device=self.device, dtype=torch.float32),
                                indexing="ij")
        grid = torch.stack([(xs + flow[..., 0]) / max(w - 1, 1) * 2 - 1,
                            (ys + flow[..., 1]) / max(h - 1, 1) * 2 - 1], -1)
        warped = F.grid_sample(before, grid, mode="bilinear", padding_mode="border",
                               align_corners=True)
        difference = (outputs.float() - warped).abs() * mask
        return difference.sum() / (mask.sum() * 3 + 1e-6)

    def record(self, values: dict[str, float]) -> dict[str, float]:
        """Accumulate losses; every 10 steps add their mean to the plot history."""
        for name, value in values.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
        self._count += 1
        means = {name: total / self._count for name, total in self._sums.items()}
        if self._count >= 10:
            for name, value in means.items():
                self.history.setdefault(name, []).append(value)
            self.history_steps.append(self.step)
            self._sums, self._count = {}, 0
            if len(self.history_steps) > MAX_HISTORY:  # keep every other point
                self.history = {k: v[::2] for k, v in self.history.items()}
                self.history_steps = self.history_steps[::2]
        return means

    # - outputs -
    def averaged_generator(self) -> torch.nn.Module:
        """What previews and the style file show: the weights' moving average (smoother than
        the last step's weights, which move with the adversarial game), once there is one."""
        return self.ema.module if int(self.ema.n_averaged) > 0 else self.gen

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "preset": self.job.preset, "arch": json.dumps(self.arch),
            "settings": json.dumps(dataclasses.asdict(self.settings)),
            "step": self.step, "elapsed_s": self.elapsed(),
            "generator": self.gen.state_dict(), "discriminator": self.disc.state_dict(),
            "nce": self.nce.state_dict(), "ema": self.ema.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "history": self.history, "history_steps": self.history_steps,
        }

    def save_checkpoint(self) -> None:
        save_checkpoint(self.checkpoint_path, self.checkpoint_state())
        self.reporter.emit("checkpoint", path=self.checkpoint_path, step=self.step)

    def fitted_generator(self) -> tuple[torch.nn.Module, texture_strength.Gains]:
        """(what the style file holds, the texture gains fitted into it): the averaged
        generator; when the patch term trained it to match the style's strokes, with its
        texture strength fitted to the style's at full size (texture_strength); when its colours
        were learned from the style's distribution alone (no keyframes), with the style's
        abstraction (abstraction) and tone curves that match its output's channels to the
        style's exactly; from an artist's keyframes, with curves fitted to the painted frames
        where they bring it closer to them (tone_curves)."""
        gen, gains = self.averaged_generator(), texture_strength.TRAINED
        if self.settings.patch_weight:
            gen, gains = self.fit_texture_strength(gen)
        if self.keyframes is None:
            gen = self.fit_tone_curves(self.fit_abstraction(gen))
        elif self.job.keyframes:  # an artist's: the add-on's own only approximate a painting
            gen = self.fit_keyframe_tone_curves(gen)
        return gen, gains

    def fit_texture_strength(self, gen: models.Generator
                             ) -> tuple[models.Generator, texture_strength.Gains]:
        scale = float(self.arch.get("texture_scale", 1.0))
        model = models.stroke_scaled(gen, scale)
        frames = texture_strength.footage_frames(self.content.frames)
        # the style (for a painting: the painting) at the size its strokes train for
        style = resized(self.style.frames[0], sum(self.style_scale) / 2 * scale)
        # real consecutive frames only: made-up motion moves the frame's own noise along
        pairs = self.motion.pairs if isinstance(self.motion, MotionPairs) else []
        fit = texture_strength.fit_gains(model, frames, style, self.device, pairs,
                                         DEFAULT_STABILIZE)
        coarse, fine = fit.gains
        self.reporter.emit("log", message=f"texture strength fitted to the style: strokes "
                                          f"x{coarse:g}, their grain x{fine:g}")
        return texture_strength.with_gains(gen, fit.gains), fit.gains

    def fit_abstraction(self, gen: models.Generator) -> models.Generator:
        model = models.stroke_scaled(gen, float(self.arch.get("texture_scale", 1.0)))
        footage = texture_strength.footage_frames(self.content.frames)
        # the style at the footage's scale (short sides matched): a still may have any size
        side = min(footage[0].shape[:2])
        style = [resized(frame, side / min(frame.shape[:2]))
                 for frame in texture_strength.footage_frames(self.style.frames)]
        fit = abstraction.fit(model, footage, style, self.style.pixels(tone_curves.STYLE_PIXELS),
                              self.device)
        if fit.strengths == abstraction.NONE:
            self.reporter.emit("log", message="no abstraction: the style's regions and edges "
                                              "are as the model draws them")
            return gen
        radius, outline = fit.strengths
        self.reporter.emit("log", message=f"abstraction fitted to the style: regions smoothed "
                                          f"over {radius} px, outlines x{outline:g}")
        return abstraction.with_abstraction(gen, fit.strengths)

    def fit_tone_curves(self, gen: models.Generator) -> models.Generator:
        model = models.stroke_scaled(gen, float(self.arch.get("texture_scale", 1.0)))
        toned = tone_curves.fitted(gen, model, self.content.frames,
                                   self.style.pixels(tone_curves.STYLE_PIXELS), self.device)
        self.reporter.emit("log", message="tone curves fitted to the style's channels")
        return toned

    def fit_keyframe_tone_curves(self, gen: models.Generator) -> models.Generator:
        model = models.stroke_scaled(gen, float(self.arch.get("texture_scale", 1.0)))
        toned = tone_curves.fitted_to_keyframes(gen, model, self.keyframes.inputs,
                                                self.keyframes.targets, self.device)
        if toned is None:
            self.reporter.emit("log", message="no tone curves: the model follows the keyframes' "
                                              "colours as closely without them")
            return gen
        self.reporter.emit("log", message="tone curves fitted to the keyframes' channels")
        return toned

    def write_preview(self, generator: torch.nn.Module | None = None) -> None:
        outputs = stylize_images(generator or self.averaged_generator(), self.preview_inputs,
                                 self.device, self.autocast)
        rows = [np.hstack([inp, out]) for inp, out in zip(self.preview_inputs, outputs)]
        path = os.path.join(self.work_dir, f"preview_{self.step:07d}.png")
        write_image(path, np.vstack(rows), overwrite=True)
        write_image(os.path.join(self.work_dir, LOSS_PLOT_NAME),
                    draw_loss_plot(self.history, self.history_steps), overwrite=True)
        self.reporter.emit("preview", path=path, step=self.step)

    def thumbnail(self, generator: torch.nn.Module) -> np.ndarray:
        frame = self.preview_inputs[0]
        height, width = frame.shape[:2]
        side = min(height, width)
        square = frame[(height - side) // 2:(height - side) // 2 + side,
                       (width - side) // 2:(width - side) // 2 + side]
        square = cv2.resize(square, (THUMBNAIL_SIZE, THUMBNAIL_SIZE), interpolation=cv2.INTER_AREA)
        return stylize_images(generator, square[None], self.device, self.autocast)[0]

    def write_style(self, generator: torch.nn.Module, gains: texture_strength.Gains) -> str:
        from .stylefile import save_style

        job = self.job
        name = job.name or os.path.splitext(os.path.basename(job.out))[0]
        sources = [os.path.basename(p) for spec in self.style_specs() for p in
                   (spec.path if isinstance(spec.path, list) else [spec.path])]
        meta = {
            "name": name, "preset": job.preset, "steps": self.step,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "sources": sources, "keyframes": len(job.keyframes),
            "texture_gains": {"coarse": gains[0], "fine": gains[1]},
            "settings": {**dataclasses.asdict(self.settings), "seed": job.seed,
                         "minutes": job.minutes, "device": self.device.type,
                         "dtype": str(self.dtype).replace("torch.", "")},
        }
        if self.group.active:  # batch is per process: the processes' steps saw batch x this
            meta["settings"]["processes"] = self.group.world
        state_dict = {k: v.detach().float().cpu() for k, v in generator.state_dict().items()}
        try:
            save_style(job.out, arch=generator.arch, state_dict=state_dict, meta=meta,
                       thumbnail_rgb=self.thumbnail(generator))
        except FileExistsError:
            raise UserError(f"{job.out} appeared while training: the style is kept in the "
                            f"checkpoint in {self.work_dir}") from None
        return job.out

    # - the loop -
    def run(self) -> str:
        group = self.group
        state = group.from_main(self.prepare_work_dir)  # rank 0's checkpoint, sent to all
        self.build(state)
        job = self.job
        budget_s = job.minutes * 60 if job.minutes else None
        self.meter = ProgressMeter(job.steps or 0, budget_s=budget_s, spent_s=self.elapsed_before)
        self.started = self.meter.started
        extra = {"processes": group.world} if group.active else {}
        self.reporter.emit("start", kind="train", total=job.steps or 0,
                           **device_mod.start_fields(self.device, self.dtype), preset=job.preset,
                           step=self.step, budget_s=budget_s,
                           **extra)
        if group.active:
            self.reporter.emit("log", message=f"training on {group.world} processes "
                               f"({group.backend}): {self.settings.batch} crops each, "
                               f"{self.settings.batch * group.world} a step")
        if self.auto_keyframes:
            self.keyframes = group.from_main(self.paint_keyframes,
                                             send=lambda pairs: (pairs.inputs, pairs.targets))
            if not group.main:  # the painted pairs, with this rank's own random draws
                inputs, targets = self.keyframes
                self.keyframes = KeyframePairs([], self.rng)
                self.keyframes.inputs, self.keyframes.targets = inputs, targets
        try:
            if self.step == 0:
                self.reporter.emit("log", message="fitting the style's colours")
                self.fit_colours()
            self.train_loop()
            drifted = group.ranks_that_drifted((self.gen, self.disc, self.nce, self.ema),
                                               self.device)
            if drifted:  # rank 0's weights are a whole model still: they are written
                self.reporter.emit("log", message="the weights of rank(s) "
                                   f"{', '.join(map(str, drifted))} differ from rank 0's, "
                                   "which are written")
        except distributed.LostContact as exc:
            where = ""
            if group.main:  # what the steps so far learned is kept
                self.save_checkpoint()
                where = f"; the checkpoint in {self.work_dir} keeps the work: resume to continue"
            raise distributed.LostContact(f"training stopped at step {self.step}: {exc}{where}"
                                          ) from None
        return group.from_main(self.finish)

    def paint_keyframes(self) -> KeyframePairs:
        """Frames painted with the style's patches (or those painted before), with the
        painted keyframes: the pairs to learn from."""
        job = self.job
        try:
            painted = paint_keyframes(self.footage_specs(), self.content, self.style,
                                      self.auto_keyframes, self.work_dir, job.stroke_scale,
                                      self.settings.paint_steps, self.reporter, self.cancel,
                                      self.device)
        except CancelledError:
            self.save_checkpoint()  # resumable: the frames painted so far are kept too
            raise
        return KeyframePairs([*job.keyframes, *painted], self.rng)

    def train_loop(self) -> None:
        """Steps until the budget is spent; previews, checkpoints and progress on the way (by
        rank 0 alone, when there are several processes)."""
        job, group = self.job, self.group
        last_checkpoint = last_preview = time.monotonic()
        self.run_start_step = self.step
        if group.main:
            self.write_preview()
        while True:
            # Every process stops at the same step: rank 0's budget, anyone's cancel request.
            fraction = self.progress_fraction()
            self.agreed_fraction, finished, cancelled = group.agree_to_stop(
                fraction, fraction >= 1.0, self.cancel.requested, self.device)
            if finished:
                return
            if cancelled:
                if group.main:
                    self.save_checkpoint()
                raise CancelledError(f"training stopped at step {self.step}; resume to continue")
            self.last_losses = self.record(self.train_step())
            self.step += 1
            if not group.main:
                continue
            now = time.monotonic()
            if self.meter.due():
                self.emit_progress(self.last_losses, self.run_start_step)
            if now - last_checkpoint >= job.checkpoint_every_s:
                self.save_checkpoint()
                last_checkpoint = time.monotonic()
            if now - last_preview >= job.preview_every_s:
                self.write_preview()
                last_preview = time.monotonic()

    def finish(self) -> str:
        """The last progress, preview and checkpoint, then the style file (rank 0). The
        checkpoint keeps the trained weights, the style file and the preview the fitted ones."""
        self.emit_progress(self.last_losses, self.run_start_step)
        generator, gains = self.fitted_generator()
        self.write_preview(generator)
        self.save_checkpoint()
        return self.write_style(generator, gains)

    def emit_progress(self, losses_now: dict[str, float], run_start_step: int) -> None:
        self.reporter.emit("progress", **self.meter.fields(self.step, since_done=run_start_step),
                           losses={k: round(v, 5) for k, v in losses_now.items()})


def train(job: TrainJob, reporter: Reporter, cancel: CancelToken) -> str:
    """Train a style from `job`; returns the style file path. Raises UserError for bad inputs
    (before any work), CancelledError after saving a checkpoint when cancelled."""
    trainer = Trainer(job, reporter, cancel)
    try:
        return trainer.run()
    finally:
        trainer.close()
