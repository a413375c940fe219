"""Generator presets, tiling-safe inference, norm folding, the discriminator, style loading."""

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from gan import device as device_mod
from gan import models, stylefile
from gan.protocol import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def active_generator(preset="draft", seed=0):
    """A generator whose every layer does something (the presets start as the identity)."""
    torch.manual_seed(seed)
    gen = models.build_generator(models.generator_arch(preset))
    for module in gen.modules():
        if isinstance(module, nn.Conv2d):
            module.reset_parameters()
    return gen.eval()


def test_arch_is_json_and_rebuilds():
    arch = models.generator_arch("draft")
    assert json.loads(json.dumps(arch)) == arch
    gen = models.build_generator(arch)
    assert gen.arch == arch
    sizes = [sum(p.numel() for p in models.build_generator(models.generator_arch(p)).parameters())
             for p in ("draft", "standard", "high")]
    assert sizes[0] < sizes[1] < sizes[2]
    with pytest.raises(UserError):
        models.generator_arch("huge")


def test_paired_arch_needs_version_2_and_starts_as_the_identity():
    """Models for painted keyframes (full-band residual, detail gain) are version 2, so that an
    older add-on refuses them instead of running them wrongly; other models stay version 1."""
    assert models.generator_arch("draft")["version"] == 1
    arch = models.generator_arch("draft", paired=True)
    assert arch["version"] == 2 and arch["full_band"] and arch["detail_gain"]
    gen = models.build_generator(arch).eval()
    x = torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        assert torch.allclose(gen(x), x, atol=1e-6)
        gen.decoder[-1].bias.copy_(torch.tensor([0.1, 0.0, 0.0, -1.0]))
        y = gen(x)
    # the full-band residual shifts red everywhere; gain -1 removes the fine detail
    assert torch.allclose(y[:, 0].mean(), (x[:, 0] + 0.1).clamp(0, 1).mean(), atol=0.02)
    assert y[:, 1].std() < 0.5 * x[:, 1].std()


def test_a_skip_needs_version_6_carries_pixel_detail_and_scales_with_the_texture():
    """The skip (for an artist's keyframes) brings the stem's full-size features to the
    output: unlike the path through 1/4 resolution, it can draw a one-pixel line where the
    input has an edge. It starts as "add nothing", and scale_texture scales it too."""
    arch = models.generator_arch("draft", paired=True, skip=True)
    assert arch["version"] == 6 and arch["skip"] is True
    with pytest.raises(UserError, match="skip"):
        models.build_generator({**arch, "skip": 1})
    gen = models.build_generator(arch).eval()
    x = torch.full((1, 3, 32, 32), 0.5)
    x[..., 16:] = 0.8  # a vertical edge between columns 15 and 16
    moved = torch.roll(x, 1, dims=3)  # the same edge one pixel to the right (and at the border)
    with torch.no_grad():
        assert torch.equal(gen(x), x)
        torch.manual_seed(0)
        gen.skip.weight.normal_(0, 0.05)
        gen.skip.weight[3] = 0  # the detail gain's channel: its high-pass reaches further
        residual = gen.texture(x)
        # the residual tells the edges apart, near them only: the stem's 7x7 and the skip's
        # 3x3 reach 4 pixels
        apart = (residual - gen.texture(moved)).abs().amax(dim=(0, 1, 2)) > 1e-4
        assert apart[12:21].all() and not apart[5:12].any() and not apart[21:].any()
        gen.scale_texture(2.0)
        assert torch.allclose(gen.texture(x), 2 * residual, atol=1e-6)


def test_a_texture_scale_needs_version_3_and_is_used_by_the_stylizer(tmp_path):
    """A model whose texture path was trained on reduced footage says so (version 3: older
    add-ons refuse it), and load_stylizer runs its texture path at that scale, times the
    user's stroke scale."""
    arch = models.generator_arch("draft", paired=True, texture_scale=2.0)
    assert arch["version"] == 3 and arch["texture_scale"] == 2.0
    path = str(tmp_path / "scaled.ganstyle")
    stylefile.save_style(path, arch=arch, state_dict=models.build_generator(arch).state_dict(),
                         meta={"name": "scaled"}, thumbnail_rgb=None)
    with pytest.raises(UserError):
        models.build_generator({**arch, "texture_scale": 0.5})
    for stroke_scale, expected in ((1.0, 2.0), (1.5, 3.0)):
        model, _ = models.load_stylizer(path, torch.device("cpu"), torch.float32, stroke_scale)
        assert isinstance(model, models.StrokeScaled) and model.scale == expected
    plain = str(tmp_path / "plain.ganstyle")
    plain_arch = models.generator_arch("draft")
    stylefile.save_style(plain, arch=plain_arch,
                         state_dict=models.build_generator(plain_arch).state_dict(),
                         meta={"name": "plain"}, thumbnail_rgb=None)
    model, _ = models.load_stylizer(plain, torch.device("cpu"), torch.float32)
    assert isinstance(model, models.Generator)


