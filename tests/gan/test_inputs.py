"""Hostile and unusual inputs for stylizing: every case ends in correct output or one
UserError line naming the path or frame; never a traceback, never a partial file.

Real files made with OpenCV, real `python -m gan worker JOB.json` processes, no mocks.
After every case: the source media are byte-for-byte unchanged and the output folder holds
only complete, decodable frames (no temporary files).

Worker processes run with OMP_NUM_THREADS=1: on a small shared CPU, torch's OpenMP threads
spin against each other and a tiny job ran 10x slower with the default thread count.
"""

import contextlib
import hashlib
import json
import os
import resource
import subprocess
import sys
import textwrap
import threading

import cv2
import numpy as np
import pytest
import torch

from gan import models, stylefile
from gan.frames import FrameSourceError, read_image
from gan.protocol import (CancelToken, Reporter, SourceSpec, StylizeJob, UserError, job_from_dict,
                          job_to_dict, parse_event)
from gan.stylize import stylize

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER_ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
# A cheap generator (every layer random, so it changes the picture): fast enough for 8K.
TINY_ARCH = dict(models.generator_arch("draft"), ngf=4, blocks=1, colour_hidden=4,
                 downsamplings=1)
HOSTILE_DIR = "dir with spaces ü ✓ 日本 %d"
SIZE = (48, 40)  # (w, h)


# -- helpers (the fault and style-file tests use them too) ------------------------------------

class Recorder(Reporter):
    def __init__(self):
        self.events = []

    def emit(self, event, **fields):
        self.events.append((event, fields))


def save_tiny_model(path, seed=0, arch=TINY_ARCH):
    torch.manual_seed(seed)
    generator = models.build_generator(arch)
    for module in generator.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.reset_parameters()
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    stylefile.save_style(str(path), arch=arch, state_dict=generator.state_dict(),
                         meta={"name": "tiny random", "preset": "draft"})
    return str(path)


