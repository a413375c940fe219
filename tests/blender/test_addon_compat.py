"""Blender 4.2 LTS to 5.1: no API that 5.1 deprecates, outside the compatibility helper."""

from __future__ import annotations

import os
import re

import pytest

import bl_helpers

pytestmark = pytest.mark.lts


def test_no_deprecated_strip_names_outside_compat(addon):
    compat = addon.vse.compat
    pattern = re.compile(r"\.(%s)\b" % "|".join(compat.DEPRECATED_STRIP_NAMES))
    found = []
    for folder in ("operators", "ui", "vse"):
        for name in sorted(os.listdir(os.path.join(bl_helpers.ROOT, folder))):
            path = os.path.join(bl_helpers.ROOT, folder, name)
            if not name.endswith(".py") or name == "compat.py":
                continue
            with open(path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    code = line.split("#", 1)[0]
                    for match in pattern.finditer(code):
                        # operator properties of the same name (self.frame_start) are not strips
                        if not re.search(r"(self|op|settings|scene)\.%s" % match.group(1), code):
                            found.append(f"{folder}/{name}:{number}: {line.strip()}")
    assert not found, "deprecated in 5.1, use vse/compat.py:\n" + "\n".join(found)


def test_compat_reads_the_strip_timing_of_this_blender(addon, blend, media):
    compat = addon.vse.compat
    movie = bl_helpers.add_movie(blend, media.movie, "Movie", channel=1, frame_start=5)
    movie.animation_offset_start = 2
    movie.frame_offset_start = 3
    movie.frame_offset_end = 4
    assert compat.content_start(movie) == 5
    assert compat.content_duration(movie) == bl_helpers.MOVIE_FRAMES - 2
    assert compat.content_trim_start(movie) == 2
    assert compat.left_handle(movie) == 8
    assert compat.right_handle(movie) == 5 + bl_helpers.MOVIE_FRAMES - 2 - 4
    assert compat.HANDLE_NAMES == ("left_handle" in type(movie).bl_rna.properties)