@pytest.mark.parametrize("change", [{"type": "other"}, {"ngf": 100000}, {"blocks": "6"},
                                    {"version": 99}, {"full_band": 1}, {"detail_gain": "yes"},
                                    {"texture_scale": "2"}])
def test_untrusted_arch_is_refused(change):
    with pytest.raises(UserError):
        models.build_generator({**models.generator_arch("draft"), **change})


def test_no_layers_that_break_tiling_or_checkerboard():
    gen = models.build_generator(models.generator_arch("high"))
    banned = (nn.ConvTranspose2d, nn.InstanceNorm2d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)
    assert not any(isinstance(m, banned) for m in gen.modules())


def test_new_generator_is_the_identity():
    gen = models.build_generator(models.generator_arch("draft")).eval()
    x = torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        assert torch.allclose(gen(x), x, atol=1e-6)


def test_any_size_in_and_out_of_range():
    gen = active_generator()
    with torch.no_grad():
        for h, w in [(37, 53), (64, 64), (17, 100)]:
            y = gen(torch.rand(2, 3, h, w))
            assert y.shape == (2, 3, h, w)
            assert 0.0 <= y.min() and y.max() <= 1.0


def test_tile_with_margin_equals_whole_frame():
    """A crop that keeps `receptive_margin` pixels of context around a region, placed on the
    alignment grid, gives exactly the whole frame's pixels in that region."""
    gen = active_generator()
    margin, align = gen.receptive_margin, gen.alignment
    assert margin % align == 0 and margin > 50
    x = torch.rand(1, 3, 2 * margin + 64, 2 * margin + 96)
    with torch.no_grad():
        whole = gen(x)
        tile = gen(x[:, :, align:align + margin * 2 + 32, 2 * align:2 * align + margin * 2 + 40])
    region = (slice(None), slice(None), slice(margin, margin + 32), slice(margin, margin + 40))
    inner_whole = whole[:, :, align:, 2 * align:][region]
    assert torch.allclose(tile[region], inner_whole, atol=1e-5)


def test_batch_does_not_change_a_frame():
    gen = active_generator()
    x = torch.rand(3, 3, 48, 64)
    with torch.no_grad():
        assert torch.allclose(gen(x)[1:2], gen(x[1:2]), atol=1e-5)


def test_prepare_for_inference():
    gen = models.prepare_for_inference(active_generator(), torch.device("cpu"), torch.bfloat16)
    assert not gen.training
    assert all(not p.requires_grad and p.dtype == torch.bfloat16 for p in gen.parameters())
    conv = gen.encoder[0][0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        y = gen(torch.rand(1, 3, 32, 48, dtype=torch.bfloat16))
    assert y.shape == (1, 3, 32, 48)


def test_patch_discriminator_sees_70_pixel_patches():
    disc = models.build_discriminator(ndf=8)
    scores = disc(torch.rand(2, 3, 256, 256))
    assert scores.shape == (2, 1, 30, 30)  # pix2pix's 70x70 PatchGAN on 256 px
    # one score depends on a 70x70 window only
    x = torch.rand(1, 3, 128, 128, requires_grad=True)
    disc(x)[0, 0, 5, 5].backward()
    rows = torch.nonzero(x.grad.abs().sum((0, 1, 3)))
    assert rows.max() - rows.min() + 1 <= 70


def test_load_generator_round_trip_and_bad_files(tmp_path):
    gen = active_generator()
    path = str(tmp_path / "s.ganstyle")
    stylefile.save_style(path, arch=gen.arch, state_dict=gen.state_dict(), meta={"name": "s"})
    loaded, info = models.load_generator(path, torch.device("cpu"), torch.float32)
    assert info.meta["name"] == "s"
    x = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        assert torch.allclose(loaded(x), gen(x), atol=1e-6)
    state = gen.state_dict()
    missing = str(tmp_path / "missing.ganstyle")
    stylefile.save_style(missing, arch=gen.arch, meta={},
                         state_dict={k: v for k, v in state.items() if "decoder" not in k})
    with pytest.raises(UserError):
        models.load_generator(missing, torch.device("cpu"), torch.float32)
    wrong = str(tmp_path / "wrong.ganstyle")
    stylefile.save_style(wrong, arch={**gen.arch, "ngf": 8}, state_dict=state, meta={})
    with pytest.raises(UserError):
        models.load_generator(wrong, torch.device("cpu"), torch.float32)


def test_device_choice():
    assert device_mod.pick_device("cpu") == torch.device("cpu")
    mps = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    expected = "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    assert device_mod.pick_device("auto").type == expected  # the best device this machine has
    if torch.cuda.is_available():
        assert device_mod.pick_device("cuda") == torch.device("cuda")
    if not mps:
        with pytest.raises(UserError, match="mps"):
            device_mod.pick_device("mps")
    with pytest.raises(UserError):
        device_mod.pick_device("tpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count:
        assert device_mod.pick_device(f"cuda:{count - 1}") == torch.device(f"cuda:{count - 1}")
    with pytest.raises(UserError, match=f"cuda:{count}"):
        device_mod.pick_device(f"cuda:{count}")  # one more GPU than there is
    for wrong in ("cuda:", "cuda:x", "cuda:01", "cuda:-1"):
        with pytest.raises(UserError, match="unknown device"):
            device_mod.pick_device(wrong)


def test_a_missing_gpu_is_refused_and_auto_falls_back():
    """With no CUDA GPU visible (CUDA_VISIBLE_DEVICES empty, so this runs on a GPU machine
    too), "cuda" and "cuda:0" are refused in one line and "auto" takes what is there."""
    code = ("from gan import device\n"
            "from gan.protocol import UserError\n"
            "for name in ('cuda', 'cuda:0'):\n"
            "    try:\n"
            "        device.pick_device(name)\n"
            "    except UserError as exc:\n"
            "        print(exc)\n"
            "print(device.pick_device('auto').type)\n")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [f"device {name!r} was asked for, but this torch has no usable CUDA GPU"
                         for name in ("cuda", "cuda:0")], lines
    assert lines[2] in ("mps", "cpu") and len(lines) == 3, lines


def test_dtype_choice(monkeypatch):
    cpu = torch.device("cpu")
    assert device_mod.pick_dtype(torch.device("mps")) == torch.float32
    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: True)
    assert device_mod.pick_dtype(cpu) == torch.bfloat16
    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: False)
    assert device_mod.pick_dtype(cpu) == torch.float32


