"""Where the add-on keeps things: its own folder, the user folder, the style library, job output.

Nothing here overwrites: new folders are reserved with an exclusive `mkdir` and get a numeric
suffix when the name is taken.
"""

from __future__ import annotations

import ntpath
import os
import posixpath
import re
import sys
import tempfile

import bpy

# The extension's root package (`bl_ext.<repo>.gan_style`): this module lives in `<root>.operators`.
ADDON_PACKAGE = __package__.rpartition(".")[0]
ADDON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STYLE_EXTENSION = ".ganstyle"
BUILTIN_STYLES_DIR = os.path.join(ADDON_DIR, "styles")  # shipped, read-only


def preferences(context=None):
    """The add-on preferences, or None while the add-on is not enabled."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon is not None else None


def user_dir(*parts: str) -> str:
    """A folder under the extension's user folder (created)."""
    try:
        base = bpy.utils.extension_path_user(ADDON_PACKAGE, create=True)
    except ValueError:  # loaded as a legacy add-on, not as an extension
        base = bpy.utils.user_resource('DATAFILES', path="gan_style", create=True)
    path = os.path.join(base, *parts)
    os.makedirs(path, exist_ok=True)
    return path


def library_dir(context=None) -> str:
    """The style library folder: the preference, else `<user folder>/styles` (created)."""
    prefs = preferences(context)
    custom = prefs.library_dir.strip() if prefs is not None else ""
    if custom:
        path = absolute(custom)
        os.makedirs(path, exist_ok=True)
        return path
    return user_dir("styles")


def worker_python(context=None) -> str:
    """The interpreter that runs jobs: the preference, else Blender's own Python."""
    prefs = preferences(context)
    custom = prefs.python_path.strip() if prefs is not None else ""
    return absolute(custom) if custom else sys.executable


def device(context=None) -> str:
    prefs = preferences(context)
    return prefs.device.lower() if prefs is not None else "auto"


def absolute(path: str, library=None) -> str:
    """The file a path of the .blend (strip, keyframe, output or library folder) names here.

    Every path read from a .blend goes through this one function, so a file saved on Windows
    resolves on macOS and Linux and the other way round (see `resolve_path`). `library`: the
    linked library the path belongs to (its `//` is that library file's folder).
    """
    blend = bpy.data.filepath
    if library is not None:  # a library's own path is relative to the main file
        blend = resolve_path(library.filepath, os.path.dirname(blend))
    return resolve_path(path, os.path.dirname(blend))


_DRIVE = re.compile(r"^([A-Za-z]):[\\/]")


def resolve_path(path: str, blend_dir: str, windows: bool = os.name == "nt") -> str:
    """`path` as Blender resolves it on this system (`windows`: with Windows' rules), normalised.

    - `//` means the folder of the .blend (`blend_dir`); `bpy.path.abspath` only joins the two
      strings and keeps `..` (DESIGN.md), so the result is normalised here.
    - Outside Windows a backslash is a separator, as Blender's own file loading treats it: a
      .blend saved on Windows stores `//..\\clips\\a.mp4`, and Blender plays that strip on
      Linux while `bpy.path.abspath` gives a path no file has.
    - A drive-letter path (`C:\\media\\a.mp4`) outside Windows becomes `/c/media/a.mp4`, the
      path Blender itself tries there (a mount point some studios mirror), never a relative path.
    On Windows both separators work already; `ntpath.normpath` makes them one.
    """
    flavour = ntpath if windows else posixpath
    if not windows:
        drive = _DRIVE.match(path)
        if drive:
            path = "/" + drive.group(1).lower() + "/" + path[3:]
        if not path.startswith("\\\\"):  # a Windows network share keeps its prefix
            path = path.replace("\\", "/")
    if path.startswith("//") and not path.startswith("///"):
        path = flavour.join(blend_dir, path[2:]) if blend_dir else path[2:]
    return flavour.normpath(path) if path else path


def safe_name(text: str, limit: int = 60) -> str:
    """A file-name-safe version of a strip or style name."""
    cleaned = re.sub(r"[^\w.+-]+", "_", text, flags=re.UNICODE).strip("._")
    return (cleaned or "untitled")[:limit]


def reserve_folder(parent: str, name: str) -> str:
    """Create and return a new empty folder `parent/name`, `name_2`, ... (never an existing one)."""
    os.makedirs(parent, exist_ok=True)
    for number in range(1, 10000):
        candidate = os.path.join(parent, name if number == 1 else f"{name}_{number}")
        try:
            os.mkdir(candidate)
        except FileExistsError:
            continue
        return candidate
    raise OSError(f"no free folder name for {name!r} in {parent}")


def output_parent(blend_path: str) -> tuple[str, bool]:
    """Folder for stylized frames: `gan_style` beside the .blend, else in the user folder.

    Returns (folder, relative) where `relative` says strips may use a `//` path.
    """
    if blend_path:
        return os.path.join(os.path.dirname(blend_path), "gan_style"), True
    return user_dir("frames"), False


def unique_style_path(library: str, name: str) -> str:
    """`library/name.ganstyle`, or `name_2`, `name_3`, ... when taken."""
    base = safe_name(name)
    for number in range(1, 10000):
        stem = base if number == 1 else f"{base}_{number}"
        path = os.path.join(library, stem + STYLE_EXTENSION)
        if not os.path.lexists(path):
            return path
    raise OSError(f"no free style name for {name!r} in {library}")


def style_path_in_library(library: str, name: str) -> str:
    return os.path.join(library, name + STYLE_EXTENSION)


def training_dir(library: str, name: str) -> str:
    """Checkpoints and previews of the training of the style `name` (kept to resume)."""
    return os.path.join(library, ".training", name)


class FolderError(OSError):
    """A folder the add-on must write to cannot be written; the message is for the user."""


def check_writable(folder: str, what: str, hint: str) -> str:
    """Create `folder` if needed and prove that a file can be created in it (a probe that
    leaves nothing behind). Raises FolderError: "Cannot write <what> to <folder>: <why>; <hint>".
    """
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise FolderError(f"Cannot write {what} to {folder}: {exc.strerror or exc}; "
                          f"{hint}") from None
    return folder


def output_hint(relative: bool) -> str:
    return ("save the .blend in a folder you can write to" if relative else
            "check the permissions and free space of Blender's user folder")
