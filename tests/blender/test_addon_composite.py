"""Results composite like their source: alpha and 16 bits pass through, the strip's
compositing settings are copied, movies at another frame rate come at their own size, strips
without pixels of their own and float images are refused in one line."""

from __future__ import annotations

import os

import bpy
import cv2
import numpy as np
import pytest

import bl_helpers

W, H = bl_helpers.W, bl_helpers.H


def apply(**options):
    return bpy.ops.sequencer.gan_style_apply(**options)


def the_new_strip(scene, before):
    (new,) = bl_helpers.new_strips(scene, before)
    return new


def unchanged(path):
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


def rgba_images(folder, count=4):
    """BGRA PNGs: a coded picture with a soft-edged disc of coverage."""
    yy, xx = np.mgrid[:H, :W]
    alpha = np.clip(255 - 12 * np.hypot(xx - W / 2, yy - H / 2), 0, 255).astype(np.uint8)
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"rgba_{i:03d}.png")
        cv2.imwrite(path, np.dstack([bl_helpers.coded_frame(i, seed=3), alpha]))
        paths.append(path)
    return paths, alpha


@pytest.mark.lts
def test_an_rgba_image_strip_keeps_its_alpha(blend, style, tmp_path):
    paths, alpha = rgba_images(str(tmp_path))
    strip = bl_helpers.add_images(blend, paths, "Overlay", channel=2, frame_start=1)
    bl_helpers.select_only(blend, strip)
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert apply(style=style, mix=1.0) == {'FINISHED'}
    new = the_new_strip(blend, before)
    for source, output in zip(paths, bl_helpers.strip_files(new)):
        styled = unchanged(output)
        assert styled.shape == (H, W, 4), "the alpha channel was dropped"
        assert np.array_equal(styled[:, :, 3], alpha)  # coverage untouched
        assert not np.array_equal(styled[:, :, :3], unchanged(source)[:, :, :3])  # colour styled


@pytest.mark.lts
def test_the_new_strip_copies_how_the_source_composites(blend, media, style):
    strip = bl_helpers.add_images(blend, media.images[:3], "Source", channel=1, frame_start=1)
    strip.blend_type = 'ADD'
    strip.blend_alpha = 0.4
    strip.alpha_mode = 'PREMUL'
    strip.colorspace_settings.name = 'Rec.1886'
    strip.transform.offset_x, strip.transform.offset_y = 7.0, -3.0
    strip.transform.scale_x, strip.transform.scale_y = 0.5, 0.75
    strip.transform.rotation = 0.3
    strip.crop.min_x, strip.crop.max_y = 2, 3
    strip.use_flip_x = True
    bl_helpers.select_only(blend, strip)
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert apply(style=style, mix=0.5) == {'FINISHED'}
    new = the_new_strip(blend, before)
    assert (new.blend_type, round(new.blend_alpha, 5), new.alpha_mode) == ('ADD', 0.4, 'PREMUL')
    assert new.colorspace_settings.name == 'Rec.1886'
    assert (new.transform.offset_x, new.transform.offset_y) == (7.0, -3.0)
    assert (new.transform.scale_x, new.transform.scale_y) == (0.5, 0.75)
    assert round(new.transform.rotation, 5) == 0.3
    assert (new.crop.min_x, new.crop.max_y, new.use_flip_x) == (2, 3, True)
    # The result is what the editor works on next: selected and active, the source not.
    assert new.select and not strip.select
    assert blend.sequence_editor.active_strip == new


