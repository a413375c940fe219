"""`blender -c gan_style ...`: the add-on's commands for scripts and render farms.

    blender -c gan_style apply FILE.blend --style NAME [--strip NAME ...] [--mix 1.0]
                               [--stabilize S] [--stroke-scale K] [--frames START-END]
                               [--scene NAME] [--no-save]
    blender -c gan_style train FILE.blend --name NAME [--style-strip NAME | --style-file PATH]...
                               [--content-strip NAME ...] [--preset draft|standard|high]
                               [--minutes M | --steps N] [--temporal W] [--stroke-scale K]
                               [--no-strokes] [--no-keyframes]
                               [--no-resume] [--scene NAME]

    blender -c gan_style farm-job FILE.blend --style NAME [--strip NAME ...] [--mix 1.0]
                               [--stabilize S] [--stroke-scale K] [--frames START-END]
                               [--out DIR] [--output-dir DIR] [--chunk-size N] [--python PY]
                               [--scene NAME] [--no-save]

(train: painted keyframes above the content strips are used unless --no-keyframes; with
keyframes, no style strip or file is needed. farm-job: writes an Open Job Description bundle
for a render farm and saves the .blend, which remembers it for Apply, unless --no-save.)
    blender -c gan_style library            list the style library
    blender -c gan_style import FILE.ganstyle
    blender -c gan_style cleanup FILE.blend [--dry-run]
                               remove frame folders no strip of FILE uses, unfinished trainings

`apply` saves the .blend (with the new strips) unless --no-save. Exit codes: 0 done, 1 failed
(one line says why), 2 bad arguments. The operators also run in any `blender -b` script:

    blender -b FILE.blend --python-exit-code 1 --python-expr \
        "import bpy; bpy.ops.sequencer.gan_style_apply(style='NAME'); bpy.ops.wm.save_mainfile()"

They block there, print progress lines, and a failure raises RuntimeError (exit code 1).
"""

from __future__ import annotations

import argparse
import sys

import bpy

from ..vse import compat, library, options, storage
from ..vse.errors import UserError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
COMMAND = "gan_style"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no sys.exit inside Blender
        raise _UsageError(f"{self.prog}: {message}")


