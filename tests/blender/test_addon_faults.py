"""Faults through the real operators and real worker processes: the worker killed (SIGKILL)
at several moments of stylizing and training, a full disk (a real file size limit on the worker
process), folders that cannot be written, the file reloaded / the add-on unregistered / Blender
ending while a job runs, and two apply requests on the same strip.

Every case ends with the failure reported in one line, no strip added, no worker process left
(its whole process group is checked through /proc), and `bl_helpers.Invariants`: source media
bytes, existing strips and existing output files unchanged, no broken style file under its
final name, no temporary file left.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import bpy
import cv2
import pytest

import bl_helpers

LONG_FRAMES = 120
LONG_SIZE = (160, 120)
KILLED = r"The style worker stopped unexpectedly \(signal SIGKILL\)"


@pytest.fixture
def runner(window_runner):
    return window_runner


@pytest.fixture(scope="session")
def long_movie(tmp_path_factory) -> str:
    """A movie long enough to be killed while its frames are written."""
    path = str(tmp_path_factory.mktemp("long") / "long.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"FFV1"), bl_helpers.FPS, LONG_SIZE)
    for i in range(LONG_FRAMES):
        writer.write(cv2.resize(bl_helpers.coded_frame(i, seed=3), LONG_SIZE))
    writer.release()
    return path


@pytest.fixture
def library(addon):
    return addon.vse.storage.library_dir()


def finish(runner, job, timeout=120):
    assert bl_helpers.wait_for(lambda: not job.active, timeout=timeout, tick=runner.tick), \
        f"job still running: {job.status}"


def kill(job) -> int:
    (pid,) = job.pids
    os.kill(pid, signal.SIGKILL)
    return pid


def one_line(message: str) -> str:
    assert message and "\n" not in message and "Traceback" not in message, message
    return message


def limited_python(folder, limit: int) -> str:
    """The worker Python with a real file size limit (RLIMIT_FSIZE) and SIGXFSZ ignored, so a
    write beyond `limit` bytes fails with EFBIG like a write to a full disk."""
    from conftest import WORKER_PYTHON
    code = ("import os, resource, signal, sys; "
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "os.execv(sys.argv[1], sys.argv[1:])")
    return bl_helpers.write_fake_python(
        folder, f"python-limited-{limit}",
        f'exec "{WORKER_PYTHON}" -c "{code}" "{WORKER_PYTHON}" "$@"')


@contextlib.contextmanager
def read_only_folder(path: str):
    """`path` as a folder nobody may write to: chmod for a normal user; for root (who ignores
    permissions) a read-only bind mount, else a link into sysfs, where root cannot create
    files either."""
    os.makedirs(path, exist_ok=True)
    if os.geteuid() != 0:
        os.chmod(path, 0o555)
        try:
            yield path
        finally:
            os.chmod(path, 0o755)
        return
    mounted = subprocess.run(["mount", "-o", "bind,ro", path, path],
                             capture_output=True).returncode == 0
    if mounted:
        try:
            yield path
        finally:
            subprocess.run(["umount", path], check=True)
        return
    os.rmdir(path)
    os.symlink("/sys/kernel", path)
    try:
        yield path
    finally:
        os.unlink(path)


def load_checkpoint_step(path: str) -> int:
    """Load a checkpoint the way a resumed training does, in the worker Python (torch)."""
    from conftest import WORKER_PYTHON
    code = ("import sys; from gan.train import load_checkpoint; "
            "print(load_checkpoint(sys.argv[1])['step'])")
    done = subprocess.run([WORKER_PYTHON, "-c", code, path], cwd=bl_helpers.ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-1500:]
    return int(done.stdout.split()[-1])


def finished_frames(folder: str) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith("frame_")) \
        if os.path.isdir(folder) else []


def check_kept_frames(folder: str) -> None:
    """An interrupted Apply keeps the frames it finished (complete ones, numbered from the
    first without gaps, for Apply to resume); a folder without any is removed."""
    frames = finished_frames(folder)
    if not frames:
        assert not os.path.exists(folder), "an empty frame folder is left"
        return
    assert frames == [f"frame_{n:06d}.png" for n in range(1, len(frames) + 1)], frames
    assert set(os.listdir(folder)) == {*frames, "gan_style_frames.json"}


# -- SIGKILL ------------------------------------------------------------------------------------

@pytest.mark.lts
@pytest.mark.parametrize("moment", ["while starting", "after the start event",
                                    "while writing frames"])
def test_worker_killed_during_apply(runner, blend, long_movie, style, moment):
    strip = bl_helpers.add_movie(blend, long_movie, "Long", channel=1, frame_start=1)
    bl_helpers.select_only(blend, strip)
    invariants = bl_helpers.Invariants(blend)
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert bpy.ops.sequencer.gan_style_apply(style=style) == {'FINISHED'}
    job = runner.job_for(blend)
    folder = job.data["records"][0]["folder"]
    delay = random.uniform(0.0, 0.2)
    if moment == "after the start event":
        assert bl_helpers.wait_for(lambda: job.device or not job.active, tick=runner.tick)
    elif moment == "while writing frames":
        assert bl_helpers.wait_for(lambda: finished_frames(folder) or not job.active,
                                   step=0.01, tick=runner.tick)
    time.sleep(delay if moment != "while starting" else 0)
    runner.tick()
    assert job.active, f"the job ended before the kill ({job.message}): use a longer movie"
    pid = kill(job)
    finish(runner, job)
    assert job.state == runner.FAILED
    assert re.match(f"Strip 'Long': {KILLED}", one_line(job.message)), (delay, job.message)
    assert bl_helpers.new_strips(blend, before) == []
    check_kept_frames(folder)
    assert bl_helpers.no_process_left([pid])
    invariants.check(blend)


@pytest.mark.slow
def test_worker_killed_during_training_keeps_a_loadable_checkpoint_and_resumes(
        runner, blend, media, library, monkeypatch):
    unfinished = sys.modules[runner.__name__.rpartition(".")[0] + ".library"].unfinished_training
    movie = bl_helpers.add_movie(blend, media.movie, "Footage", channel=1, frame_start=1)
    movie.frame_offset_end = 20
    bl_helpers.select_only(blend, movie)
    invariants = bl_helpers.Invariants(blend, media=[media.style_image])
    out = os.path.join(library, "killed.ganstyle")

    def train(**options):
        assert bpy.ops.sequencer.gan_style_train(
            name="killed", style_path=media.style_image, **options) == {'FINISHED'}
        return runner.job_for(blend)

    try:
        # 1. Killed while it starts: nothing to resume, nothing in the library.
        job = train(steps=100000)
        pid = kill(job)
        finish(runner, job)
        assert job.state == runner.FAILED
        assert re.fullmatch(f"{KILLED}.*", one_line(job.message)), job.message
        assert "checkpoint" not in job.message
        assert bl_helpers.no_process_left([pid])
        assert not os.path.exists(out) and not unfinished(library, "killed")

        # 2. Stopped once it runs: it saves a checkpoint.
        job = train(steps=100000)
        assert not job.steps[0].job["resume"]
        assert bl_helpers.wait_for(lambda: job.device or not job.active, timeout=120,
                                   tick=runner.tick), "the training did not start"
        bpy.ops.sequencer.gan_style_cancel()
        finish(runner, job)
        assert job.state == runner.CANCELLED, job.message
        checkpoint = unfinished(library, "killed")
        assert checkpoint and checkpoint in job.message
        first_step = load_checkpoint_step(checkpoint)

        # 3. Resumed, then killed at a random moment of its first steps: the checkpoint on
        # disk is still whole, and the failure says so.
        job = train(steps=100000)
        assert job.steps[0].job["resume"]
        assert bl_helpers.wait_for(lambda: job.device or not job.active, timeout=120,
                                   tick=runner.tick), "the resumed training did not start"
        delay = random.uniform(0.0, 0.5)
        time.sleep(delay)
        runner.tick()
        assert job.active, job.message
        pid = kill(job)
        finish(runner, job)
        assert job.state == runner.FAILED
        assert re.fullmatch(f"{KILLED}.*; the last checkpoint is kept .*checkpoint.pt.*"
                            "train the same name again to resume", one_line(job.message))
        assert bl_helpers.no_process_left([pid])
        assert not os.path.exists(out)
        assert unfinished(library, "killed") == checkpoint
        step = load_checkpoint_step(checkpoint)
        assert step >= first_step, delay

        # 4. Trained again: resumes from that checkpoint and finishes the style.
        monkeypatch.setattr(runner, "FORCE_ASYNC", False)
        job = train(steps=step + 1)
        assert job.state == runner.DONE and job.steps[0].job["resume"]
        assert not unfinished(library, "killed")
        invariants.check(blend)  # the new style file reads
        assert os.path.isfile(out)
    finally:
        if os.path.isfile(out):
            bpy.ops.sequencer.gan_style_library_remove(name="killed")
        shutil.rmtree(os.path.join(library, ".training", "killed"), ignore_errors=True)


# -- full disk ----------------------------------------------------------------------------------

@pytest.mark.lts
def test_disk_full_while_writing_frames(blend, media, style, worker_python, tmp_path):
    strip = bl_helpers.add_movie(blend, media.movie, "Movie", channel=1, frame_start=1)
    bl_helpers.select_only(blend, strip)
    invariants = bl_helpers.Invariants(blend)
    worker_python(limited_python(tmp_path, 300))  # no PNG frame fits
    with pytest.raises(RuntimeError, match=r"^Error: Strip 'Movie': .*frame_0000\d\d\.png.*"
                                           r"File too large \(free disk space"):
        bpy.ops.sequencer.gan_style_apply(style=style)
    assert [s.name for s in bl_helpers.strips_all(blend)] == ["Movie"]
    root = bl_helpers.output_root()
    assert os.listdir(root) == [], "partial frames are left"
    invariants.check(blend)


def test_disk_full_while_saving_a_checkpoint(runner, blend, media, library, worker_python,
                                             tmp_path):
    """Cancel asks the training to save a checkpoint; the disk is full: that is a failure with
    the reason, not a 'cancelled, checkpoint kept'."""
    strip = bl_helpers.add_movie(blend, media.movie, "Movie", channel=1, frame_start=1)
    bl_helpers.select_only(blend, strip)
    invariants = bl_helpers.Invariants(blend, media=[media.style_image])
    worker_python(limited_python(tmp_path, 200_000))  # previews fit, a checkpoint does not
    try:
        assert bpy.ops.sequencer.gan_style_train(name="full", style_path=media.style_image,
                                                 steps=100000) == {'FINISHED'}
        job = runner.job_for(blend)
        assert bl_helpers.wait_for(lambda: job.device or not job.active, timeout=120,
                                   tick=runner.tick), "the training did not start"
        bpy.ops.sequencer.gan_style_cancel()
        finish(runner, job)
        assert job.state == runner.FAILED, job.message
        assert re.search(r"checkpoint\.pt.*File too large \(free disk space or choose another "
                         r"folder, then try again\)$", one_line(job.message)), job.message
        assert bl_helpers.no_process_left(job.pids)
        assert not os.path.lexists(os.path.join(library, "full.ganstyle"))
        checkpoint = os.path.join(library, ".training", "full", "checkpoint.pt")
        assert not os.path.exists(checkpoint), "a half-written checkpoint under its final name"
        invariants.check(blend)
    finally:
        shutil.rmtree(os.path.join(library, ".training", "full"), ignore_errors=True)


# -- folders that cannot be written -------------------------------------------------------------

@pytest.mark.lts
def test_unwritable_frame_folder(blend, media, style):
    strip = bl_helpers.add_movie(blend, media.movie, "Movie", channel=1, frame_start=1)
    bl_helpers.select_only(blend, strip)
    with read_only_folder(bl_helpers.output_root()) as root:
        invariants = bl_helpers.Invariants(blend)
        with pytest.raises(RuntimeError, match=f"^Error: Cannot write the stylized frames to "
                           f"{re.escape(root)}: .*; save the .blend in a folder you can write "
                           "to$"):
            bpy.ops.sequencer.gan_style_apply(style=style)
        assert [s.name for s in bl_helpers.strips_all(blend)] == ["Movie"]
        invariants.check(blend)


def test_unwritable_style_library(addon, blend, media, tmp_path):
    strip = bl_helpers.add_movie(blend, media.movie, "Movie", channel=1, frame_start=1)
    bl_helpers.select_only(blend, strip)
    prefs = bpy.context.preferences.addons[addon.__name__].preferences
    with read_only_folder(str(tmp_path / "locked library")) as locked:
        prefs.library_dir = locked
        try:
            with pytest.raises(RuntimeError, match=f"^Error: Cannot write the style to "
                               f"{re.escape(locked)}: .*; choose another style library folder"):
                bpy.ops.sequencer.gan_style_train(name="nowhere", style_path=media.style_image,
                                                  steps=1)
        finally:
            prefs.library_dir = ""


# -- the file, the add-on or Blender going away while a job runs --------------------------------

@pytest.mark.lts
@pytest.mark.parametrize("how", ["new file", "file reloaded", "add-on unregistered"])
def test_job_stops_when_the_file_or_the_add_on_goes(runner, addon, blend, long_movie, style,
                                                    how):
    strip = bl_helpers.add_movie(blend, long_movie, "Long", channel=1, frame_start=1)
    bl_helpers.select_only(blend, strip)
    bpy.ops.wm.save_mainfile()
    blend_path = bpy.data.filepath
    invariants = bl_helpers.Invariants(blend)
    saved = bl_helpers.file_digest(blend_path)
    bpy.ops.sequencer.gan_style_apply(style=style)
    job = runner.job_for(blend)
    folder = job.data["records"][0]["folder"]
    assert bl_helpers.wait_for(lambda: job.device or not job.active, tick=runner.tick)
    assert job.active
    (pid,) = job.pids
    if how == "new file":
        bpy.ops.wm.read_homefile(use_empty=True)
    elif how == "file reloaded":
        bpy.ops.wm.revert_mainfile()
    else:
        addon.unregister()
        addon.register()
    assert not job.active and job.state == runner.CANCELLED
    assert bl_helpers.no_process_left([pid])
    for _ in range(3):
        runner.tick()
    scene = bpy.context.scene
    assert not scene.sequence_editor or \
        {s.name for s in bl_helpers.strips_all(scene)} <= {"Long"}, "a strip was added"
    check_kept_frames(folder)
    invariants.check(scene if how == "add-on unregistered" else None)
    assert bl_helpers.file_digest(blend_path) == saved


BLENDER_ENDS = """
import os, sys, time
import bpy, addon_utils
module = "bl_ext.user_default.gan_style"
addon_utils.enable(module, default_set=True)
prefs = bpy.context.preferences.addons[module].preferences
prefs.python_path, prefs.device = sys.argv[1], 'CPU'
runner = sys.modules[module].vse.scheduler
runner.FORCE_ASYNC = True  # as with a window: the job runs while Blender goes on
bpy.ops.wm.open_mainfile(filepath=sys.argv[2])
bpy.ops.sequencer.gan_style_apply(style=sys.argv[3])
job = runner.job_for(bpy.context.scene)
deadline = time.monotonic() + 120
while job.active and not job.device and time.monotonic() < deadline:
    runner.tick()
    time.sleep(0.05)
