"""The style library: a folder of `.ganstyle` files, and its operators.

A style's library name is its file name without extension. The styles that ship with the
extension (its `styles/` folder) are listed too, read-only; a library style of the same name
takes precedence. Style files are untrusted input
(artists trade them): they are read with `gan.stylefile.read_style_info` (no code, no torch)
and a defective file is listed with its error instead of breaking the panel.
"""

from __future__ import annotations

import os
import hashlib
import shutil
from dataclasses import dataclass

from ..gan import stylefile
from . import storage
from .errors import UserError
from .storage import STYLE_EXTENSION


@dataclass
class StyleEntry:
    name: str             # library name (file stem)
    path: str
    title: str = ""       # name stored in the file
    preset: str = ""
    steps: int = 0
    created: str = ""
    sources: str = ""
    error: str = ""       # why the file cannot be used ('' when fine)
    thumbnail_png: bytes | None = None
    stamp: tuple = ()
    builtin: bool = False  # shipped with the extension: cannot be removed or renamed


_info_cache: dict[str, StyleEntry] = {}


def read_entry(path: str) -> StyleEntry:
    """Metadata of one style file (cached by modification time and size)."""
    try:
        stat = os.stat(path)
        stamp = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = ()
    cached = _info_cache.get(path)
    if cached is not None and cached.stamp == stamp and stamp:
        return cached
    name = os.path.splitext(os.path.basename(path))[0]
    entry = StyleEntry(name=name, path=path, stamp=stamp)
    try:
        info = stylefile.read_style_info(path)
    except stylefile.StyleFileError as exc:
        entry.error = str(exc)
    else:
        meta = info.meta
        entry.title = _text(info.name)
        entry.preset = _text(meta.get("preset", ""))
        steps = meta.get("steps")
        entry.steps = steps if isinstance(steps, int) and not isinstance(steps, bool) else 0
        entry.created = _text(meta.get("created", ""))[:19].replace("T", " ")
        entry.sources = _describe_sources(meta.get("sources"))
        entry.thumbnail_png = info.thumbnail_png
    _info_cache[path] = entry
    return entry


def _text(value, limit: int = 200) -> str:
    """Metadata comes from strangers: printable, bounded text only."""
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return text[:limit]


def _describe_sources(sources) -> str:
    if isinstance(sources, dict):
        parts = []
        for key, value in sources.items():
            names = value if isinstance(value, list) else [value]
            parts.append(f"{key}: " + ", ".join(os.path.basename(str(n)) for n in names[:4]))
        return _text("; ".join(parts))
    if isinstance(sources, list):
        return _text(", ".join(os.path.basename(str(s)) for s in sources[:6]))
    return _text(sources or "")


def _style_files(folder: str) -> list[str]:
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names
            if n.lower().endswith(STYLE_EXTENSION) and not n.startswith(".")
            and os.path.isfile(os.path.join(folder, n))]


def scan(library: str) -> list[StyleEntry]:
    """The library's styles and the built-in ones it does not shadow, sorted by name."""
    entries = {}
    for path in _style_files(storage.BUILTIN_STYLES_DIR):
        entry = read_entry(path)
        entry.builtin = True
        entries[entry.name] = entry
    for path in _style_files(library):
        entry = read_entry(path)
        entries[entry.name] = entry
    return sorted(entries.values(), key=lambda e: e.name.lower())


_listing: dict = {}  # what `entries` last read: {"key": folder stamps, "entries": [...]}


def _folder_stamp(folder: str):
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:
        return None


def entries(library: str) -> list[StyleEntry]:
    """`scan(library)`, read again only when the library folder changed (its modification
    time: adding, removing or renaming a style changes it) or after `forget()`. For panels,
    which draw many times a second."""
    key = (library, _folder_stamp(library), _folder_stamp(storage.BUILTIN_STYLES_DIR))
    if _listing.get("key") != key:
        _listing.update(key=key, entries=scan(library))
    return _listing["entries"]


def forget() -> None:
    """The next `entries` reads the folder again."""
    _listing.clear()


def thumbnail_file(entry: StyleEntry) -> str:
    """The cache file of a style's thumbnail (named by the style's path, modification time and
    size; not created here, see `write_thumbnails`). Previews load from files only."""
    key = hashlib.sha1(f"{entry.path}|{entry.stamp}".encode("utf-8", "surrogatepass"))
    return os.path.join(storage.user_dir("thumbnails", create=False), key.hexdigest() + ".png")


def write_thumbnails(styles: list[StyleEntry]) -> None:
    """Write the thumbnails of styles that have none in the cache yet (when the library is
    read on purpose, never while drawing)."""
    for entry in styles:
        if not entry.thumbnail_png:
            continue
        path = thumbnail_file(entry)
        if os.path.isfile(path):
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(entry.thumbnail_png)
        os.replace(tmp, path)  # a cache file of our own: same bytes for the same key


def _builtin_path(name: str) -> str:
    path = storage.style_path_in_library(storage.BUILTIN_STYLES_DIR, name)
    return path if os.path.isfile(path) else ""