def test_a_movie_at_another_frame_rate_gives_the_frames_blender_shows_at_its_own_size(
        blend, style, tmp_path):
    """23.976 fps in a 24 fps scene, trimmed and offset, on a larger canvas with a transform:
    every frame at Mix 0 is exactly the source frame Blender shows there, at the clip's size,
    without canvas borders or the transform baked in (the new strip copies the transform)."""
    path = str(tmp_path / "ntsc.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"FFV1"), 24000 / 1001, (W, H))
    for i in range(30):
        writer.write(bl_helpers.coded_frame(i, seed=7))
    writer.release()
    blend.render.resolution_x, blend.render.resolution_y = 2 * W, 2 * H
    strip = bl_helpers.add_movie(blend, path, "NTSC", channel=1, frame_start=4)
    strip.animation_offset_start = 3
    strip.frame_offset_start = 2
    strip.frame_offset_end = 5
    strip.transform.offset_x = 11.0
    assert abs(strip.fps - 23.976) < 1e-3
    bl_helpers.select_only(blend, strip)
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert apply(style=style, mix=0.0) == {'FINISHED'}
    new = the_new_strip(blend, before)
    assert new["gan_style"]["source_pixels"] == "RENDER"  # Blender says which frame it shows
    assert new.transform.offset_x == 11.0
    decoded = bl_helpers.movie_frames(path)
    outputs = [unchanged(f) for f in bl_helpers.strip_files(new)]
    assert len(outputs) == strip.frame_final_duration
    for position, output in enumerate(outputs):
        assert output.shape[:2] == (H, W), "not the clip's own size"
        # Blender shows this strip 1:1 (it was made with the API, not stretched to 24 fps).
        frame = 3 + int(strip.frame_final_start - strip.frame_start) + position
        assert np.array_equal(output[:, :, :3], decoded[frame]), position


@pytest.mark.lts
def test_a_16_bit_png_strip_keeps_its_16_bits(blend, style, tmp_path):
    deep = [np.minimum(bl_helpers.coded_frame(i, seed=4).astype(np.int32) * 257 + 77 * i, 65535)
            .astype(np.uint16) for i in range(3)]
    paths = []
    for i, image in enumerate(deep):
        paths.append(str(tmp_path / f"deep_{i}.png"))
        cv2.imwrite(paths[-1], image)
    strip = bl_helpers.add_images(blend, paths, "Deep", channel=1, frame_start=1)
    bl_helpers.select_only(blend, strip)
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert apply(style=style, mix=0.0) == {'FINISHED'}
    new = the_new_strip(blend, before)
    for source, output in zip(deep, bl_helpers.strip_files(new)):
        assert np.array_equal(unchanged(output), source)  # not a bit lost
    # The result is selected now: Apply skips it (it is stylized) and says so.
    with pytest.raises(RuntimeError, match="'Deep \\[tiny\\]' is already stylized: use Re-apply"):
        apply(style=style, mix=1.0)
    bl_helpers.select_only(blend, strip)
    before = {s.name for s in bl_helpers.strips_all(blend)}
    assert apply(style=style, mix=1.0) == {'FINISHED'}
    for source, output in zip(deep, bl_helpers.strip_files(the_new_strip(blend, before))):
        styled = unchanged(output)
        assert styled.dtype == np.uint16 and styled.shape == source.shape
        assert not np.array_equal(styled, source)


def write_exr(path):
    image = bpy.data.images.new("float", W, H, float_buffer=True)
    image.pixels.foreach_set(np.full(W * H * 4, 2.5, np.float32))  # brighter than white
    image.filepath_raw = path
    image.file_format = 'OPEN_EXR'
    image.save()
    bpy.data.images.remove(image)
    assert os.path.isfile(path)
    return path


@pytest.mark.lts
def test_float_adjustment_and_multicam_strips_are_refused_in_one_line(blend, style, tmp_path):
    exr = bl_helpers.add_images(blend, [write_exr(str(tmp_path / "hdr.exr"))], "HDR",
                                channel=1, frame_start=1)
    adjustment = bl_helpers.add_effect(blend, "Grade", 'ADJUSTMENT', channel=2, frame_start=1,
                                       length=3)
    multicam = bl_helpers.add_effect(blend, "Cams", 'MULTICAM', channel=3, frame_start=1,
                                     length=3)
    before = {s.name for s in bl_helpers.strips_all(blend)}
    for strip, expected in ((exr, r"Strip 'HDR' shows float images \(hdr.exr\).*16-bit PNG"),
                            (adjustment, r"Strip 'Grade': an adjustment strip has no pixels"),
                            (multicam, r"Strip 'Cams': a multicam strip shows other strips")):
        bl_helpers.select_only(blend, strip)
        with pytest.raises(RuntimeError, match=expected) as error:
            apply(style=style)
        assert "\n" not in str(error.value).strip()
    assert bl_helpers.new_strips(blend, before) == []
    assert not os.path.isdir(bl_helpers.output_root())
