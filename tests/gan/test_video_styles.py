"""Video-grade styles: optical flow and the temporal term, stabilized stylizing, painted
keyframes (paired training), single-image styles. Clips are small synthetic videos made here."""

import os
import threading

import cv2
import numpy as np
import pytest
import torch

from gan import models
from gan.__main__ import main as cli_main
from gan.flow import trusted_flow, warp
from gan.metrics import gap_closure, warping_error
from gan.protocol import (CancelToken, KeyframeSpec, Reporter, SourceSpec, StylizeJob, TrainJob,
                          UserError, job_from_dict)
from gan.sampling import FakeMotion, FramePool, MotionPairs
from gan.stylefile import read_style_info
from gan.stabilize import Stabilizer
from gan.stylize import stylize
from gan.train import train

WIDTH, HEIGHT = 96, 64


class Quiet(Reporter):
    def __init__(self):
        self.events = []

    def emit(self, event, **fields):
        self.events.append((event, fields))


def panorama(seed=0):
    """A wide textured picture; a pan over it makes a clip with known motion."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (HEIGHT // 4, 60, 3), dtype=np.uint8)
    image = cv2.resize(small, (240, HEIGHT), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(-25, 26, image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)


def pan_frame(i, picture):
    return np.ascontiguousarray(picture[:, 2 * i:2 * i + WIDTH])  # the picture moves 2 px left


def grade(rgb):
    x = rgb.astype(np.float32) / 255
    x = x * x * (3 - 2 * x)
    x = x * np.array([1.15, 0.95, 0.6], np.float32) + np.array([0.05, 0.02, 0.1], np.float32)
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)


def write_png(path, rgb):
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return str(path)


def read_png(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def pan(tmp_path_factory):
    """An image sequence (lossless, so flow and warps are checked exactly) of a 2 px/frame pan."""
    folder = tmp_path_factory.mktemp("pan")
    picture = panorama()
    paths = [write_png(folder / f"{i:04d}.png", pan_frame(i, picture)) for i in range(24)]
    return str(folder), paths, picture


# -- flow ---------------------------------------------------------------------------------------

def test_flow_brings_the_previous_frame_onto_the_current_one(pan):
    _, paths, _ = pan
    previous, frame = read_png(paths[4]), read_png(paths[5])
    flow, mask = trusted_flow(frame, previous)
    inner = np.s_[8:-8, 8:-8]
    assert np.median(flow[inner][..., 0]) == pytest.approx(2.0, abs=0.2)  # was 2 px to the right
    assert abs(np.median(flow[inner][..., 1])) < 0.2
    warped = warp(previous, flow).astype(int)
    trusted = mask > 0.5
    assert trusted[inner].mean() > 0.8
    assert np.abs(warped - frame)[trusted].mean() < 4  # vs ~60 without motion compensation
    assert np.abs(previous.astype(int) - frame)[trusted].mean() > 20


def test_motion_pairs_give_aligned_crops(pan):
    folder, _, _ = pan
    rng = np.random.default_rng(0)
    pool = FramePool([SourceSpec(folder)], rng, Quiet(), "footage", capacity=4)
    pairs = MotionPairs(pool, rng, capacity=2)
    assert pairs
    frames, previous, flows, masks = pairs.crops(3, 32)
    assert frames.shape == previous.shape == (3, 32, 32, 3) and flows.shape == (3, 32, 32, 2)
    for frame, prev, flow, mask in zip(frames, previous, flows, masks):
        trusted = mask > 0.5
        assert trusted.mean() > 0.5
        error = np.abs(warp(prev, flow).astype(int) - frame)[trusted].mean()
        assert error < 6


def test_frame_pool_decodes_ahead_on_a_thread_and_keeps_the_same_frames(pan, tmp_path,
                                                                       monkeypatch):
    """The frame the next refresh takes is decoded on a background thread; the pool's frames
    and random draws stay exactly those of reading it when needed, unreadable files included."""
    _, paths, _ = pan
    folder = tmp_path / "footage"
    folder.mkdir()
    for i, path in enumerate(paths[:12]):
        (folder / f"{i:04d}.png").write_bytes(open(path, "rb").read())
    (folder / "0005.png").write_bytes(b"not a picture")  # unreadable: dropped, with a log line

    def run(reporter):
        rng = np.random.default_rng(7)
        pool = FramePool([SourceSpec(str(folder))], rng, reporter, "footage", capacity=4)
        read, threads = pool.sources[0].read, []
        pool.sources[0].read = lambda index: threads.append(threading.current_thread()) or read(index)
        history = []
        for _ in range(30):
            pool.refresh()
            history.append(np.stack(pool.frames))
        pool.close()
        return history, rng.integers(1 << 30), threads

    ahead, draw, threads = run(Quiet())
    assert any(thread is not threading.main_thread() for thread in threads)
    with monkeypatch.context() as patch:  # the reference: every frame read when it is needed
        patch.setattr(FramePool, "_prefetch", lambda self: None)
        reporter = Quiet()
        plain, plain_draw, plain_threads = run(reporter)
    assert all(thread is threading.main_thread() for thread in plain_threads)
    assert draw == plain_draw and len(ahead) == len(plain)
    assert all(np.array_equal(a, b) for a, b in zip(ahead, plain))
    assert any("skipping unreadable footage frames" in f.get("message", "")
               for _, f in reporter.events)

def test_a_still_image_has_no_motion_pairs(tmp_path):
    still = write_png(tmp_path / "still.png", panorama()[:, :WIDTH])
    rng = np.random.default_rng(0)
    pool = FramePool([SourceSpec(still)], rng, Quiet(), "footage")
    assert not MotionPairs(pool, rng)


# -- training with the temporal term -------------------------------------------------------------

def train_job(out, style, content, **fields):
    values = dict(style=style, content=content, out=str(out), steps=4, crop=32, batch=4, seed=0)
    values.update(fields)
    return TrainJob(**values)


def test_temporal_term_is_trained_and_recorded(pan, tmp_path):
    folder, paths, picture = pan
    style = write_png(tmp_path / "style.png", grade(picture))
    reporter = Quiet()
    path = train(train_job(tmp_path / "t.ganstyle", [SourceSpec(style)], [SourceSpec(folder)],
                           temporal_weight=5.0, steps=2), reporter, CancelToken())
    losses = [f["losses"] for e, f in reporter.events if e == "progress"][-1]
    assert losses["temporal"] > 0
    assert read_style_info(path).meta["settings"]["temporal_weight"] == 5.0

    reporter = Quiet()
    train(train_job(tmp_path / "off.ganstyle", [SourceSpec(style)], [SourceSpec(folder)],
                    temporal_weight=0.0, steps=1), reporter, CancelToken())
    assert "temporal" not in [f["losses"] for e, f in reporter.events if e == "progress"][-1]


def test_temporal_term_without_consecutive_frames_uses_made_up_motion(pan, tmp_path):
    folder, paths, picture = pan
    style = write_png(tmp_path / "style.png", grade(picture))
    reporter = Quiet()
    every_third = SourceSpec(folder, [0, 3, 6, 9])  # no frame follows another
    train(train_job(tmp_path / "t.ganstyle", [SourceSpec(style)], [every_third], steps=2),
          reporter, CancelToken())
    logs = [f["message"] for e, f in reporter.events if e == "log"]
    assert any("made-up motion" in m for m in logs)
    losses = [f["losses"] for e, f in reporter.events if e == "progress"][-1]
    assert losses["temporal"] > 0


def test_made_up_motion_moves_a_crop_by_its_flow(pan):
    """ReReVST's pairs: the moved crop is the crop sampled at p + flow(p), up to the noise, on
    the pixels the mask keeps; the flows are smooth and differ from crop to crop."""
    folder, paths, picture = pan
    pool = FramePool([SourceSpec(folder, [0])], np.random.default_rng(3), Quiet(), "footage")
    try:
        motion = FakeMotion(pool, np.random.default_rng(4))
        frames, previous, flows, masks = motion.crops(3, 64)
    finally:
        pool.close()
    assert frames.shape == previous.shape == (3, 64, 64, 3) and flows.shape == (3, 64, 64, 2)
    for n in range(3):
        moved = warp(previous[n], flows[n]).astype(np.float32)
        kept = masks[n] > 0
        assert kept.mean() > 0.5
        error = np.abs(frames[n].astype(np.float32) - moved)[kept].mean()
        assert error < 3.0  # the noise, nothing else
        assert np.abs(flows[n]).max() > 1.0  # it does move
        assert np.abs(np.diff(flows[n], axis=0)).max() < 3.0  # smoothly: < 3 px per pixel
    assert not np.allclose(flows[0], flows[1])


# -- stabilized stylizing --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def flickering_style(tmp_path_factory):
    """A style whose texture path adds a pattern that depends on the frame's exact pixels: on a
    noisy pan it flickers, which is what stabilization must calm down."""
    folder = tmp_path_factory.mktemp("model")
    arch = models.generator_arch("draft")
    gen = models.build_generator(arch)
    torch.manual_seed(3)
    with torch.no_grad():
        for parameter in gen.decoder.parameters():
            parameter.normal_(0, 0.3)
    from gan.stylefile import save_style
    path = str(folder / "flicker.ganstyle")
    save_style(path, arch=arch, state_dict=gen.state_dict(), meta={"name": "flicker"},
               thumbnail_rgb=None)
    return path


def noisy_pan(folder, count=10):
    """The pan with fresh sensor noise on every frame (static pixels change a little)."""
    picture = panorama(seed=4)
    rng = np.random.default_rng(9)
    paths = []
    for i in range(count):
        frame = pan_frame(i, picture).astype(int) + rng.integers(-12, 13, (HEIGHT, WIDTH, 3))
        paths.append(write_png(folder / f"{i:04d}.png", np.clip(frame, 0, 255).astype(np.uint8)))
    return paths


def test_stabilize_reduces_the_warping_error(flickering_style, tmp_path):
    paths = noisy_pan(tmp_path)
    inputs = [read_png(p) for p in paths]
    errors = {}
    for strength in (0.0, 0.8):
        out = tmp_path / f"out{strength}"
        job = StylizeJob(model=flickering_style, input=SourceSpec(paths), output=str(out),
                         stabilize=strength, device="cpu")
        files = stylize(job, Quiet(), CancelToken())
        errors[strength] = warping_error([read_png(f) for f in files], inputs)
    assert errors[0.8] < 0.6 * errors[0.0]


def test_stabilize_leaves_the_first_frame_and_a_cut_alone(flickering_style, tmp_path):
    paths = noisy_pan(tmp_path, count=3)
    cut = write_png(tmp_path / "cut.png", np.full((HEIGHT, WIDTH, 3), 40, np.uint8))
    sequence = paths + [cut]
    plain = stylize(StylizeJob(model=flickering_style, input=SourceSpec(sequence),
                               output=str(tmp_path / "plain"), device="cpu"), Quiet(), CancelToken())
    steady = stylize(StylizeJob(model=flickering_style, input=SourceSpec(sequence),
                                output=str(tmp_path / "steady"), stabilize=0.9, device="cpu"),
                     Quiet(), CancelToken())
    assert np.array_equal(read_png(plain[0]), read_png(steady[0]))
    assert not np.array_equal(read_png(plain[1]), read_png(steady[1]))
    after_cut = np.abs(read_png(plain[3]).astype(int) - read_png(steady[3]))
    assert after_cut.mean() < 1.0  # new content is not blended with the previous shot



def test_stabilize_in_the_pipeline_equals_one_frame_after_the_other(flickering_style, tmp_path):
    """The pipeline measures motion on threads, batches ahead of the blending: the frames it
    writes must be those of the plain sequential Stabilizer, a size change included."""
    paths = noisy_pan(tmp_path, count=7)
    other_size = cv2.resize(read_png(paths[3]), (WIDTH + 16, HEIGHT))
    sequence = paths[:4] + [write_png(tmp_path / "wide.png", other_size)] + paths[4:]
    plain = stylize(StylizeJob(model=flickering_style, input=SourceSpec(sequence), batch=3,
                               output=str(tmp_path / "plain"), device="cpu"), Quiet(), CancelToken())
    steady = stylize(StylizeJob(model=flickering_style, input=SourceSpec(sequence), batch=3,
                                output=str(tmp_path / "steady"), stabilize=0.8, device="cpu"),
                     Quiet(), CancelToken())
    one_by_one = Stabilizer(0.8)
    blended = 0
    for source, styled, written in zip(sequence, plain, steady):
        expected = one_by_one(read_png(source), read_png(styled))
        assert np.array_equal(read_png(written), expected), os.path.basename(written)
        blended += not np.array_equal(expected, read_png(styled))
    assert blended == 5  # all but the first frame, the size change and the frame after it

# -- painted keyframes ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keyframe_clip(tmp_path_factory):
    """Footage (an MJPG video of moving colour fields) and two painted keyframes = grade()."""
    folder = tmp_path_factory.mktemp("keyframes")
    rng = np.random.default_rng(5)
    picture = cv2.resize(rng.integers(0, 256, (6, 20, 3), dtype=np.uint8), (240, HEIGHT),
                         interpolation=cv2.INTER_CUBIC)
    frames = [pan_frame(i, picture) for i in range(16)]
    clip = str(folder / "footage.avi")
    writer = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*"MJPG"), 10, (WIDTH, HEIGHT))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    from gan.frames import open_frames
    with open_frames(clip) as source:
        decoded = [frame for _, frame in source]
    painted = {i: write_png(folder / f"painted_{i}.png", grade(decoded[i])) for i in (2, 9)}
    return clip, decoded, painted


def test_keyframes_alone_teach_a_style(keyframe_clip, tmp_path):
    clip, decoded, painted = keyframe_clip
    keyframes = [KeyframeSpec(clip, i, p) for i, p in painted.items()]
    reporter = Quiet()
    path = train(TrainJob(style=[], content=[], keyframes=keyframes, out=str(tmp_path / "k.ganstyle"),
                          steps=12, crop=48, batch=4), reporter, CancelToken())
    losses = [f["losses"] for e, f in reporter.events if e == "progress"][-1]
    assert losses["keyframe"] > 0
    info = read_style_info(path)
    assert info.meta["keyframes"] == 2 and info.arch["full_band"] and info.arch["detail_gain"]
    assert info.arch["skip"]  # an artist's keyframes place each outline
    gen, _ = models.load_generator(path, torch.device("cpu"), torch.float32)
    held_out = np.stack([decoded[i] for i in (5, 13)])  # not painted
    with torch.no_grad():
        x = torch.from_numpy(held_out).permute(0, 3, 1, 2).float() / 255
        out = (gen(x).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
    assert gap_closure(out, np.stack([grade(f) for f in held_out]), held_out) > 0.5


def test_keyframes_with_an_unpaired_style_from_the_cli(keyframe_clip, tmp_path, capsys):
    clip, decoded, painted = keyframe_clip
    style = write_png(tmp_path / "style.png", grade(decoded[12]))
    out = tmp_path / "both.ganstyle"
    code = cli_main(["train", "--style", style, "--content", clip, "--keyframe", clip, "2",
                     painted[2], "--out", str(out), "--steps", "2", "--crop", "32", "--batch", "3",
                     "--temporal", "2"])
    assert code == 0, capsys.readouterr().err
    meta = read_style_info(str(out)).meta
    assert meta["keyframes"] == 1 and meta["sources"] == ["style.png", "painted_2.png"]


def test_keyframe_problems_are_one_clear_line(keyframe_clip, tmp_path):
    clip, decoded, painted = keyframe_clip
    wrong_shape = write_png(tmp_path / "square.png", grade(decoded[2])[:, :HEIGHT])
    cases = [
        (KeyframeSpec(clip, 99, painted[2]), "frame 99 does not exist"),
        (KeyframeSpec(clip, 2, str(tmp_path / "missing.png")), "missing.png"),
        (KeyframeSpec(clip, 2, wrong_shape), "64x64 but frame 2 of its footage is 96x64"),
    ]
    for spec, message in cases:
        job = TrainJob(style=[], content=[], keyframes=[spec], out=str(tmp_path / "x.ganstyle"),
                       steps=1)
        with pytest.raises(UserError, match=message) as caught:
            train(job, Quiet(), CancelToken())
        assert "\n" not in str(caught.value)
    assert not os.path.exists(tmp_path / "x.ganstyle")


def test_job_validation_of_the_new_fields():
    base = {"kind": "train", "out": "x.ganstyle", "steps": 1}
    with pytest.raises(UserError, match="'style' must be a non-empty list"):
        job_from_dict({**base, "style": [], "content": ["a.avi"]})
    job = job_from_dict({**base, "keyframes": [{"footage": "a.avi", "frame": 3,
                                                "painted": "p.png"}]})
    assert job.style == [] and job.content == [] and job.keyframes[0].frame == 3
    for bad in ({"footage": "a.avi", "frame": -1, "painted": "p.png"},
                {"footage": "a.avi", "frame": 1}, "p.png"):
        with pytest.raises(UserError, match="keyframe"):
            job_from_dict({**base, "keyframes": [bad]})
    with pytest.raises(UserError, match="temporal_weight"):
        job_from_dict({**base, "style": ["s.png"], "content": ["a.avi"], "temporal_weight": -1})
    with pytest.raises(UserError, match="stabilize"):
        job_from_dict({"kind": "stylize", "model": "m", "input": "a.avi", "output": "o",
                       "stabilize": 1.5})


# -- single-image styles --------------------------------------------------------------------------

def test_a_single_image_look_trains_a_style_that_applies(pan, tmp_path):
    """A graded still learned as a look (auto keyframes off: its colours, not its strokes)."""
    folder, paths, picture = pan
    painting = write_png(tmp_path / "painting.png", cv2.resize(grade(picture), (480, 128)))
    path = train(train_job(tmp_path / "painting.ganstyle", [SourceSpec(painting)],
                           [SourceSpec(folder)], steps=20, auto_keyframes=0), Quiet(),
                 CancelToken())
    files = stylize(StylizeJob(model=path, input=SourceSpec(folder, [20, 21]),
                               output=str(tmp_path / "out"), device="cpu"), Quiet(), CancelToken())
    inputs = np.stack([read_png(paths[i]) for i in (20, 21)])
    outputs = np.stack([read_png(f) for f in files])
    assert gap_closure(outputs, np.stack([grade(f) for f in inputs]), inputs) > 0.3


def test_frame_command_writes_the_exact_source_frame(keyframe_clip, tmp_path, capsys):
    clip, decoded, _ = keyframe_clip
    out = tmp_path / "frame 7 é.png"
    assert cli_main(["frame", "--input", clip, "--frame", "7", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert np.array_equal(read_png(out), decoded[7])
    before = out.read_bytes()
    assert cli_main(["frame", "--input", clip, "--frame", "8", "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before
    assert cli_main(["frame", "--input", clip, "--frame", "99", "--out", str(tmp_path / "x.png")]) == 1
    assert "frame 99 does not exist" in capsys.readouterr().err
