"""Abstraction: a style learned from a cartoon-like clip without pairs, or from cartoon keyframes,
flattens regions and draws dark outlines on the frame's own edges, as strong as the style shows;
a grade gets none."""

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan import abstraction, models
from gan.images import to_images
from gan.metrics import gap_closure
from gan.protocol import CancelToken, KeyframeSpec, Reporter, SourceSpec, TrainJob
from gan.sampling import FramePool, KeyframePairs
from gan.stylefile import read_style_info
from gan.stylize import FrameStylizer
from gan.train import Trainer, train

CPU = torch.device("cpu")


def scene(i: int, seed: int, size=(160, 120)) -> np.ndarray:
    """RGB: a soft colour field, a few flat shapes that move with i, and sensor noise."""
    rng = np.random.default_rng(seed * 1000 + i)
    width, height = size
    image = cv2.resize(rng.integers(40, 216, (3, 4, 3), dtype=np.uint8), size,
                       interpolation=cv2.INTER_CUBIC)
    for k in range(4):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width - 40)) + 3 * i, int(rng.integers(0, height - 40))
        if k % 2:
            cv2.circle(image, (x + 15, y + 15), 14, colour, -1)
        else:
            cv2.rectangle(image, (x, y), (x + 35, y + 25), colour, -1)
    noise = rng.normal(0, 6, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def cartoon(rgb: np.ndarray) -> np.ndarray:
    """OpenCV's stylization: flattened regions, dark lines on their edges."""
    bgr = cv2.stylization(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), sigma_s=60, sigma_r=0.45)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def darker(rgb: np.ndarray) -> np.ndarray:
    """A per-pixel grade: no flattening, no lines."""
    return (255 * (rgb / 255.0) ** 1.6).astype(np.uint8)


def halves(noise: float = 0.0) -> torch.Tensor:
    """1 x 3 x 40 x 40: a dark left half, a bright right half, optional Gaussian noise."""
    image = torch.full((1, 3, 40, 40), 0.2)
    image[..., 20:] = 0.8
    return image + noise * torch.randn(image.shape, generator=torch.Generator().manual_seed(0))


def test_the_smoothing_flattens_regions_and_keeps_their_edges():
    noisy = halves(noise=0.03)
    smoothed = models.Abstraction(radius=4, outline=0.0)(noisy)
    inside = (slice(None), slice(None), slice(5, 35), slice(2, 16))
    assert smoothed[inside].std() < 0.4 * noisy[inside].std()
    # the edge stays a step: each side keeps its own level up to it
    assert (smoothed[..., 5:35, 19].mean() - 0.2).abs() < 0.02
    assert (smoothed[..., 5:35, 20].mean() - 0.8).abs() < 0.02
    blurred = F.avg_pool2d(noisy, 9, 1, 4, count_include_pad=False)  # what a plain blur does
    assert (blurred[..., 5:35, 19].mean() - 0.2).abs() > 0.1


def test_outlines_darken_the_edges_and_nothing_else():
    flat = halves()
    outlined = models.Abstraction(radius=0, outline=0.3)(flat)
    assert torch.equal(outlined[..., :17], flat[..., :17])
    assert torch.equal(outlined[..., 22:], flat[..., 22:])
    assert (outlined[..., 19:21] < flat[..., 19:21] - 0.1).all()


def test_a_model_with_an_abstraction_needs_version_7_and_sound_strengths():
    arch = models.generator_arch("draft")
    assert models.with_abstraction(arch, 0, 0.0) == arch
    abstracted = models.with_abstraction(arch, 2, 0.3)
    assert abstracted["version"] == 7 == models.ARCH_VERSION
    assert abstracted["abstraction"] == {"radius": 2, "outline": 0.3}
    assert isinstance(models.build_generator(abstracted).abstraction, models.Abstraction)
    for bad in ({"radius": -1, "outline": 0.3}, {"radius": 1.5, "outline": 0.3},
                {"radius": True, "outline": 0.3}, {"radius": 999, "outline": 0.3},
                {"radius": 2, "outline": -0.1}, {"radius": 2, "outline": "dark"},
                {"radius": 2}, {"radius": 2, "outline": 0.3, "code": "x"}, [2, 0.3]):
        with pytest.raises(models.UserError, match="abstraction"):
            models.build_generator({**abstracted, "abstraction": bad})