print("WORKER", job.pids[0], job.active, flush=True)
if sys.argv[4] == "crashes":
    os._exit(3)
"""


@pytest.mark.parametrize("how", ["quits", "crashes"])
def test_no_worker_outlives_blender(blend, long_movie, style, how):
    from conftest import WORKER_PYTHON
    strip = bl_helpers.add_movie(blend, long_movie, "Long", channel=1, frame_start=1)
    bl_helpers.select_only(blend, strip)
    bpy.ops.wm.save_mainfile()
    saved = bl_helpers.file_digest(bpy.data.filepath)
    invariants = bl_helpers.Invariants(blend)
    ended = bl_helpers.run_python(BLENDER_ENDS, WORKER_PYTHON, bpy.data.filepath, style, how)
    match = re.search(r"^WORKER (\d+) True$", ended.stdout, re.M)
    assert match, ended.stdout[-1500:] + ended.stderr[-1500:]
    assert ended.returncode == (3 if how == "crashes" else 0), ended.stderr[-1500:]
    pid = int(match.group(1))
    assert bl_helpers.wait_for(lambda: bl_helpers.no_process_left([pid]), timeout=60), \
        f"worker {pid} outlived Blender"
    assert bl_helpers.file_digest(bpy.data.filepath) == saved
    invariants.check(blend)


# -- two requests on one strip --------------------------------------------------------------

@pytest.mark.lts
def test_two_apply_requests_on_one_strip(runner, blend, media, style):
    """While a job runs, a second request is refused and changes nothing; once it is done, a
    second request with the same settings adds its own strip from the finished frames (none
    is made again, no file of the first is touched)."""
    strip = bl_helpers.add_movie(blend, media.movie, "Movie", channel=1, frame_start=1)
    strip.frame_offset_end = 24
    bl_helpers.select_only(blend, strip)
    invariants = bl_helpers.Invariants(blend)
    before = {s.name for s in bl_helpers.strips_all(blend)}
    bpy.ops.sequencer.gan_style_apply(style=style, mix=0.0)
    job = runner.job_for(blend)
    folders = os.listdir(bl_helpers.output_root())
    with pytest.raises(RuntimeError, match="A style job is already running in scene"):
        bpy.ops.sequencer.gan_style_apply(style=style, mix=0.0)
    assert runner.job_for(blend) is job
    assert os.listdir(bl_helpers.output_root()) == folders
    finish(runner, job)
    assert job.state == runner.DONE, job.message
    (first,) = bl_helpers.new_strips(blend, before)
    invariants.check(blend)

    invariants = bl_helpers.Invariants(blend)  # the first result is now existing work
    bl_helpers.select_only(blend, strip)
    bpy.ops.sequencer.gan_style_apply(style=style, mix=0.0)
    job = runner.job_for(blend)
    finish(runner, job)
    assert job.state == runner.DONE, job.message
    assert job.steps == [] and "resumed" in job.message
    (second,) = bl_helpers.new_strips(blend, before | {first.name})
    assert second.directory == first.directory and second.channel != first.channel
    assert len(os.listdir(bl_helpers.output_root())) == 1
    invariants.check(blend)


def test_same_strip_name_in_two_scenes_at_once(runner, blend, media, style):
    """Two jobs at once whose strips have the same name get separate folders; each new strip
    shows its own source."""
    other = bpy.data.scenes.new("Other")
    other.sequence_editor_create()
    other.render.fps, other.render.fps_base = bl_helpers.FPS, 1.0
    a = bl_helpers.add_movie(blend, media.movie, "Clip", channel=1, frame_start=1)
    a.frame_offset_end = bl_helpers.MOVIE_FRAMES - 4
    b = bl_helpers.add_images(other, media.images[:4], "Clip", channel=1, frame_start=1)
    bl_helpers.select_only(blend, a)
    bl_helpers.select_only(other, b)
    invariants_a = bl_helpers.Invariants(blend)
    invariants_b = bl_helpers.Invariants(other)
    bpy.ops.sequencer.gan_style_apply(style=style, mix=0.0)
    with bpy.context.temp_override(scene=other):
        bpy.ops.sequencer.gan_style_apply(style=style, mix=0.0)
    jobs = [runner.job_for(blend), runner.job_for(other)]
    assert jobs[0] is not jobs[1] and all(j.active for j in jobs)
    for job in jobs:
        finish(runner, job)
        assert job.state == runner.DONE, job.message
    (new_a,) = bl_helpers.new_strips(blend, {"Clip"})
    (new_b,) = bl_helpers.new_strips(other, {"Clip"})
    files_a, files_b = bl_helpers.strip_files(new_a), bl_helpers.strip_files(new_b)
    assert os.path.dirname(files_a[0]) != os.path.dirname(files_b[0])
    movie = bl_helpers.movie_frames(media.movie)
    for got, want in [(files_a[0], movie[0]), (files_b[0], cv2.imread(media.images[0]))]:
        assert abs(cv2.imread(got).astype(int) - want.astype(int)).max() <= 1
    invariants_a.check(blend)
    invariants_b.check(other)
