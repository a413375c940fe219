"""Icons for style thumbnails and training previews (a `bpy.utils.previews` collection).

A style file carries its thumbnail as PNG bytes; `vse.library.write_thumbnails` writes them
once to a cache file in the user folder when the library is read, and the icons load from
there (previews load from files only; drawing writes nothing).
"""

from __future__ import annotations

import os

import bpy.utils.previews

from ..vse import library

_collection = None
_preview_keys: list[str] = []
KEEP_PREVIEWS = 4


def _previews():
    global _collection
    if _collection is None:
        _collection = bpy.utils.previews.new()
    return _collection


def style_icon(entry) -> int:
    """Icon id of a library entry's thumbnail (0 when it has none, or none is cached yet: the
    cache is written when the library is read, `library.refresh`; drawing writes nothing)."""
    if not entry.thumbnail_png:
        return 0
    path = library.thumbnail_file(entry)
    previews = _previews()
    if path not in previews:
        if not os.path.isfile(path):
            return 0
        previews.load(path, path, 'IMAGE')
    return previews[path].icon_id


def image_icon(path: str) -> int:
    """Icon id of an image file that may change (the latest training preview)."""
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        return 0
    key = f"preview|{path}|{stamp}"
    previews = _previews()
    if key not in previews:
        previews.load(key, path, 'IMAGE')
        _preview_keys.append(key)
        while len(_preview_keys) > KEEP_PREVIEWS:
            old = _preview_keys.pop(0)
            if old in previews:
                del previews[old]
    return previews[key].icon_id


def register() -> None:
    _previews()


def unregister() -> None:
    global _collection
    if _collection is not None:
        bpy.utils.previews.remove(_collection)
        _collection = None
    _preview_keys.clear()
