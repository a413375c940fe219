"""Where the add-on keeps things: its own folder, the user folder, the style library, job output.

Two folders of the user's:
- the *data folder* (`data_dir`): what must outlive the extension - the default style library
  with its training checkpoints, the frames of applies made from unsaved files and the worker's
  Python environment. It is a per-user folder outside Blender's versioned configuration and
  outside the extension's own user folder, which Blender deletes when the extension is
  uninstalled (docs/decisions.md: "Files that outlive the extension").
- the extension's user folder (`user_dir`): what may be lost - job scratch folders, thumbnails.

Nothing here overwrites: new folders are reserved with an exclusive `mkdir` and get a numeric
suffix when the name is taken; files are moved with a link that refuses a taken name.
"""

from __future__ import annotations

import ntpath
import os
import posixpath
import re
import shutil
import sys
import tempfile

import bpy

from ..gan import fileio
from . import installer, options
from .errors import UserError

# The extension's root package (`bl_ext.<repo>.gan_style`): this module lives in `<root>.vse`.
ADDON_PACKAGE = __package__.rpartition(".")[0]
ADDON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STYLE_EXTENSION = ".ganstyle"
BUILTIN_STYLES_DIR = os.path.join(ADDON_DIR, "styles")  # shipped, read-only


def preferences(context=None):
    """The add-on preferences, or None while the add-on is not enabled."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon is not None else None


def user_dir(*parts: str, create: bool = True) -> str:
    """A folder under the extension's user folder (created unless `create` is False)."""
    try:
        base = bpy.utils.extension_path_user(ADDON_PACKAGE, create=create)
    except ValueError:  # loaded as a legacy add-on, not as an extension
        base = bpy.utils.user_resource('DATAFILES', path="gan_style", create=create)
    path = os.path.join(base, *parts)
    if create:
        os.makedirs(path, exist_ok=True)
    return path


# Set to a folder to keep the data elsewhere (tests, render farms, a shared drive).
DATA_DIR_ENV = "GAN_STYLE_DATA_DIR"


def data_root() -> str:
    """The per-user data folder (not created): $GAN_STYLE_DATA_DIR, else the platform's place
    for an application's own data, outside Blender's versioned folders:
    Windows `%LOCALAPPDATA%\\GAN Style`, macOS `~/Library/Application Support/GAN Style`,
    elsewhere `$XDG_DATA_HOME/gan_style` (default `~/.local/share/gan_style`)."""
    override = os.environ.get(DATA_DIR_ENV, "").strip()
    if override:
        return os.path.abspath(os.path.expanduser(override))
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA", "").strip()
        return os.path.join(base if os.path.isabs(base) else
                            os.path.join(home, "AppData", "Local"), "GAN Style")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Application Support", "GAN Style")
    base = os.environ.get("XDG_DATA_HOME", "").strip()  # XDG: relative values are ignored
    return os.path.join(base if os.path.isabs(base) else
                        os.path.join(home, ".local", "share"), "gan_style")


def data_dir(*parts: str) -> str:
    """A folder under the data folder (created)."""
    path = os.path.join(data_root(), *parts)
    os.makedirs(path, exist_ok=True)
    return path


def library_path(context=None) -> str:
    """The style library folder: the preference, else `<data folder>/styles` (not created:
    what panels draw and the library list read)."""
    prefs = preferences(context)
    custom = prefs.library_dir.strip() if prefs is not None else ""
    return absolute(custom) if custom else os.path.join(data_root(), "styles")


def library_dir(context=None) -> str:
    """The style library folder, created (for what writes into it)."""
    path = library_path(context)
    os.makedirs(path, exist_ok=True)
    return path


def env_dir() -> str:
    """The worker's private environment (Install Dependencies), one per Python version (not
    created): a venv runs on the Python it was made from."""
    return os.path.join(data_root(), "python", "py%d.%d" % sys.version_info[:2])


def env_python() -> str:
    """The private environment's interpreter, '' while there is none."""
    python = installer.env_python(env_dir())
    return python if os.path.isfile(python) else ""


def worker_python(context=None) -> str:
    """The interpreter that runs jobs: the preference, else the private environment made by
    Install Dependencies, else Blender's own Python."""
    prefs = preferences(context)
    custom = prefs.python_path.strip() if prefs is not None else ""
    return absolute(custom) if custom else env_python() or sys.executable


def device(context=None) -> str:
    """The device jobs run on, as `gan.protocol` names it."""
    prefs = preferences(context)
    # '' when the saved choice is a GPU the worker no longer reports: automatic
    return options.job_device(prefs.device if prefs is not None else "")


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


def numbered_names(parent: str, name: str):
    """`parent/name`, `parent/name_2`, ... up to `name_9999`: the candidates for a new folder."""
    for number in range(1, 10000):
        yield os.path.join(parent, name if number == 1 else f"{name}_{number}")


def reserve_folder(parent: str, name: str) -> str:
    """Create and return a new empty folder `parent/name`, `name_2`, ... (never an existing one)."""
    os.makedirs(parent, exist_ok=True)
    for candidate in numbered_names(parent, name):
        try:
            os.mkdir(candidate)
        except FileExistsError:
            continue
        return candidate
    raise OSError(f"no free folder name for {name!r} in {parent}")