def add_stylize_arguments(parser: argparse.ArgumentParser) -> None:
    """What `apply` and `farm-job` both take: the file, the style, the strips, the stylize
    options and the frames."""
    parser.add_argument("blend", help="the .blend file")
    parser.add_argument("--style", required=True, help="library name or .ganstyle path")
    parser.add_argument("--strip", action="append", default=[], metavar="NAME",
                        help="strip to stylize (repeatable; default: the selected strips)")
    options.add_arguments(parser, options.STYLIZE)
    parser.add_argument("--frames", metavar="START-END", help="timeline frames (inclusive)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=f"blender -c {COMMAND}",
                     description="Stylize strips and train styles without the user interface.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    apply = commands.add_parser("apply", help="stylize strips of a .blend file")
    add_stylize_arguments(apply)
    apply.add_argument("--scene", help="scene name (default: the file's active scene)")
    apply.add_argument("--no-save", action="store_true", help="do not save the .blend file")

    train = commands.add_parser("train", help="train a style from strips of a .blend file")
    train.add_argument("blend", help="the .blend file")
    train.add_argument("--name", required=True, help="library name of the new style")
    train.add_argument("--style-strip", action="append", default=[], metavar="NAME")
    train.add_argument("--style-file", metavar="PATH", default="")
    train.add_argument("--content-strip", action="append", default=[], metavar="NAME",
                       help="footage strips (default: the selected strips)")
    groups = {"budget": train.add_mutually_exclusive_group()}
    groups["budget"].add_argument("--steps", type=int, default=0)
    options.add_arguments(train, options.TRAIN, groups)
    train.add_argument("--no-resume", action="store_true",
                       help="start over instead of resuming an unfinished training")
    train.add_argument("--scene", help="scene name (default: the file's active scene)")

    farm = commands.add_parser("farm-job", help="write a render-farm job for strips of a "
                                                "saved .blend (Open Job Description bundle)")
    add_stylize_arguments(farm)
    farm.add_argument("--out", default="", metavar="DIR",
                      help="folder for the job bundle (default: gan_style/farm beside the .blend)")
    farm.add_argument("--output-dir", default="", metavar="DIR",
                      help="where the farm writes the frames (default: beside the bundle)")
    farm.add_argument("--chunk-size", type=int, default=10, metavar="N",
                      help="frames per farm task (default 10)")
    farm.add_argument("--python", default="python", metavar="PY",
                      help="the Python on the farm's workers (default: python)")
    farm.add_argument("--scene", help="scene name (default: the file's active scene)")
    farm.add_argument("--no-save", action="store_true", help="do not save the .blend file")

    commands.add_parser("library", help="list the style library")
    imp = commands.add_parser("import", help="copy a style file into the style library")
    imp.add_argument("style_file")
    clean = commands.add_parser("cleanup", help="remove frame folders that no strip of a .blend "
                                "uses any more, and unfinished trainings")
    clean.add_argument("blend", help="the .blend file")
    clean.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    return parser


def main(argv) -> int:
    """The `blender -c gan_style` handler: returns the exit code."""
    try:
        args = build_parser().parse_args(list(argv))
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    try:
        if args.command == "library":
            return _library()
        if args.command == "import":
            path = library.import_style(storage.library_dir(), args.style_file)
            print(f"imported: {path}")
            return EXIT_OK
        if args.command == "cleanup":
            return _cleanup(args)
        scene = _open(args.blend, args.scene)
        if args.command == "apply":
            return _apply(scene, args)
        if args.command == "farm-job":
            return _farm_job(scene, args)
        return _train(scene, args)
    except (RuntimeError, UserError, OSError, ValueError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED


def _one_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.removeprefix("Error: ").splitlines()[0] if text else type(exc).__name__


def _open(blend: str, scene_name: str | None):
    bpy.ops.wm.open_mainfile(filepath=blend)
    if scene_name:
        scene = bpy.data.scenes.get(scene_name)
        if scene is None:
            raise ValueError(f"no scene named '{scene_name}' in {blend}")
        return scene
    return bpy.context.scene


def _select(scene, names: list[str]) -> None:
    if not names:
        return
    strips = [compat.find_strip(scene, n) for n in names]
    missing = [n for n, s in zip(names, strips) if s is None]
    if missing:
        raise ValueError(f"no strip named {', '.join(repr(n) for n in missing)}")
    for strip in compat.strips_all(scene):
        strip.select = False
    for strip in strips:
        strip.select = True
    scene.sequence_editor.active_strip = strips[0]


def _strip_options(scene, args) -> dict:
    """What apply and farm-job share: the strips, the style and its settings."""
    _select(scene, args.strip)
    chosen = {"style": args.style, **options.arguments(args, options.STYLIZE)}
    if args.frames:
        start, _, end = args.frames.partition("-")
        chosen.update(use_frame_range=True, frame_start=int(start), frame_end=int(end or start))
    return chosen


def _save(args) -> None:
    if not args.no_save:
        bpy.ops.wm.save_mainfile()
        print(f"saved: {bpy.data.filepath}")


def _apply(scene, args) -> int:
    chosen = _strip_options(scene, args)
    with bpy.context.temp_override(scene=scene):
        bpy.ops.sequencer.gan_style_apply(**chosen)
    _save(args)
    return EXIT_OK


def _farm_job(scene, args) -> int:
    chosen = _strip_options(scene, args)
    if args.out:
        chosen["directory"] = args.out
    with bpy.context.temp_override(scene=scene):
        bpy.ops.sequencer.gan_style_export_farm_job(
            output_directory=args.output_dir, chunk_size=args.chunk_size, python=args.python,
            **chosen)
    _save(args)
    return EXIT_OK


def _train(scene, args) -> int:
    if args.content_strip:
        _select(scene, args.content_strip)
    with bpy.context.temp_override(scene=scene):
        bpy.ops.sequencer.gan_style_train(
            name=args.name, style_strips=[{"name": n} for n in args.style_strip],
            style_path=args.style_file, content_strips=[{"name": n} for n in args.content_strip],
            steps=args.steps, resume=not args.no_resume, **options.arguments(args, options.TRAIN))
    return EXIT_OK


def _cleanup(args) -> int:
    bpy.ops.wm.open_mainfile(filepath=args.blend)
    bpy.ops.sequencer.gan_style_clean_up(dry_run=args.dry_run)
    return EXIT_OK


def _library() -> int:
    lib = storage.library_path()
    print(f"style library: {lib}")
    for entry in library.scan(lib):
        if entry.error:
            print(f"  {entry.name}: unusable: {entry.error}")
        else:
            print(f"  {entry.name}: preset {entry.preset or '?'}, {entry.steps} steps, "
                  f"created {entry.created or '?'}")
    return EXIT_OK


_handle = None


def register() -> None:
    global _handle
    register_cli = getattr(bpy.utils, "register_cli_command", None)
    if register_cli is not None and _handle is None:
        _handle = register_cli(COMMAND, main)


def unregister() -> None:
    global _handle
    if _handle is not None:
        bpy.utils.unregister_cli_command(_handle)
        _handle = None
