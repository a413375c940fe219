"""Stylizing: exact frame selection, mix 0 = input, seamless tiles and chunks, no overwrites,
clean cancel, clear errors."""

import os
import time

import cv2
import numpy as np
import pytest
import torch

from gan import models, stylefile, stylize as stylize_mod, tiling
from gan.device import pick_device
from gan.frames import FrameSourceError, open_frames, read_image
from gan.protocol import CancelToken, CancelledError, Reporter, SourceSpec, StylizeJob, UserError
from gan.stylize import FrameStylizer, Plan, stylize
from test_frames import index_frame, write_image, write_video

SIZE = (92, 60)  # (w, h): not multiples of 4


class Recorder(Reporter):
    def __init__(self):
        self.events = []

    def emit(self, event, **fields):
        self.events.append((event, fields))


class CancelAfter(CancelToken):
    """Asks to stop once `checks` batches have started."""

    def __init__(self, checks):
        super().__init__()
        self.checks = checks

    @property
    def requested(self):
        self.checks -= 1
        return self.checks < 0


def textured(i, size=SIZE):
    """A BGR frame with texture (so a generator has something to change) that spells i."""
    rng = np.random.default_rng(i)
    noise = cv2.resize(rng.integers(0, 256, (size[1] // 6, size[0] // 6, 3), dtype=np.uint8),
                       size, interpolation=cv2.INTER_CUBIC)
    return cv2.addWeighted(index_frame(i, *size), 0.6, noise, 0.4, 0)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A randomly initialised draft generator whose every layer is active (the presets start
    as the identity, which would make tile and mix tests meaningless)."""
    torch.manual_seed(0)
    arch = models.generator_arch("draft")
    generator = models.build_generator(arch)
    for module in generator.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.reset_parameters()
    path = str(tmp_path_factory.mktemp("style") / "random draft.ganstyle")
    stylefile.save_style(path, arch=arch, state_dict=generator.state_dict(),
                         meta={"name": "random", "preset": "draft"})
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("clip") / "clip ü.avi", count=24, make=textured,
                       size=SIZE)


def run(model, source, output, frames=None, cancel=None, **settings):
    job = StylizeJob(model=model, input=SourceSpec(source, frames), output=str(output), **settings)
    reporter = Recorder()
    return stylize(job, reporter, cancel or CancelToken()), reporter


def load(paths):
    return [read_image(p) for p in paths]


def test_frame_range_names_and_events(model, clip, tmp_path):
    paths, reporter = run(model, clip, tmp_path / "out", list(range(20, 8, -3)))
    names = ["frame_000020.png", "frame_000017.png", "frame_000014.png", "frame_000011.png"]
    assert [os.path.basename(p) for p in paths] == names
    assert sorted(os.listdir(tmp_path / "out")) == sorted(names)
    event, start = reporter.events[0]
    assert event == "start" and start["kind"] == "stylize" and start["total"] == 4
    assert start["device"] == pick_device("auto").type and start["dtype"] in ("bfloat16", "float32")
    assert start["threads"] == torch.get_num_threads()
    progress = [f for e, f in reporter.events if e == "progress"]
    assert progress[-1]["done"] == 4 and progress[-1]["fraction"] == 1.0
    assert all(k in progress[-1] for k in ("rate", "eta_s", "total"))
    styled = load(paths)
    assert all(img.shape == (SIZE[1], SIZE[0], 3) for img in styled)


def test_mix_zero_is_the_input_bit_exactly(model, tmp_path, monkeypatch):
    folder = tmp_path / "png sequence"
    folder.mkdir()
    sources = [write_image(folder / f"img{i}.png", textured(i)) for i in range(6)]
    monkeypatch.setattr(FrameStylizer, "from_job", None)  # the model must not even be loaded
    paths, reporter = run(model, str(folder), tmp_path / "out", [4, 1, 1, 5], mix=0.0,
                          first_number=100)
    assert [os.path.basename(p) for p in paths] == [
        "frame_000100.png", "frame_000101.png", "frame_000102.png", "frame_000103.png"]
    for path, index in zip(paths, [4, 1, 1, 5]):
        assert np.array_equal(read_image(path), read_image(sources[index]))


def test_mix_blends_between_input_and_style(model, clip, tmp_path):
    frames = [3, 4]
    original, _ = run(model, clip, tmp_path / "0", frames, mix=0.0)
    full, _ = run(model, clip, tmp_path / "1", frames, mix=1.0)
    half, _ = run(model, clip, tmp_path / "h", frames, mix=0.5)
    for o, f, h in zip(load(original), load(full), load(half)):
        assert np.abs(f.astype(int) - o).mean() > 10  # the style does change the frame
        expected = (o.astype(np.float64) + f) / 2
        assert np.abs(h - expected).max() <= 1.0


def test_chunks_concatenate_bit_exactly(model, clip, tmp_path):
    whole, _ = run(model, clip, tmp_path / "whole", list(range(0, 20)), batch=4)
    chunks = tmp_path / "chunks"  # two farm jobs writing into one folder
    first, _ = run(model, clip, chunks, list(range(0, 10)), batch=4)
    second, _ = run(model, clip, chunks, list(range(10, 20)), batch=4)
    assert [os.path.basename(p) for p in first + second] == [os.path.basename(p) for p in whole]
    for a, b in zip(first + second, whole):
        assert np.array_equal(read_image(a), read_image(b)), a


def test_tiles_match_whole_frame(model, tmp_path):
    image = write_image(tmp_path / "big.png", textured(7, size=(522, 303)))
    whole, _ = run(model, image, tmp_path / "whole")
    tiled, _ = run(model, image, tmp_path / "tiled", tile=64)  # raised to the model's minimum
    a, b = (img.astype(int) for img in load(whole + tiled))
    assert np.abs(a - load([image])[0]).mean() > 10
    difference = np.abs(a - b)
    assert difference.max() <= 2 and difference.mean() < 0.05


def test_tiling_plan():
    stylizer = FrameStylizer(torch.nn.Identity(), torch.device("cpu"), torch.float32,
                             margin=60, multiple=4, ngf=16)
    assert stylizer.margin == 60 and stylizer.plan(1080, 1920).tile is None
    huge = stylizer.plan(8640, 15360)  # 16K: more than fits at once: tiled automatically
    # 1024-px tiles, one per call: on a CPU a call of more than CPU_BATCH_PIXELS gains nothing
    assert huge == Plan(batch=1, tile=1024)
    assert FrameStylizer(torch.nn.Identity(), torch.device("cpu"), torch.float32, margin=64,
                         multiple=4, ngf=16, tile=100).plan(1080, 1920).tile == 260
    starts = tiling.tile_starts(1084, 400, 128)
    assert starts[0] == 0 and starts[-1] == 1084 - 400
    assert all(b - a <= 400 - 128 and a % 4 == 0 for a, b in zip(starts, starts[1:]))


def test_tiled_stylizer_blends_without_seams():
    """A generator that depends on position only through its input: tiles must recompose it."""
    stylizer = FrameStylizer(torch.nn.Sequential(torch.nn.AvgPool2d(3, 1, 1)),
                             torch.device("cpu"), torch.float32, margin=8, multiple=4, ngf=4,
                             tile=48)
    image = np.random.default_rng(0).integers(0, 256, (101, 133, 3), dtype=np.uint8)
    tiled = stylizer([image])[0].astype(int)
    stylizer.tile = None
    stylizer._plans.clear()
    whole = stylizer([image])[0].astype(int)
    assert np.abs(tiled - whole).max() <= 1


def test_jpeg_output(model, clip, tmp_path):
    paths, _ = run(model, clip, tmp_path / "jpg", [0, 1], format="jpg", mix=0.0)
    assert [os.path.basename(p) for p in paths] == ["frame_000000.jpg", "frame_000001.jpg"]
    with open(paths[0], "rb") as handle:
        assert handle.read(2) == b"\xff\xd8"


def test_never_overwrites(model, clip, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "frame_000003.png").write_bytes(b"keep me")
    with pytest.raises(UserError) as info:
        run(model, clip, out, list(range(0, 6)))
    message = str(info.value)
    assert "frame_000003.png" in message and "\n" not in message
    assert os.listdir(out) == ["frame_000003.png"]  # checked before any work
    assert (out / "frame_000003.png").read_bytes() == b"keep me"


def test_repeated_frames_need_positional_numbers(model, clip, tmp_path):
    with pytest.raises(UserError, match="frame 2 is asked for twice"):
        run(model, clip, tmp_path / "out", [1, 2, 2])
    paths, _ = run(model, clip, tmp_path / "out", [1, 2, 2], first_number=0)
    assert len(paths) == 3


def test_cancel_keeps_finished_frames_and_no_temp_files(model, clip, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(CancelledError):
        run(model, clip, out, list(range(24)), batch=2, cancel=CancelAfter(3))
    names = sorted(os.listdir(out))
    assert names == [f"frame_{i:06d}.png" for i in range(6)]  # 3 batches of 2, all complete
    for name in names:
        assert read_image(str(out / name)).shape == (SIZE[1], SIZE[0], 3)


def test_bad_inputs_are_user_errors(model, clip, tmp_path):
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    cases = [
        (dict(model=str(tmp_path / "missing.ganstyle")), "style file not found"),
        (dict(source=str(tmp_path / "missing.mov")), "not found"),
        (dict(frames=[0, 99]), "frame 99 does not exist"),
        (dict(output=str(not_a_folder)), "is a file, not a folder"),
    ]
    for overrides, expected in cases:
        args = dict(model=model, source=clip, output=str(tmp_path / "o"), frames=[0])
        args.update(overrides)
        with pytest.raises(UserError) as info:
            run(args["model"], args["source"], args["output"], args["frames"])
        assert expected in str(info.value) and "\n" not in str(info.value)
    assert not os.path.exists(tmp_path / "o")


def test_unreadable_frame_midway_stops_with_its_name(model, tmp_path):
    folder = tmp_path / "seq"
    folder.mkdir()
    for i in range(4):
        write_image(folder / f"f{i}.png", textured(i))
    (folder / "f2.png").write_bytes(b"broken")
    with pytest.raises(FrameSourceError, match="frame 2"):
        run(model, str(folder), tmp_path / "out", mix=0.0)
    leftovers = [n for n in os.listdir(tmp_path / "out") if n.startswith(".")]
    assert leftovers == []


def test_decoding_runs_a_bounded_distance_ahead(tmp_path):
    """Memory must not grow with the clip: the decoder waits for a slow model."""
    files = [write_image(tmp_path / f"{i}.png", textured(i, (16, 12))) for i in range(40)]
    decoded, lead = [], []

    class SlowModel:
        def plan(self, height, width):
            return Plan(batch=2, tile=None)

        def __call__(self, images):
            time.sleep(0.01)
            lead.append(len(decoded) - 2 * len(lead))
            return images

    with open_frames(files) as source:
        load = source._load
        source._load = lambda index: decoded.append(index) or load(index)
        paths = [str(tmp_path / "out" / f"{i}.png") for i in range(40)]
        os.makedirs(tmp_path / "out")
        written = stylize_mod._run_pipeline(source, SlowModel(), paths, "png", Recorder(),
                                            CancelToken())
    assert written == paths
    assert max(lead) <= 2 * 2 + 2 + 1  # queue of 2 batches + this batch + one in hand
