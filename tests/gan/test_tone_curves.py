"""Tone curves: the per-channel curves fitted after training give the output the style's
distribution of each channel exactly, so that a style learned from a posterized clip posterizes
(the colour path alone only softens the tones)."""

import json
import os

import cv2
import numpy as np
import pytest
import torch

from gan import models, tone_curves
from gan.images import to_images
from gan.metrics import gap_closure
from gan.protocol import CancelToken, KeyframeSpec, Reporter, SourceSpec, TrainJob
from gan.stylefile import read_style_info
from gan.train import CHECKPOINT_NAME, load_checkpoint, train

LEVELS = np.array([32, 96, 160, 224])


def posterize(rgb: np.ndarray) -> np.ndarray:
    return (rgb // 64 * 64 + 32).astype(np.uint8)


def footage_frame(i: int, seed: int) -> np.ndarray:
    """RGB 96 x 64: smooth colour fields over the whole range and a moving disc."""
    rng = np.random.default_rng(seed * 1000 + i)
    image = cv2.resize(rng.integers(0, 256, (4, 6, 3), dtype=np.uint8), (96, 64),
                       interpolation=cv2.INTER_CUBIC)
    cv2.circle(image, (12 + 5 * i, 30), 10, tuple(int(v) for v in rng.integers(0, 256, 3)), -1)
    return image


def on_levels(image: np.ndarray, tolerance: int = 8) -> float:
    """The share of the values within `tolerance` of a posterize level."""
    distance = np.abs(image[..., None].astype(int) - LEVELS).min(-1)
    return float((distance <= tolerance).mean())


def write_pngs(folder, name: str, frames: list[np.ndarray]) -> list[str]:
    paths = [str(folder / f"{name}_{i:02d}.png") for i in range(len(frames))]
    for path, frame in zip(paths, frames):
        cv2.imwrite(path, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return paths


def test_fitted_curves_carry_each_channel_onto_the_style_distribution():
    rng = np.random.default_rng(0)
    ours = torch.from_numpy(rng.random((20000, 3)))
    same = tone_curves.fit_curves(ours, torch.from_numpy(rng.random((30000, 3))))
    assert (same - torch.linspace(0, 1, models.TONE_KNOTS)).abs().max() < 0.02  # ~ identity
    # to a posterized style: a staircase onto its four levels
    style = torch.from_numpy(posterize(rng.integers(0, 256, (30000, 3))) / 255.0)
    curves = models.ToneCurves()
    curves.values.copy_(tone_curves.fit_curves(ours, style))
    values = rng.integers(0, 256, (1, 3, 40, 40)).astype(np.uint8)
    out = to_images(curves(torch.from_numpy(values / 255.0).float()))
    expected = posterize(values.transpose(0, 2, 3, 1))
    # exact but within a level or two of a step (the knots are one 8-bit level apart)
    assert np.mean(out == expected) > 0.97 and on_levels(out, 0) > 0.97


def test_tone_curves_start_as_the_identity_and_interpolate_between_knots():
    curves = models.ToneCurves()
    x = torch.rand(2, 3, 17, 19).contiguous(memory_format=torch.channels_last)
    assert torch.allclose(curves(x), x, atol=1e-6)
    curves.values[1] = curves.values[1] ** 2  # channel 1 squared at the knots
    y = curves(x)
    assert torch.allclose(y[:, 0], x[:, 0], atol=1e-6)
    assert torch.allclose(y[:, 1], x[:, 1] ** 2, atol=1e-5)  # linear between close knots
    assert curves(x.to(torch.bfloat16)).dtype == torch.bfloat16


def test_a_model_with_tone_curves_needs_version_5():
    arch = models.with_tone_curves(models.generator_arch("draft"))
    assert arch["version"] == 5 and arch["tone_curves"] is True
    assert models.with_tone_curves(models.generator_arch("draft", skip=True))["version"] == 6
    assert "tone.values" in models.build_generator(arch).state_dict()
    assert "tone.values" not in models.build_generator(models.generator_arch("draft")).state_dict()
    with pytest.raises(models.UserError, match="tone_curves"):
        models.build_generator({**arch, "tone_curves": "yes"})


@pytest.fixture(scope="module")
def posterized(tmp_path_factory):
    """A style learned unpaired from posterized frames (PNG: lossless levels) for 12 steps."""
    folder = tmp_path_factory.mktemp("posterized")
    style_paths = write_pngs(folder, "style", [posterize(footage_frame(i, seed=2))
                                               for i in range(10)])
    footage_paths = write_pngs(folder, "footage", [footage_frame(i, seed=1) for i in range(10)])
    out = str(folder / "posterized.ganstyle")
    train(TrainJob(style=[SourceSpec(style_paths)], content=[SourceSpec(footage_paths)], out=out,
                   steps=12, crop=32, batch=2, seed=0), Reporter(), CancelToken())
    return out


def test_a_style_learned_from_a_posterized_clip_posterizes(posterized):
    info = read_style_info(posterized)
    assert info.arch["tone_curves"]
    held_out = np.stack([footage_frame(i, seed=3) for i in range(3)])  # never seen
    x = torch.from_numpy(held_out).permute(0, 3, 1, 2).float() / 255
    gen, _ = models.load_generator(posterized, torch.device("cpu"), torch.float32)
    state = load_checkpoint(os.path.join(posterized + ".work", CHECKPOINT_NAME))
    trained = models.build_generator(json.loads(state["arch"]))  # the same weights, no curves
    trained.load_state_dict({k[len("module."):]: v for k, v in state["ema"].items()
                             if k.startswith("module.")})
    with torch.no_grad():
        toned, untoned = to_images(gen(x)), to_images(trained.eval()(x))
    target = posterize(held_out)
    # measured: 0.99 of the values on a level with the curves, 0.26 without; GC 0.61 and -0.02
    assert on_levels(toned) > 0.9 and on_levels(untoned) < 0.5
    assert gap_closure(toned, target, held_out) > 0.4 > 0.1 > gap_closure(untoned, target, held_out)


def test_the_curves_apply_with_a_stroke_scale(posterized):
    gen, _ = models.load_stylizer(posterized, torch.device("cpu"), torch.float32, stroke_scale=2.0)
    assert isinstance(gen, models.StrokeScaled)
    x = torch.from_numpy(footage_frame(0, seed=3)[None]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        assert on_levels(to_images(gen(x))) > 0.9


def test_keyframe_curves_are_kept_only_where_they_bring_the_output_closer_to_the_paintings():
    """An untrained generator outputs its input. Posterized keyframes: the curves take its output
    onto the four levels, so they are kept. Keyframes whose look is dark outlines: the curves
    would darken the output's darkest pixels, not the outlines, so there are none."""
    generator = models.build_generator(models.generator_arch("draft", paired=True))
    frames = [footage_frame(i, seed=4) for i in range(3)]
    toned = tone_curves.fitted_to_keyframes(generator, generator, frames,
                                            [posterize(f) for f in frames], torch.device("cpu"))
    assert toned is not None and toned.arch["tone_curves"]
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        assert on_levels(to_images(toned(x))) > 0.9
    outlined = [cv2.rectangle(f.copy(), (20, 10), (70, 50), (0, 0, 0), 2) for f in frames]
    assert tone_curves.fitted_to_keyframes(generator, generator, frames, outlined,
                                           torch.device("cpu")) is None


def test_a_style_learned_from_posterized_keyframes_posterizes(tmp_path):
    frames = [footage_frame(i, seed=5) for i in range(8)]
    clip = write_pngs(tmp_path, "footage", frames)
    painted = write_pngs(tmp_path, "painted", [posterize(frames[i]) for i in (1, 6)])
    keyframes = [KeyframeSpec(clip, i, p) for i, p in zip((1, 6), painted)]
    out = train(TrainJob(style=[], content=[], keyframes=keyframes,
                         out=str(tmp_path / "k.ganstyle"), steps=12, crop=32, batch=2, seed=0),
                Reporter(), CancelToken())
    assert read_style_info(out).arch["tone_curves"]
    held_out = np.stack([footage_frame(i, seed=6) for i in range(3)])  # never seen
    gen, _ = models.load_generator(out, torch.device("cpu"), torch.float32)
    with torch.no_grad():
        styled = to_images(gen(torch.from_numpy(held_out).permute(0, 3, 1, 2).float() / 255))
    assert on_levels(styled) > 0.9
