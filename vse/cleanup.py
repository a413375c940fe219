"""Clean Up: stylized frame folders that no strip uses any more, and unfinished trainings.

What counts as unused is decided conservatively, because a removed folder cannot come back:
- a frame folder is one of `gan_style/*` beside the saved .blend (where Apply writes); it is
  left out when a strip of any scene of the open file reads a file in it, when a running job
  writes it, or when another .blend file in the same folder names it (several versions of an
  edit often share one folder: their strips are looked up in their file's bytes, plain or
  compressed, and a file that cannot be read keeps every folder);
- an unfinished training is `<library>/.training/<name>` with no `<name>.ganstyle` beside it
  and no job training it.
Frames of unsaved files (in the data folder) are never listed: a file saved later points to
them by absolute path, and nothing tells which file that is.
"""

from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import dataclass

import bpy

from . import compat, scheduler, storage

FRAMES, TRAINING = "frames", "training"
_BLEND_MAGIC, _GZIP_MAGIC, _ZSTD_MAGIC = b"BLENDER", b"\x1f\x8b", b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 22


@dataclass
class Leftover:
    path: str
    kind: str   # FRAMES or TRAINING
    size: int   # bytes

    @property
    def label(self) -> str:
        what = "Frames" if self.kind == FRAMES else "Unfinished training"
        return f"{what}: {os.path.basename(self.path)} ({human_size(self.size)})"


def human_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def folder_size(folder: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _key(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def used_paths() -> set[str]:
    """Every file or folder a strip of the open file reads (all scenes, metas included)."""
    used = set()
    for scene in bpy.data.scenes:
        for strip in compat.strips_all(scene):
            library = strip.id_data.library
            directory = getattr(strip, "directory", None)
            if directory:
                used.add(_key(storage.absolute(directory, library)))
            filepath = getattr(strip, "filepath", None)
            if filepath:
                used.add(_key(storage.absolute(filepath, library)))
    return used


def _claimed() -> set[str]:
    """Folders and files running jobs write (their claims and scratch folders)."""
    claimed = set()
    for job in scheduler.running_jobs():
        claimed.update(_key(p) for p in job.claims)
        if job.work_dir:
            claimed.add(_key(job.work_dir))
    return claimed


def _names_in(blend: str, names: list[str]) -> set[str] | None:
    """Which of `names` occur in the bytes of a .blend file (None: unreadable or compressed in
    a way the standard library cannot read, so it may name any of them)."""
    wanted = [n.encode("utf-8") for n in names]
    found: set[str] = set()
    try:
        with open(blend, "rb") as raw:
            head = raw.read(7)
            raw.seek(0)
            if head.startswith(_GZIP_MAGIC):  # "Compress" before Blender 3.0
                stream = gzip.GzipFile(fileobj=raw)
            elif head.startswith(_ZSTD_MAGIC):  # "Compress" since 3.0 (the default in 5.0)
                try:  # Blender's Python ships it (blend_render_info.py reads .blend with it)
                    import zstandard
                except ImportError:
                    return None
                stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            elif head == _BLEND_MAGIC:
                stream = raw
            else:
                return None
            overlap = max((len(w) for w in wanted), default=1)
            tail = b""
            while chunk := stream.read(_CHUNK):
                window = tail + chunk
                for name, data in zip(names, wanted):
                    if name not in found and data in window:
                        found.add(name)
                tail = window[-overlap:]
    except Exception:  # noqa: BLE001 - damaged or foreign: it may name any folder
        return None
    return found


def _other_blends(folder: str, own: str) -> list[str]:
    """The .blend files of `folder` other than the open one (its `.blend1` backups are older
    states of the open file, not other files)."""
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return []
    return [os.path.join(folder, e) for e in entries
            if e.lower().endswith(".blend") and os.path.normcase(e) != os.path.normcase(own)]


def frame_folders() -> tuple[list[str], list[str]]:
    """(unused frame folders of the open file, notes about folders kept for other files)."""
    if not bpy.data.filepath:
        return [], []
    parent, _relative = storage.output_parent(bpy.data.filepath)
    try:
        names = sorted(e for e in os.listdir(parent) if os.path.isdir(os.path.join(parent, e)))
    except OSError:
        return [], []
    used, claimed = used_paths(), _claimed()
    candidates = []
    for name in names:
        folder = _key(os.path.join(parent, name))
        if any(_inside(p, folder) for p in used) or any(
                _inside(folder, c) or _inside(c, folder) for c in claimed):
            continue
        candidates.append(name)
    notes = []
    for blend in _other_blends(os.path.dirname(parent), os.path.basename(bpy.data.filepath)):
        if not candidates:
            break
        named = _names_in(blend, candidates)
        if named is None:
            notes.append(f"{os.path.basename(blend)} cannot be read: "
                         f"{len(candidates)} frame folder(s) kept for it")
            candidates = []
        elif named:
            notes.append(f"{len(named)} frame folder(s) kept: {os.path.basename(blend)} "
                         "names them")
            candidates = [c for c in candidates if c not in named]
    return [os.path.join(parent, c) for c in candidates], notes


def unfinished_trainings(library: str) -> list[str]:
    root = os.path.join(library, ".training")
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    claimed = _claimed()
    found = []
    for name in names:
        folder = os.path.join(root, name)
        if (not os.path.isdir(folder) or os.path.lexists(
                storage.style_path_in_library(library, name))
                or any(_inside(_key(folder), c) or _inside(c, _key(folder)) for c in claimed)):
            continue
        found.append(folder)
    return found


def find_leftovers(context=None) -> tuple[list[Leftover], list[str]]:
    """(what Clean Up would remove, notes on what it keeps and why)."""
    frames, notes = frame_folders()
    items = [Leftover(p, FRAMES, folder_size(p)) for p in frames]
    items += [Leftover(p, TRAINING, folder_size(p))
              for p in unfinished_trainings(storage.library_path(context))]
    return items, notes


def remove(items: list[Leftover], context=None) -> tuple[list[Leftover], list[str]]:
    """Remove `items` that are still leftovers now (checked again); (removed, errors)."""
    current = {_key(i.path) for i in find_leftovers(context)[0]}
    removed, errors = [], []
    for item in items:
        if _key(item.path) not in current:
            continue
        try:
            shutil.rmtree(item.path)
        except OSError as exc:
            errors.append(f"{item.path}: {exc.strerror or exc}")
            continue
        removed.append(item)
    return removed, errors