def test_a_model_with_an_abstraction_tiles_like_the_whole_frame():
    """The smoothing and the gradient widen the context each pixel needs: the margin grows."""
    plain = models.build_generator(models.generator_arch("draft"))
    fitted = abstraction.with_abstraction(plain, (4, 0.3))
    assert fitted.receptive_margin > plain.receptive_margin
    image = scene(0, seed=5, size=(190, 150))
    whole = FrameStylizer(fitted, CPU, torch.float32, margin=fitted.receptive_margin,
                          multiple=fitted.alignment, ngf=16)([image])[0].astype(int)
    tiled = FrameStylizer(fitted, CPU, torch.float32, margin=fitted.receptive_margin,
                          multiple=fitted.alignment, ngf=16, tile=48)([image])[0].astype(int)
    assert np.abs(whole - image).mean() > 1  # the abstraction does change the frame
    assert np.abs(tiled - whole).max() <= 1


def test_the_fit_finds_a_cartoons_abstraction_and_none_in_a_grade():
    """An untrained generator outputs its input, so the fit measures the abstraction alone."""
    generator = models.build_generator(models.generator_arch("draft"))
    footage = [scene(i, seed=1) for i in range(3)]
    styles = [scene(i, seed=2) for i in range(3)]
    for look, expected in ((cartoon, "some"), (darker, "none")):
        style = [look(frame) for frame in styles]
        fit = abstraction.fit(generator, footage, style, np.concatenate(style).reshape(-1, 3), CPU)
        if expected == "none":
            assert fit.strengths == abstraction.NONE
        else:
            assert fit.strengths[1] > 0  # outlines
            assert fit.distances[fit.strengths] < 0.8 * fit.distances[abstraction.NONE]


def test_gradients_pass_through_the_abstraction_even_where_the_frame_is_flat():
    """Training from keyframes goes through the abstraction: a flat region (zero gradient,
    where a square root's derivative is infinite) must not give NaN."""
    frame = halves().requires_grad_()
    models.Abstraction(radius=2, outline=0.3).unclamped(frame).sum().backward()
    assert torch.isfinite(frame.grad).all() and frame.grad.abs().sum() > 0


def test_keyframes_show_a_cartoons_abstraction_and_none_in_a_grade():
    frames = [scene(i, seed=1, size=(200, 150)) for i in range(3)]
    for look, expected in ((cartoon, "some"), (darker, "none")):
        fit = abstraction.fit_to_keyframes(frames, [look(frame) for frame in frames], CPU)
        if expected == "none":
            assert fit.strengths == abstraction.NONE
        else:
            assert fit.strengths[1] > 0  # outlines
            assert fit.distances[fit.strengths] < 0.8 * fit.distances[abstraction.NONE]


class Logged(Reporter):
    def __init__(self):
        self.messages = []

    def emit(self, event, **fields):
        if event == "log":
            self.messages.append(fields["message"])


def written(folder, name: str, frames: list[np.ndarray]) -> list[str]:
    paths = [str(folder / f"{name}_{i:02d}.png") for i in range(len(frames))]
    for path, frame in zip(paths, frames):
        cv2.imwrite(path, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return paths


def test_a_style_learned_from_keyframes_trains_through_their_abstraction(tmp_path):
    """Keyframes painted by an abstraction itself: the fit finds it before training, and
    training goes through it. The untrained model outputs its input, so through the
    abstraction it matches the painted frames from the first step (but for the crops' borders),
    where without it the keyframe loss would be the frames' whole difference."""
    frames = [scene(i, seed=1, size=(256, 192)) for i in range(8)]
    look = models.Abstraction(radius=4, outline=0.45)
    with torch.no_grad():
        painted = to_images(look(torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2) / 255))
    clip = written(tmp_path, "footage", frames)
    keyframes = [KeyframeSpec(clip, i, p) for i, p in
                 zip((1, 6), written(tmp_path, "painted", [painted[1], painted[6]]))]
    job = TrainJob(style=[], content=[], keyframes=keyframes, steps=1, crop=96, batch=2, seed=0,
                   out=str(tmp_path / "k.ganstyle"))
    reporter = Logged()
    trainer = Trainer(job, reporter, CancelToken())
    try:
        trainer.build(trainer.prepare_work_dir())  # the first step, before the colour fit
        losses = trainer.train_step()
    finally:
        trainer.close()
    assert trainer.arch["abstraction"] == {"radius": 4, "outline": 0.45}
    assert any(m.startswith("abstraction fitted to the keyframes") for m in reporter.messages)
    difference = np.abs(np.stack(frames, dtype=float) - painted).mean() / 255
    keyframe_weight = trainer.settings.keyframe_weight  # the loss is weight x mean |diff|
    assert losses["keyframe"] < 0.3 * keyframe_weight * difference
    assert all(torch.isfinite(p).all() for p in trainer.gen.parameters())


