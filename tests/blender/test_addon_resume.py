"""Finished work is never lost: a failed or cancelled Apply keeps the frames it finished, and
Apply on the same strip with the same settings makes only the missing frames; the result is
the same as an uninterrupted run."""

from __future__ import annotations

import os
import shutil

import bpy
import pytest

import bl_helpers

pytestmark = pytest.mark.lts


def stamps(folder):
    """name -> (inode, mtime, size) of the frames in a folder."""
    found = {}
    for name in sorted(os.listdir(folder)):
        if name.startswith("frame_"):
            stat = os.stat(os.path.join(folder, name))
            found[name] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    return found


@pytest.fixture
def sequence(blend, media, tmp_path):
    """A 12-image strip whose files the test may damage (copies of the session media)."""
    folder = tmp_path / "seq"
    folder.mkdir()
    paths = [shutil.copy(p, folder) for p in media.images]
    strip = bl_helpers.add_images(blend, paths, "Seq", channel=1, frame_start=1)
    bl_helpers.select_only(blend, strip)
    return strip, paths


def frames_folder(strip_name, style):
    return os.path.join(bl_helpers.output_root(), f"{strip_name}_{style}")


def test_a_failed_apply_keeps_its_frames_and_the_next_makes_only_the_missing_ones(
        runner, blend, sequence, style, tmp_path):
    strip, paths = sequence
    good = str(tmp_path / "good.png")
    os.replace(paths[7], good)
    with open(paths[7], "wb") as handle:  # frame 8 of the strip is damaged
        handle.write(b"not a png")
    before = {s.name for s in bl_helpers.strips_all(blend)}
    with pytest.raises(RuntimeError, match=r"finished frames are kept \(7 of 12 in .*\): Apply "
                                           r"again with the same settings"):
        bpy.ops.sequencer.gan_style_apply(style=style, mix=1.0)
    assert bl_helpers.new_strips(blend, before) == []  # no strip until every frame exists
    folder = frames_folder("Seq", style)
    kept = stamps(folder)
    assert list(kept) == [f"frame_{n:06d}.png" for n in range(1, 8)]

    os.replace(good, paths[7])  # the user puts the file back
    bl_helpers.select_only(blend, strip)
    assert bpy.ops.sequencer.gan_style_apply(style=style, mix=1.0) == {'FINISHED'}
    job = runner.job_for(blend)
    assert "resumed" in job.message
    assert sum(step.weight for step in job.steps) == 5  # only the missing frames were made
    [step] = job.steps
    assert step.job["first_number"] == 8 and step.job["input"]["frames"] == list(range(7, 12))
    now = stamps(folder)
    assert len(now) == 12 and all(now[name] == kept[name] for name in kept)  # untouched
    (new,) = bl_helpers.new_strips(blend, before)
    assert bl_helpers.strip_files(new) == [os.path.join(folder, n) for n in now]

    # The same as an uninterrupted run (which gets a folder of its own: this one is moved).
    os.replace(folder, folder + "_resumed")
    bl_helpers.select_only(blend, strip)
    assert bpy.ops.sequencer.gan_style_apply(style=style, mix=1.0) == {'FINISHED'}
    assert sum(step.weight for step in runner.job_for(blend).steps) == 12
    for name in now:
        assert bl_helpers.file_digest(os.path.join(folder, name)) == bl_helpers.file_digest(
            os.path.join(folder + "_resumed", name)), name


def test_other_settings_do_not_reuse_the_frames(runner, blend, sequence, style):
    assert bpy.ops.sequencer.gan_style_apply(style=style, mix=1.0) == {'FINISHED'}
    bl_helpers.select_only(blend, sequence[0])
    assert bpy.ops.sequencer.gan_style_apply(style=style, mix=0.5) == {'FINISHED'}
    assert sum(step.weight for step in runner.job_for(blend).steps) == 12
    assert sorted(os.listdir(bl_helpers.output_root())) == [f"Seq_{style}", f"Seq_{style}_2"]


def test_a_cancelled_apply_keeps_its_frames_and_resumes(window_runner, blend, media, style):
    runner = window_runner
    movie = bl_helpers.add_movie(blend, media.movie, "Movie", channel=1, frame_start=1)
    bl_helpers.select_only(blend, movie)
    assert bpy.ops.sequencer.gan_style_apply(style=style, mix=1.0) == {'FINISHED'}
    job = runner.job_for(blend)
    folder = frames_folder("Movie", style)
    assert bl_helpers.wait_for(lambda: stamps(folder) or not job.active, step=0.005,
                               tick=runner.tick)
    bpy.ops.sequencer.gan_style_cancel()
    assert bl_helpers.wait_for(lambda: not job.active, timeout=60, tick=runner.tick)
    kept = stamps(folder)
    if job.state == runner.DONE or len(kept) == bl_helpers.MOVIE_FRAMES:
        pytest.fail("the job finished before the cancel: use a longer movie")
    assert job.state == runner.CANCELLED and "finished frames are kept" in job.message
    # Frames are complete or absent, and numbered from the start without gaps.
    assert list(kept) == [f"frame_{n:06d}.png" for n in range(1, len(kept) + 1)]
    bl_helpers.select_only(blend, movie)
    assert bpy.ops.sequencer.gan_style_apply(style=style, mix=1.0) == {'FINISHED'}
    job = runner.job_for(blend)
    assert sum(step.weight for step in job.steps) == bl_helpers.MOVIE_FRAMES - len(kept)
    assert bl_helpers.wait_for(lambda: not job.active, timeout=120, tick=runner.tick)
    assert job.state == runner.DONE, job.message
    now = stamps(folder)
    assert len(now) == bl_helpers.MOVIE_FRAMES and all(now[n] == kept[n] for n in kept)
