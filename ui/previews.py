"""Icons for style thumbnails and training previews (a `bpy.utils.previews` collection).

A style file carries its thumbnail as PNG bytes; they are written once to a cache file in the
user folder (named by a hash of the style path, modification time and size) and loaded from
there, because previews load from files only.
"""

from __future__ import annotations

import hashlib
import os

import bpy.utils.previews

from ..vse import storage

_collection = None
_preview_keys: list[str] = []
KEEP_PREVIEWS = 4


def _previews():
    global _collection
    if _collection is None:
        _collection = bpy.utils.previews.new()
    return _collection


def style_icon(entry) -> int:
    """Icon id of a library entry's thumbnail (0 when it has none)."""
    if not entry.thumbnail_png:
        return 0
    key = hashlib.sha1(f"{entry.path}|{entry.stamp}".encode("utf-8", "surrogatepass")).hexdigest()
    previews = _previews()
    if key not in previews:
        path = os.path.join(storage.user_dir("thumbnails"), key + ".png")
        if not os.path.isfile(path):
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as handle:
                handle.write(entry.thumbnail_png)
            os.replace(tmp, path)  # a cache file of our own: same bytes for the same key
        previews.load(key, path, 'IMAGE')
    return previews[key].icon_id


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