def output_parent(blend_path: str) -> tuple[str, bool]:
    """Folder for stylized frames: `gan_style` beside the .blend, else in the data folder.

    Returns (folder, relative) where `relative` says strips may use a `//` path.
    """
    if blend_path:
        return os.path.join(os.path.dirname(blend_path), "gan_style"), True
    return data_dir("frames"), False


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


def check_writable(folder: str, what: str, hint: str) -> str:
    """Create `folder` if needed and prove that a file can be created in it (a probe that
    leaves nothing behind). Raises UserError: "Cannot write <what> to <folder>: <why>; <hint>".
    """
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UserError(f"Cannot write {what} to {folder}: {exc.strerror or exc}; "
                        f"{hint}") from None
    return folder


def output_hint(relative: bool) -> str:
    return ("save the .blend in a folder you can write to" if relative else
            "check the permissions and free space of Blender's user folder")


# -- moving the styles of earlier versions out of the extension's user folder ------------------


def old_library_dir() -> str:
    """Where versions before the data folder kept the default library (not created)."""
    try:
        base = bpy.utils.extension_path_user(ADDON_PACKAGE, create=False)
    except ValueError:  # loaded as a legacy add-on
        base = bpy.utils.user_resource('DATAFILES', path="gan_style", create=False)
    return os.path.join(base, "styles")


def move_file(source: str, target: str) -> None:
    """Move a file to `target`, never replacing one there (FileExistsError if taken).

    A hard link refuses a taken name atomically; across file systems the bytes are copied with
    `fileio.atomic_write` (no half-written file under the final name). The source goes last.
    """
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError:  # another file system, or one without hard links
        with open(source, "rb") as handle:
            fileio.atomic_write(target, lambda out: shutil.copyfileobj(handle, out, 1 << 20),
                                overwrite=False)
        shutil.copystat(source, target)
    os.unlink(source)


def _move_style_file(source: str, library: str) -> str:
    """`source` into `library` under its own name, else `name_2`, `name_3`... (both kept)."""
    stem = os.path.basename(source)[:-len(STYLE_EXTENSION)]
    for number in range(1, 10000):
        target = os.path.join(library, (stem if number == 1 else f"{stem}_{number}")
                              + STYLE_EXTENSION)
        try:
            move_file(source, target)
        except FileExistsError:
            continue
        return target
    raise OSError(f"no free style name for {stem!r} in {library}")


def _move_tree(source: str, parent: str, name: str) -> str:
    """The files of folder `source` into a new folder `parent/name` (or `name_2`...)."""
    target = reserve_folder(parent, name)
    for folder, dirs, files in os.walk(source):
        into = os.path.join(target, os.path.relpath(folder, source))
        os.makedirs(into, exist_ok=True)
        for file in files:
            move_file(os.path.join(folder, file), os.path.join(into, file))
    for folder, _dirs, _files in os.walk(source, topdown=False):
        try:
            os.rmdir(folder)
        except OSError:  # something appeared meanwhile: keep it
            pass
    return target


def migrate_library(old: str, new: str) -> list[tuple[str, str]]:
    """Move every style of `old` (and its training folder, and unfinished trainings) into `new`.

    Nothing is replaced: a style whose name is taken in `new` arrives as `name_2` and its
    training folder follows it. Files that are not styles stay where they are. Returns the
    (old path, new path) pairs moved; running it again moves nothing more.
    """
    moved: list[tuple[str, str]] = []
    if not os.path.isdir(old) or os.path.normcase(os.path.realpath(old)) == \
            os.path.normcase(os.path.realpath(new)):
        return moved
    old_training = os.path.join(old, ".training")
    for entry in sorted(os.listdir(old)):
        source = os.path.join(old, entry)
        if not entry.endswith(STYLE_EXTENSION) or not os.path.isfile(source):
            continue
        os.makedirs(new, exist_ok=True)
        target = _move_style_file(source, new)
        moved.append((source, target))
        stem, new_stem = entry[:-len(STYLE_EXTENSION)], os.path.basename(target)[:-len(
            STYLE_EXTENSION)]
        training = os.path.join(old_training, stem)
        if os.path.isdir(training):
            moved.append((training, _move_tree(training, os.path.join(new, ".training"),
                                               new_stem)))
    if os.path.isdir(old_training):  # trainings without a finished style: resumable
        for entry in sorted(os.listdir(old_training)):
            training = os.path.join(old_training, entry)
            if os.path.isdir(training):
                moved.append((training, _move_tree(training, os.path.join(new, ".training"),
                                                   entry)))
        _remove_if_empty(old_training)
    _remove_if_empty(old)
    return moved


def _remove_if_empty(folder: str) -> None:
    try:
        os.rmdir(folder)
    except OSError:
        pass


def migrate_old_library() -> None:
    """At start-up: styles left in the extension's user folder by earlier versions move to the
    default library in the data folder (once: the old folder is empty afterwards)."""
    old = old_library_dir()
    if not os.path.isdir(old):
        return
    try:
        moved = migrate_library(old, data_dir("styles"))
    except OSError as exc:  # never stop the add-on from loading; the files are still there
        print(f"GAN Style: could not move the styles of {old}: {exc.strerror or exc}")
        return
    for source, target in moved:
        print(f"GAN Style: moved {source} -> {target}")