@pytest.fixture(scope="module")
def cartoon_style(tmp_path_factory):
    """A style learned unpaired from a stylized clip (PNG frames) for 12 steps."""
    folder = tmp_path_factory.mktemp("cartoon")
    style = written(folder, "style", [cartoon(scene(i, seed=2)) for i in range(8)])
    footage = written(folder, "footage", [scene(i, seed=1) for i in range(8)])
    out = str(folder / "cartoon.ganstyle")
    train(TrainJob(style=[SourceSpec(style)], content=[SourceSpec(footage)], out=out, steps=12,
                   crop=32, batch=2, seed=0), Reporter(), CancelToken())
    return out


def test_a_style_learned_from_a_cartoon_clip_draws_its_lines(cartoon_style):
    info = read_style_info(cartoon_style)
    assert info.arch["version"] == 7 and info.arch["abstraction"]["outline"] > 0
    held_out = np.stack([scene(i, seed=3) for i in range(3)])  # never seen
    stylizer, _ = models.load_stylizer(cartoon_style, CPU, torch.float32)
    with torch.no_grad():
        out = to_images(stylizer(torch.from_numpy(held_out).permute(0, 3, 1, 2).float() / 255))
    assert gap_closure(out, np.stack([cartoon(f) for f in held_out]), held_out) > 0.2
    # the lines: the output is darker than the footage where the filter's edges are
    edges = F.max_pool2d(torch.from_numpy(cv2.Canny(held_out[0], 50, 150)[None].astype(
        np.float32)), 3, 1, 1)[0].numpy() > 0
    assert out[0][edges].mean() < held_out[0][edges].mean() - 10


def test_the_colour_path_learns_from_the_colours_of_regions_not_of_their_outlines(tmp_path):
    """Frames of flat regions with black outlines: the pixels the colour match draws leave the
    outlines out, so that it does not learn to darken whole regions; so do the painted pixels
    of keyframes (where an abstraction draws the lines after the colour path)."""
    paths = []
    for i in range(3):
        frame = np.full((120, 160, 3), 150, np.uint8)
        cv2.rectangle(frame, (20 + i, 20), (100, 90), (40, 160, 220), -1)
        cv2.rectangle(frame, (20 + i, 20), (100, 90), (0, 0, 0), 1)
        paths.append(str(tmp_path / f"{i}.png"))
        cv2.imwrite(paths[-1], frame)
    pool = FramePool([SourceSpec(paths)], np.random.default_rng(0), Reporter(), "style")
    black = [(pixels.max(axis=1) < 30).mean()
             for pixels in (pool.pixels(20000), pool.region_pixels(20000))]
    assert black[0] > 0.01 and black[1] < 0.001
    # keyframes painted as their footage frames with a black outline on a region's edge: away
    # from the outline, the painted pixels drawn are their footage's, at the same positions
    footage = [cv2.rectangle(scene(i, seed=4), (30, 25), (110, 95), (40, 160, 220), -1)
               for i in range(3)]  # 160 x 120, as the outlined frames
    painted = [cv2.rectangle(f.copy(), (30, 25), (110, 95), (0, 0, 0), 1) for f in footage]
    clip, painted_paths = written(tmp_path, "footage", footage), written(tmp_path, "p", painted)
    pairs = KeyframePairs([KeyframeSpec(clip, i, p) for i, p in enumerate(painted_paths)],
                          np.random.default_rng(0))
    black = [(targets.max(axis=1) < 30).mean()
             for _, targets in (pairs.pixels(20000), pairs.region_pixels(20000))]
    assert black[0] > 0.01 and black[1] < 0.001
    inputs, targets = pairs.region_pixels(20000)
    assert np.array_equal(inputs, targets)