def _refuse_builtin(library: str, name: str, action: str) -> None:
    if not os.path.isfile(storage.style_path_in_library(library, name)) and _builtin_path(name):
        raise UserError(f"'{name}' ships with the extension and cannot be {action}: import a "
                        "copy of its file into the library to change it")


def resolve_style(library: str, text: str) -> str:
    """A style given as a library name or a file path -> an existing file path."""
    text = text.strip()
    if not text:
        raise UserError("No style chosen: pick one from the style library")
    as_path = storage.absolute(text)
    if os.path.isfile(as_path):
        return as_path
    in_library = storage.style_path_in_library(library, text)
    if os.path.isfile(in_library):
        return in_library
    if _builtin_path(text):
        return _builtin_path(text)
    if os.sep in text or "/" in text or text.lower().endswith(STYLE_EXTENSION):
        raise UserError(f"Style file not found: {as_path}")
    raise UserError(f"No style named '{text}' in the style library ({library})")


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or name != storage.safe_name(name, limit=200):
        raise UserError(f"'{name}' cannot be a style name: use letters, digits, '-', '_', '.'")
    return name


def import_style(library: str, source: str) -> str:
    """Copy a style file into the library under a free name; returns the new path."""
    source = storage.absolute(source)
    stylefile.read_style_info(source)  # refuse anything that is not a usable style file
    base = os.path.splitext(os.path.basename(source))[0]
    os.makedirs(library, exist_ok=True)
    for _ in range(100):
        target = storage.unique_style_path(library, base)
        try:
            with open(source, "rb") as src, open(target, "xb") as dst:  # never overwrite
                shutil.copyfileobj(src, dst)
        except FileExistsError:
            continue  # taken meanwhile: pick the next free name
        except OSError:
            if os.path.exists(target):
                os.unlink(target)
            raise
        return target
    raise UserError(f"No free name for {base} in {library}")


def remove_style(library: str, name: str) -> None:
    _refuse_builtin(library, name, "removed")
    path = storage.style_path_in_library(library, name)
    if not os.path.isfile(path):
        raise UserError(f"No style named '{name}' in the style library")
    os.unlink(path)
    _info_cache.pop(path, None)
    shutil.rmtree(storage.training_dir(library, name), ignore_errors=True)


def rename_style(library: str, name: str, new_name: str) -> str:
    """Rename a style file; never replaces another style. Returns the new path."""
    _refuse_builtin(library, name, "renamed")
    new_name = _check_name(new_name)
    old = storage.style_path_in_library(library, name)
    new = storage.style_path_in_library(library, new_name)
    if not os.path.isfile(old):
        raise UserError(f"No style named '{name}' in the style library")
    if os.path.normcase(old) == os.path.normcase(new):
        if old != new:
            os.rename(old, new)  # a change of case only
        return new
    try:
        os.link(old, new)  # fails if the name is taken, even in a race
    except FileExistsError:
        raise UserError(f"A style named '{new_name}' exists already") from None
    except OSError:  # no hard links on this file system
        if os.path.lexists(new):
            raise UserError(f"A style named '{new_name}' exists already") from None
        os.rename(old, new)
    else:
        os.unlink(old)
    _info_cache.pop(old, None)
    old_training = storage.training_dir(library, name)
    if os.path.isdir(old_training) and not os.path.exists(storage.training_dir(library, new_name)):
        os.rename(old_training, storage.training_dir(library, new_name))
    return new


def unfinished_training(library: str, name: str) -> str:
    """The checkpoint of an unfinished training of style `name` ('' when there is none)."""
    if not name or os.path.exists(storage.style_path_in_library(library, name)):
        return ""
    checkpoint = os.path.join(storage.training_dir(library, name), "checkpoint.pt")
    return checkpoint if os.path.isfile(checkpoint) else ""


# -- the list the panel shows (WindowManager.gan_style_library) --------------------------------

def refresh(context) -> list[StyleEntry]:
    """Re-read the library into the window manager's list (what the UIList draws) and the
    thumbnail cache (an explicit action: a library operator, a finished training, a loaded
    file, another library folder)."""
    forget()
    found = entries(storage.library_path(context))
    try:
        write_thumbnails(found)
    except OSError as exc:  # no thumbnails is no reason to keep the list stale
        print(f"GAN Style: cannot write style thumbnails: {exc.strerror or exc}")
    wm = context.window_manager
    items = wm.gan_style_library
    index = wm.gan_style_library_index
    active = items[index].name if 0 <= index < len(items) else ""
    items.clear()
    for entry in found:
        item = items.add()
        item.name = entry.name
        item.path = entry.path
        item.title = entry.title
        item.preset = entry.preset
        item.steps = entry.steps
        item.created = entry.created
        item.sources = entry.sources
        item.error = entry.error
        item.builtin = entry.builtin
    names = [e.name for e in found]
    wm.gan_style_library_index = names.index(active) if active in names else (0 if names else -1)
    return found