def picture(i, size=SIZE):
    """A BGR frame with texture and colour, different for every i."""
    rng = np.random.default_rng(i)
    small = rng.integers(0, 256, (max(2, size[1] // 8), max(2, size[0] // 8), 3), dtype=np.uint8)
    return cv2.resize(small, size, interpolation=cv2.INTER_CUBIC)


def write_image(path, image, params=()):
    ok, data = cv2.imencode(os.path.splitext(str(path))[1], image, list(params))
    assert ok
    data.tofile(str(path))
    return str(path)


def write_clip(path, count, size=SIZE, fourcc="MJPG", start=0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, size)
    assert writer.isOpened()
    for i in range(count):
        writer.write(picture(start + i, size))
    writer.release()
    return str(path)


def digest(paths):
    """{path: sha256} of files, or of every file under folders."""
    out = {}
    for path in paths:
        path = str(path)
        files = ([os.path.join(d, n) for d, _, names in os.walk(path) for n in names]
                 if os.path.isdir(path) else [path])
        for name in files:
            with open(name, "rb") as handle:
                out[name] = hashlib.sha256(handle.read()).hexdigest()
    return out


def check_output_folder(folder, ext=".png"):
    """Only complete, decodable frames: no temporary or hidden files, nothing half-written."""
    if not os.path.exists(folder):
        return []
    names = sorted(os.listdir(folder))
    for name in names:
        assert not name.startswith(".") and name.endswith(ext), f"stray file {name} in {folder}"
        image = cv2.imdecode(np.fromfile(os.path.join(folder, name), np.uint8), cv2.IMREAD_COLOR)
        assert image is not None, f"{name} does not decode"
    return names


@contextlib.contextmanager
def memory_limit(extra_bytes=2 << 30):
    """Address space capped at what the process uses now plus `extra_bytes`: an attempt to
    allocate something huge raises (and fails the test) instead of exhausting the machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as handle:
        used = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmSize:"))
    limit = used + extra_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def assert_one_line(message, *names):
    assert message and "\n" not in message and "Traceback" not in message, message
    for name in names:
        assert str(name) in message, (name, message)


@contextlib.contextmanager
def invariants(job):
    """Checked after a job, whatever its outcome: its sources (media, style file) are
    byte-for-byte unchanged, files that existed in its output are unchanged, the output folder
    holds only complete frames, and a style file under its final name loads."""
    if isinstance(job, dict):
        job = job_from_dict(job)
    if isinstance(job, StylizeJob):
        sources = [job.model, *_paths(job.input.path)]
        output = job.output
    else:
        sources = [p for spec in job.style + job.content for p in _paths(spec.path)]
        output = job.out
    sources = [p for p in sources if os.path.exists(p)]
    before = digest(sources)
    existing = digest([output]) if os.path.exists(output) else {}
    try:
        yield
    finally:
        assert digest(sources) == before, "a source file changed"
        for path, sha in existing.items():
            assert digest([path]) == {path: sha}, f"{path} was replaced"
        if isinstance(job, StylizeJob) and os.path.isdir(output):
            check_output_folder(output, "." + job.format)
        elif not isinstance(job, StylizeJob) and os.path.exists(output):
            stylefile.load_style(output)  # complete, or not there at all


def _paths(path):
    return list(path) if isinstance(path, (list, tuple)) else [path]


def run_stylize(model, source, output, frames=None, **settings):
    job = StylizeJob(model=model, input=SourceSpec(source, frames), output=str(output), **settings)
    with invariants(job):
        return stylize(job, Recorder(), CancelToken())


def start_worker(job, folder, **popen):
    """`python -m gan worker JOB.json` in the add-on folder, as Blender starts it."""
    job_path = os.path.join(str(folder), "job.json")
    with open(job_path, "w", encoding="utf-8") as handle:
        json.dump(job_to_dict(job) if not isinstance(job, dict) else job, handle)
    return subprocess.Popen([sys.executable, "-m", "gan", "worker", job_path], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=WORKER_ENV, **popen)


def drain(stream, into):
    thread = threading.Thread(target=lambda: into.append(stream.read()), daemon=True)
    thread.start()
    return thread


def run_worker(job, folder, timeout=180, **popen):
    """(exit code, events, stderr); every stdout line must be a valid event. Stdin stays
    open while the job runs (closing it means "the parent is gone": the worker stops)."""
    with invariants(job):
        process = start_worker(job, folder, **popen)
        out, err = [], []
        readers = [drain(process.stdout, out), drain(process.stderr, err)]
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        finally:
            for reader in readers:
                reader.join(10)
            process.stdin.close()
    events = [parse_event(line) for line in out[0].splitlines()]
    return process.returncode, events, err[0]


def assert_failed_cleanly(rc, events, stderr, *names):
    assert rc == 1, (rc, events, stderr[-2000:])
    assert events and events[-1]["event"] == "error", events
    assert [e["event"] for e in events].count("error") == 1
    assert_one_line(events[-1]["message"], *names)
    assert "Traceback" not in stderr, stderr[-3000:]


# -- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def place(tmp_path_factory):
    return tmp_path_factory.mktemp("inputs")


@pytest.fixture(scope="module")
def model(place):
    return save_tiny_model(place / "style ü ✓" / "tiny style 日本.ganstyle")


@pytest.fixture(scope="module")
def clip(place):
    return write_clip(place / "clip 20.avi", 20)


# -- missing, moved, corrupt and truncated media ------------------------------------------------

def test_missing_and_moved_media_through_the_worker(model, clip, place, tmp_path):
    """A strip whose file was moved away: one error event naming it, exit code 1, nothing made."""
    moved = tmp_path / "moved away.avi"
    out = tmp_path / "out"
    job = StylizeJob(model=model, input=SourceSpec(str(moved), [0, 1]), output=str(out))
    assert_failed_cleanly(*run_worker(job, tmp_path), moved)
    assert not out.exists()


@pytest.mark.parametrize("make, expected", [
    (lambda d: str(d / "gone.avi"), "gone.avi"),
    (lambda d: (d / "noise.avi").write_bytes(np.random.default_rng(7).bytes(20000))
     and str(d / "noise.avi"),
     "noise.avi"),
    (lambda d: (d / "empty.avi").write_bytes(b"") or str(d / "empty.avi"), "empty.avi"),
    (lambda d: write_clip(d / "no frames.avi", 0), "has no frames"),
    (lambda d: [write_image(d / "a.png", picture(0)), str(d / "b.png"),
                write_image(d / "c.png", picture(2))], "b.png"),
    (lambda d: [str(d / "first.png")], "first.png"),
    (lambda d: (d / "no images").mkdir() or str(d / "no images"), "no image files"),
    (lambda d: write_image(d / "bad.png", picture(0)) and (d / "bad.png").write_bytes(b"\x89PNG")
     and str(d / "bad.png"), "bad.png"),
], ids=["missing", "random-bytes", "empty-file", "zero-frames", "list-gap", "moved-list",
        "empty-folder", "damaged-image"])
def test_unusable_sources_are_one_line_errors_before_any_output(model, tmp_path, make, expected):
    source = make(tmp_path)
    before = digest([tmp_path / n for n in os.listdir(tmp_path)])
    out = tmp_path / "out"
    with pytest.raises(UserError) as info:
        run_stylize(model, source, out)
    assert_one_line(str(info.value), expected)
    assert not out.exists()  # refused before the output folder was even made
    assert digest([tmp_path / n for n in os.listdir(tmp_path)]) == before


def test_corrupt_video_through_the_worker(model, tmp_path):
    noise = tmp_path / "random bytes.avi"
    noise.write_bytes(np.random.default_rng(1).integers(0, 256, 50000, dtype=np.uint8).tobytes())
    out = tmp_path / "out"
    job = StylizeJob(model=model, input=SourceSpec(str(noise)), output=str(out))
    assert_failed_cleanly(*run_worker(job, tmp_path), noise)
    assert not out.exists()


def test_video_cut_in_half_keeps_the_good_frames_and_names_the_bad_one(model, clip, tmp_path):
    """An MJPG clip cut in half: frames before the cut are exactly those of the whole clip;
    the first missing frame stops the job with its number; nothing half-written is left.

    The frame the cut goes through is decoded by FFmpeg with error concealment, as every
    player shows it (OpenCV reports no error for it), so only the frames before it are
    compared."""
    data = open(clip, "rb").read()
    cut = tmp_path / "cut in half.avi"
    cut.write_bytes(data[:len(data) // 2])
    before = digest([clip, cut])
    with pytest.raises(FrameSourceError) as info:
        run_stylize(model, str(cut), tmp_path / "cut")
    message = str(info.value)
    assert_one_line(message, cut)
    bad_frame = int(message.split(": frame ")[1].split()[0])
    assert 3 <= bad_frame < 20
    names = check_output_folder(tmp_path / "cut")
    assert names == [f"frame_{i:06d}.png" for i in range(len(names))]
    assert len(names) <= bad_frame
    assert len(names) >= 3
    whole = run_stylize(model, clip, tmp_path / "whole", list(range(len(names) - 1)))
    for name, reference in zip(names, whole):
        assert np.array_equal(read_image(str(tmp_path / "cut" / name)), read_image(reference))
    assert digest([clip, cut]) == before


def test_header_claiming_billions_of_frames_is_refused_without_allocating(model, clip, tmp_path):
    """A damaged AVI header (2^31 - 1 frames) must not make a list of two billion indices."""
    import struct
    data = bytearray(open(clip, "rb").read())
    avih, strh = data.find(b"avih"), data.find(b"strh")
    struct.pack_into("<I", data, avih + 8 + 16, 0x7FFFFFFF)  # dwTotalFrames
    struct.pack_into("<I", data, strh + 8 + 32, 0x7FFFFFFF)  # dwLength
    lying = tmp_path / "lying header.avi"
    lying.write_bytes(bytes(data))
    with pytest.raises(FrameSourceError) as info, memory_limit():
        run_stylize(model, str(lying), tmp_path / "out")
    assert_one_line(str(info.value), lying, "explicit frame range")
    paths = run_stylize(model, str(lying), tmp_path / "some", [0, 19])  # the real frames read
    assert [os.path.basename(p) for p in paths] == ["frame_000000.png", "frame_000019.png"]
    with pytest.raises(FrameSourceError) as info:
        run_stylize(model, str(lying), tmp_path / "past", [25])
    assert_one_line(str(info.value), "frame 25")
    assert check_output_folder(tmp_path / "past") == []


def test_zero_and_one_frame_sources(model, tmp_path):
    one = write_clip(tmp_path / "one.avi", 1)
    paths = run_stylize(model, one, tmp_path / "one")
    assert [os.path.basename(p) for p in paths] == ["frame_000000.png"]
    assert read_image(paths[0]).shape == (SIZE[1], SIZE[0], 3)
    zero = write_clip(tmp_path / "zero.avi", 0)
    for frames in (None, [0]):
        with pytest.raises(FrameSourceError) as info:
            run_stylize(model, zero, tmp_path / "zero", frames)
        assert_one_line(str(info.value), "zero.avi", "no frames")
    with pytest.raises(UserError) as info:
        run_stylize(model, one, tmp_path / "none", [])
    assert_one_line(str(info.value), "nothing to stylize")
    assert not (tmp_path / "zero").exists() and not (tmp_path / "none").exists()


# -- image sequences --------------------------------------------------------------------------------

def test_folder_with_a_missing_file_uses_the_present_files(model, tmp_path):
    folder = tmp_path / "seq"
    folder.mkdir()
    files = [write_image(folder / f"f_{i:03d}.png", picture(i)) for i in range(5)]
    os.remove(files[2])  # a render that did not finish frame 2
    before = digest([folder])
    paths = run_stylize(model, str(folder), tmp_path / "out", mix=0.0)
    assert check_output_folder(tmp_path / "out") == [f"frame_{i:06d}.png" for i in range(4)]
    present = [files[i] for i in (0, 1, 3, 4)]  # folder index = position among present files
    for out, source in zip(paths, present):
        assert np.array_equal(read_image(out), read_image(source))
    assert digest([folder]) == before


def test_mixed_frame_sizes_are_each_stylized_at_their_own_size(model, tmp_path):
    """A video editor fits every image of a strip to the canvas on its own, so each output
    keeps its source frame's size, and equals that frame stylized alone."""
    sizes = [(48, 40), (48, 40), (64, 36), (31, 17), (48, 40), (640, 360)]
    files = [write_image(tmp_path / f"m{i}.png", picture(i, size)) for i, size in enumerate(sizes)]
    paths = run_stylize(model, files, tmp_path / "out")
    for i, (path, size) in enumerate(zip(paths, sizes)):
        styled = read_image(path)
        assert styled.shape == (size[1], size[0], 3)
        alone = run_stylize(model, [files[i]], tmp_path / f"alone{i}")[0]
        assert np.abs(styled.astype(int) - read_image(alone)).max() <= 1, i
    check_output_folder(tmp_path / "out")


def test_grey_rgba_and_16_bit_frames(model, tmp_path):
    """The model sees every pixel format as RGB uint8 (grey repeated, alpha aside, 16 bits
    rounded): the stylized colours equal those of the same picture stored as plain 8-bit BGR.
    The output keeps the source's alpha and 16 bits (see the next test)."""
    bgr = picture(5)
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    bgra = np.dstack([bgr, np.arange(SIZE[0] * SIZE[1], dtype=np.uint8).reshape(SIZE[1], SIZE[0])])
    deep = bgr.astype(np.uint16) * 257 + np.uint16(100)  # 16-bit, not a plain multiple of 257
    deep_as_8 = np.clip(np.round(deep / 257.0), 0, 255).astype(np.uint8)
    cases = [("grey.png", grey, cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)),
             ("rgba.png", bgra, bgr),
             ("deep.png", deep, deep_as_8),
             ("deep grey.tif", cv2.cvtColor(deep, cv2.COLOR_BGR2GRAY),
              cv2.cvtColor(np.clip(np.round(cv2.cvtColor(deep, cv2.COLOR_BGR2GRAY) / 257.0), 0,
                                   255).astype(np.uint8), cv2.COLOR_GRAY2BGR))]
    files = [write_image(tmp_path / name, image) for name, image, _ in cases]
    plain = [write_image(tmp_path / f"plain{i}.png", expected)
             for i, (_, _, expected) in enumerate(cases)]
    copied = run_stylize(model, files, tmp_path / "copy", mix=0.0)
    for path, (_, _, expected) in zip(copied, cases):
        assert np.abs(read_image(path).astype(int) - expected[:, :, ::-1]).max() <= 1
    styled = run_stylize(model, files, tmp_path / "styled")
    reference = run_stylize(model, plain, tmp_path / "reference")
    for a, b in zip(styled, reference):
        assert np.abs(read_image(a).astype(int) - read_image(b)).max() <= 1
    check_output_folder(tmp_path / "styled")


def test_alpha_and_16_bits_pass_through_and_float_images_are_refused(model, tmp_path):
    """The style changes colour, never coverage: RGBA in, RGBA out with the same alpha; a
    16-bit source gives 16-bit output, exactly the source at mix 0; float is one line."""
    bgr = picture(6)
    alpha = np.arange(SIZE[0] * SIZE[1], dtype=np.uint8).reshape(SIZE[1], SIZE[0])
    deep = np.minimum(bgr.astype(np.int32) * 257 + 100, 65535).astype(np.uint16)
    deep_alpha = np.dstack([deep, alpha.astype(np.uint16) * 257])
    files = [write_image(tmp_path / "rgba.png", np.dstack([bgr, alpha])),
             write_image(tmp_path / "deep.png", deep), write_image(tmp_path / "deepa.png", deep_alpha)]
    for mix in (0.0, 1.0):
        out = run_stylize(model, files, tmp_path / f"mix{mix}", mix=mix)
        rgba, deep_out, deepa_out = (cv2.imread(p, cv2.IMREAD_UNCHANGED) for p in out)
        assert rgba.shape == (SIZE[1], SIZE[0], 4) and rgba.dtype == np.uint8
        assert np.array_equal(rgba[:, :, 3], alpha)
        assert deep_out.dtype == np.uint16 and deep_out.shape == deep.shape
        assert deepa_out.dtype == np.uint16 and np.array_equal(deepa_out[:, :, 3],
                                                                 deep_alpha[:, :, 3])
        if mix == 0.0:
            assert np.array_equal(rgba[:, :, :3], bgr)
            assert np.array_equal(deep_out, deep) and np.array_equal(deepa_out, deep_alpha)
        else:
            assert not np.array_equal(rgba[:, :, :3], bgr)
            # The style's change, carried onto the 16 bits: rounded to 8 bits it is the
            # stylized 8-bit picture.
            styled8 = run_stylize(model, [files[0]], tmp_path / "rgb8")[0]
            expected = cv2.imread(styled8, cv2.IMREAD_UNCHANGED)[:, :, :3].astype(int)
            assert np.abs(np.round(deep_out / 257.0) - expected).max() <= 1
    floating = write_image(tmp_path / "float.tif", bgr.astype(np.float32) / 255.0)
    exr = tmp_path / "shot.exr"  # OpenEXR's magic number: OpenCV ships that codec disabled
    exr.write_bytes(b"\x76\x2f\x31\x01" + bytes(200))
    for path in (floating, str(exr)):
        with pytest.raises(UserError) as error:
            run_stylize(model, [path], tmp_path / os.path.basename(path))
        assert_one_line(str(error.value), os.path.basename(path))
        assert "16-bit PNG or TIFF" in str(error.value)


# -- very large frames ----------------------------------------------------------------------------

EIGHT_K = textwrap.dedent("""
    import json, resource, sys
    from gan.protocol import CancelToken, Reporter, SourceSpec, StylizeJob
    from gan.stylize import FrameStylizer, stylize
    import cv2

    class Quiet(Reporter):
        def emit(self, event, **fields):
            pass

    model, source, output = sys.argv[1:4]
    job = StylizeJob(model=model, input=SourceSpec(source), output=output, format="jpg",
                     device="cpu")  # (a large GPU would take the frame whole)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    files = stylize(job, Quiet(), CancelToken())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    plan = FrameStylizer.from_job(job).plan(4320, 7680)
    shape = cv2.imread(files[0]).shape
    print(json.dumps({"files": files, "shape": shape, "tile": plan.tile, "baseline": baseline,
                      "peak": peak}))
""")


def test_8k_frame_is_tiled_with_bounded_memory(model, tmp_path):
    """7680x4320 through stylize(): the frame does not fit a whole-frame pass in the memory
    budget, so it is tiled; the process's peak memory stays within a dozen 8-bit frames
    (a whole-frame pass needs ~5 GB here; tiles with float32 whole-frame buffers ~2 GB)."""
    folder = tmp_path / HOSTILE_DIR
    folder.mkdir()
    source = write_image(folder / "eight k ü.jpg", picture(8, (7680, 4320)))
    out = tmp_path / "8k out ✓"
    result = subprocess.run([sys.executable, "-c", EIGHT_K, model, source, str(out)], cwd=ROOT,
                            capture_output=True, text=True, env=WORKER_ENV, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["shape"] == [4320, 7680, 3]
    assert report["tile"] is not None
    frame_bytes = 7680 * 4320 * 3
    growth = report["peak"] - report["baseline"]
    assert growth < 12 * frame_bytes, f"peak grew by {growth / 2**20:.0f} MB"
    assert check_output_folder(out, ".jpg") == ["frame_000000.jpg"]


# -- names with spaces and non-ASCII characters -------------------------------------------------

def test_paths_with_spaces_and_non_ascii_everywhere(model, tmp_path):
    """Input video and image folder, output folders and style file all in hostile folders,
    through a real worker process (paths travel through the JSON job file)."""
    base = tmp_path / HOSTILE_DIR
    base.mkdir()
    video = write_clip(base / "clip ü ✓.avi", 4)
    folder = base / "frames ñ 日本"
    folder.mkdir()
    for i in range(3):
        write_image(folder / f"img é {i}.png", picture(i))
    before = digest([video, folder, model])
    out_video, out_folder = base / "out vídeo ✓", base / "out földer 日本"
    rc, events, err = run_worker(StylizeJob(model=model, input=SourceSpec(video, [3, 1]),
                                            output=str(out_video)), tmp_path)
    assert rc == 0, (events, err[-2000:])
    assert events[-1] == {"event": "done", "output": str(out_video), "files": 2}
    assert check_output_folder(out_video) == ["frame_000001.png", "frame_000003.png"]
    paths = run_stylize(model, str(folder), out_folder, format="jpg")
    assert check_output_folder(out_folder, ".jpg") == [f"frame_{i:06d}.jpg" for i in range(3)]
    assert all(read_image(p).shape == (SIZE[1], SIZE[0], 3) for p in paths)
    assert digest([video, folder, model]) == before
