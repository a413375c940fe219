"""The style library: import without overwriting, rename, remove, the list and its icons."""

from __future__ import annotations

import os
import shutil

import bpy
import cv2
import numpy as np
import pytest

import bl_helpers

pytestmark = pytest.mark.lts


@pytest.fixture
def library(addon, style):
    """The library folder; whatever a test adds to it is removed afterwards."""
    folder = addon.vse.storage.library_dir()
    before = set(os.listdir(folder))
    yield folder
    for name in set(os.listdir(folder)) - before:
        path = os.path.join(folder, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
    bpy.ops.sequencer.gan_style_library_refresh()


def listed():
    return {item.name: item for item in bpy.context.window_manager.gan_style_library}


def test_import_copies_under_a_free_name_and_never_overwrites(library, style, tmp_path):
    source = tmp_path / "shared.ganstyle"
    shutil.copy(os.path.join(library, style + ".ganstyle"), source)
    digest = bl_helpers.file_digest(source)
    assert bpy.ops.sequencer.gan_style_library_import(filepath=str(source)) == {'FINISHED'}
    assert bpy.ops.sequencer.gan_style_library_import(filepath=str(source)) == {'FINISHED'}
    for name in ("shared", "shared_2"):
        assert bl_helpers.file_digest(os.path.join(library, name + ".ganstyle")) == digest
    assert bl_helpers.file_digest(source) == digest
    assert {"shared", "shared_2"} <= set(listed())


def test_import_refuses_what_is_not_a_style_file(library, tmp_path):
    bogus = tmp_path / "bogus.ganstyle"
    bogus.write_bytes(b"PK\x03\x04 certainly not a style")
    before = set(os.listdir(library))
    with pytest.raises(RuntimeError, match="bogus.ganstyle"):
        bpy.ops.sequencer.gan_style_library_import(filepath=str(bogus))
    assert set(os.listdir(library)) == before


def test_rename_never_replaces_and_remove_deletes(library, style, tmp_path):
    shutil.copy(os.path.join(library, style + ".ganstyle"), tmp_path / "a.ganstyle")
    bpy.ops.sequencer.gan_style_library_import(filepath=str(tmp_path / "a.ganstyle"))
    digest = bl_helpers.file_digest(os.path.join(library, style + ".ganstyle"))
    with pytest.raises(RuntimeError, match="exists already"):
        bpy.ops.sequencer.gan_style_library_rename(name="a", new_name=style)
    assert bl_helpers.file_digest(os.path.join(library, style + ".ganstyle")) == digest
    assert os.path.isfile(os.path.join(library, "a.ganstyle"))
    with pytest.raises(RuntimeError, match="cannot be a style name"):
        bpy.ops.sequencer.gan_style_library_rename(name="a", new_name="../outside")
    assert bpy.ops.sequencer.gan_style_library_rename(name="a", new_name="b") == {'FINISHED'}
    assert not os.path.exists(os.path.join(library, "a.ganstyle"))
    assert "b" in listed() and "a" not in listed()
    assert bpy.ops.sequencer.gan_style_library_remove(name="b") == {'FINISHED'}
    assert not os.path.exists(os.path.join(library, "b.ganstyle"))
    assert "b" not in listed()
    with pytest.raises(RuntimeError, match="No style named 'b'"):
        bpy.ops.sequencer.gan_style_library_remove(name="b")


def test_list_shows_metadata_and_names_broken_files(library, style, addon):
    with open(os.path.join(library, "broken.ganstyle"), "wb") as handle:
        handle.write(b"\x00" * 5)
    bpy.ops.sequencer.gan_style_library_refresh()
    items = listed()
    assert items["broken"].error and "truncated" in items["broken"].error
    good = items[style]
    assert not good.error and good.preset == "draft" and good.path.endswith(".ganstyle")
    assert good.steps == bl_helpers.TRAIN_STEPS


def test_thumbnails_and_the_style_picker(library, style, addon, blend):
    lib_module = addon.vse.library
    entry = lib_module.read_entry(os.path.join(library, style + ".ganstyle"))
    assert entry.thumbnail_png and entry.thumbnail_png.startswith(b"\x89PNG")
    bpy.ops.sequencer.gan_style_library_refresh()  # reading the library writes the cache
    cached = lib_module.thumbnail_file(entry)
    with open(cached, "rb") as handle:
        assert handle.read() == entry.thumbnail_png
    icon = addon.ui.previews.style_icon(entry)
    assert icon == addon.ui.previews._previews()[cached].icon_id
    settings = blend.gan_style
    names = [item[0] for item in addon.ui.props._style_enum_items(settings, bpy.context)]
    assert style in names
    settings.style = style
    assert settings.style_name == style
    assert addon.ui.props.current_style_name(settings) == style


SHIPPED = ("Olive_Trees", "Sepia", "Starry_Night")


def test_shipped_styles_are_listed_read_only_and_apply(library, blend, media, addon):
    bpy.ops.sequencer.gan_style_library_refresh()
    items = listed()
    for name in SHIPPED:
        assert name in items and items[name].builtin and not items[name].error
        assert items[name].path.startswith(addon.vse.storage.BUILTIN_STYLES_DIR)
        with pytest.raises(RuntimeError, match="ships with the extension"):
            bpy.ops.sequencer.gan_style_library_remove(name=name)
        with pytest.raises(RuntimeError, match="ships with the extension"):
            bpy.ops.sequencer.gan_style_library_rename(name=name, new_name="mine")
        assert os.path.isfile(items[name].path)

    strip = bl_helpers.add_images(blend, media.images[:2], "Shot", channel=1, frame_start=1)
    bl_helpers.select_only(blend, strip)
    assert bpy.ops.sequencer.gan_style_apply(style="Starry_Night") == {'FINISHED'}
    styled = [s for s in bl_helpers.strips_all(blend) if s.name != "Shot"]
    assert len(styled) == 1 and len(bl_helpers.strip_files(styled[0])) == 2
    source = cv2.imread(media.images[0])
    result = cv2.imread(bl_helpers.strip_files(styled[0])[0])
    assert result.shape == source.shape
    assert np.abs(result.astype(int) - source).mean() > 5  # the style changed the picture


def test_a_library_style_of_the_same_name_takes_precedence(library, style, addon):
    own = os.path.join(library, "Starry_Night.ganstyle")
    shutil.copy(os.path.join(library, style + ".ganstyle"), own)
    bpy.ops.sequencer.gan_style_library_refresh()
    item = listed()["Starry_Night"]
    assert item.path == own and not item.builtin
    assert addon.vse.library.resolve_style(library, "Starry_Night") == own
