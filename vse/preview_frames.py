"""The preview frames of this session: the one each scene shows, and the folders they live in.

Preview Frame (`operators/preview.py`) writes each preview to a new folder in the user folder
and remembers it here; the Style panel draws the scene's latest one (`latest`, no file-system
writes). Previews are throwaway: `remove_old` keeps the last few folders, and never one that a
scene still shows.
"""

from __future__ import annotations

import os
import shutil

IMAGE = "GAN Style Preview"  # the image datablock that shows the latest preview
KEEP = 3  # preview folders kept in the user folder (older ones are removed)

_latest: dict[int, dict] = {}  # scene session_uid -> {"path", "label"} of its last preview


def remember(scene_uid: int, path: str, label: str) -> None:
    """`path` (a PNG file) is the scene's latest preview, of `label`."""
    _latest[scene_uid] = {"path": path, "label": label}


def latest(scene) -> dict | None:
    """The scene's last preview (path and label) while its file still exists."""
    shown = _latest.get(scene.session_uid) if scene is not None else None
    return shown if shown is not None and os.path.isfile(shown["path"]) else None


def remove_old(parent: str) -> None:
    """Remove all but the last few preview folders in `parent` (ours alone live there)."""
    try:
        folders = [os.path.join(parent, n) for n in os.listdir(parent) if n.startswith("preview")]
        folders.sort(key=os.path.getmtime)
    except OSError:
        return
    shown = {os.path.dirname(p["path"]) for p in _latest.values()}
    for folder in folders[:max(0, len(folders) - (KEEP - 1))]:
        if folder not in shown:
            shutil.rmtree(folder, ignore_errors=True)