def smooth_picture(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A picture without pixel-fine detail (so that resizing it loses almost nothing)."""
    torch.manual_seed(seed)
    coarse = torch.rand(1, 3, max(2, height // 16), max(2, width // 16))
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic",
                                           align_corners=False).clamp(0, 1)


def test_stroke_scale_enlarges_the_strokes_with_the_picture():
    """Stylizing a picture enlarged 2x with stroke scale 2 gives the enlarged result of
    stylizing the picture itself: the strokes keep their size relative to the picture."""
    gen = active_generator()
    gen.arch = dict(gen.arch)
    picture = smooth_picture(96, 128)
    enlarged = torch.nn.functional.interpolate(picture, scale_factor=2, mode="bilinear",
                                               align_corners=False)
    with torch.no_grad():
        small = gen(picture)
        scaled = models.StrokeScaled(gen, 2.0)(enlarged)
        plain = gen(enlarged)
    expected = torch.nn.functional.interpolate(small, scale_factor=2, mode="bilinear",
                                               align_corners=False)
    assert scaled.shape == enlarged.shape
    error_scaled = (scaled - expected).abs().mean()
    error_plain = (plain - expected).abs().mean()
    assert error_scaled < 0.3 * error_plain


def test_stroke_scale_keeps_the_colour_path_at_full_size():
    """Only the texture path is resized: a generator whose texture path adds nothing gives
    the same pixels at every stroke scale (no blur from the resizing)."""
    torch.manual_seed(0)
    gen = models.build_generator(models.generator_arch("draft")).eval()
    for module in gen.colour.modules():
        if isinstance(module, nn.Conv2d):
            module.reset_parameters()
    x = torch.rand(1, 3, 64, 80)
    with torch.no_grad():
        for scale in (0.5, 2.0, 3.0):
            assert torch.allclose(models.StrokeScaled(gen, scale)(x), gen(x), atol=1e-6)


def test_stroke_scaled_tiles_equal_the_whole_frame():
    """Its margin covers the larger context, so the stylizer's tiles stay seamless."""
    gen = active_generator()
    scaled = models.StrokeScaled(gen, 2.0)
    margin, align = scaled.receptive_margin, scaled.alignment
    assert margin >= 2 * gen.receptive_margin
    x = smooth_picture(2 * margin + 64, 2 * margin + 64, seed=1)
    with torch.no_grad():
        whole = scaled(x)
        tile = scaled(x[:, :, 2 * align:2 * align + 2 * margin + 32, :2 * margin + 32])
    inner = (slice(None), slice(None), slice(margin, margin + 32), slice(margin, margin + 32))
    assert (tile[inner] - whole[:, :, 2 * align:][inner]).abs().max() < 0.02
