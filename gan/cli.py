"""`python -m gan train|stylize|frame|info|worker|farm-job|check-frames`: the engine's command line.

This module parses arguments and runs every command but `worker` (gan.worker speaks the JSON
protocol; `gan.__main__` chooses between them). Jobs run through `gan.jobs.run_job`.
Exit codes (gan.jobs): 0 done, 1 failed (one line says why), 2 bad arguments, 3 cancelled.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Sequence

from . import __version__
from .jobs import EXIT_FAILED, EXIT_OK, EXIT_USAGE, one_line, run_job
from .protocol import (CancelToken, HumanReporter, JsonLinesReporter, KeyframeSpec, Reporter,
                       SourceSpec, StylizeJob, TrainJob, UserError, DEFAULT_STABILIZE,
                       DEFAULT_TEMPORAL_WEIGHT, DEVICES, FORMATS, PRESETS, is_device_name)


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line and exit code 2, instead of argparse's usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m gan", description="Learn a visual style and stylize video.")
    parser.add_argument("--version", action="version", version=f"gan {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser(
        "train", help="learn a style from style sources and footage",
        description="Learn a style from style sources (unpaired, CUT-style) and/or painted "
                    "keyframes (paired), and the footage it will be applied to.")
    train.add_argument("--style", action="append", default=[], metavar="PATH",
                       help="style source: video, image folder or still image (repeatable)")
    train.add_argument("--content", action="append", default=[], metavar="PATH",
                       help="footage the style will be applied to (repeatable; default with "
                            "--keyframe: the keyframes' footage)")
    train.add_argument("--keyframe", action="append", nargs=3, default=[],
                       metavar=("FOOTAGE", "FRAME", "PAINTED"),
                       help="a painted keyframe: PAINTED is frame FRAME (0-based) of FOOTAGE, "
                            "painted in the style (repeatable)")
    train.add_argument("--temporal", type=float, default=DEFAULT_TEMPORAL_WEIGHT, metavar="W",
                       help="weight of the temporal-stability term (flow-warped previous "
                            f"frame; default {DEFAULT_TEMPORAL_WEIGHT:g}, 0 = off)")
    train.add_argument("--stroke-scale", type=float, default=1.0, metavar="K",
                       help="the style image's strokes at K times their size when the image is "
                            "fitted to the footage frame (0.25-4, default 1)")
    train.add_argument("--auto-keyframes", type=int, metavar="N",
                       help="paint N footage frames with the style's patches first and learn "
                            "from them like painted keyframes (default: 3 for a style without "
                            "painted keyframes; 0 = off)")
    train.add_argument("--out", required=True, metavar="STYLE_FILE",
                       help="style file to write (.ganstyle); never overwritten")
    train.add_argument("--preset", choices=PRESETS, default="draft",
                       help="model size: draft (CPU minutes), standard, high (GPU)")
    budget = train.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="time budget in minutes (default 5)")
    budget.add_argument("--steps", type=int, help="number of training steps")
    train.add_argument("--resume", action="store_true",
                       help="continue from the last checkpoint in the work folder")
    train.add_argument("--work-dir", metavar="DIR",
                       help="checkpoints, previews and loss plot (default STYLE_FILE.work)")
    train.add_argument("--name", help="style name stored in the file (default: file name)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--crop", type=int, help="training crop size in pixels")
    train.add_argument("--batch", type=int, help="crops per step")
    _add_common(train)

    stylize = commands.add_parser(
        "stylize", help="apply a style file to video or images",
        description="Apply a style to frames of a video, image folder or image; writes numbered "
                    "frames that sort in frame order.")
    stylize.add_argument("--model", required=True, metavar="STYLE_FILE", help="the .ganstyle file")
    stylize.add_argument("--input", required=True, metavar="PATH",
                         help="video, image folder or image")
    stylize.add_argument("--output", required=True, metavar="DIR",
                         help="folder for the frames (created; existing files are never replaced)")
    stylize.add_argument("--frames", metavar="A-B",
                         help="source frames to stylize, inclusive, 0-based: 120-240 or 0-9,20-29")
    _add_look(stylize)
    stylize.add_argument("--format", choices=FORMATS, default="png", help="output image format")
    stylize.add_argument("--first-number", type=int, metavar="N",
                         help="number output files N, N+1, ... instead of by source frame")
    stylize.add_argument("--batch", type=int, help="frames per batch (default: by frame size)")
    stylize.add_argument("--tile", type=int, metavar="PX",
                         help="process frames in overlapping tiles of this size")
    stylize.add_argument("--files", metavar="LIST",
                         help="a text file naming images in the --input folder, one a line: "
                              "frame N is the Nth line")
    stylize.add_argument("--skip-existing", action="store_true",
                         help="keep the frames whose file exists and stylize only the missing "
                              "ones (re-running a farm task)")
    stylize.add_argument("--run-frames", metavar="A-B",
                         help="the whole run that --frames is a chunk of: with --stabilize the "
                              "chunk starts a few frames early (not before A) without writing "
                              "them, so that it meets a single run without a seam")
    _add_common(stylize)

    farm = commands.add_parser(
        "farm-job", help="write an Open Job Description job bundle that stylizes on a farm",
        description="Write a job bundle (template.yaml, parameter_values.yaml, "
                    "asset_references.yaml, the style and this engine) that stylizes FRAMES in "
                    "contiguous chunks, then checks every frame. Submit it with "
                    "'deadline bundle submit BUNDLE', or run it here with "
                    "'openjd run BUNDLE/template.yaml'.")
    farm.add_argument("--model", required=True, metavar="STYLE_FILE", help="the .ganstyle file")
    farm.add_argument("--input", required=True, metavar="PATH",
                      help="video, image folder or image (the folder of --files)")
    farm.add_argument("--files", metavar="LIST",
                      help="a text file naming images in the --input folder, one a line")
    farm.add_argument("--frames", required=True, metavar="A-B",
                      help="source frames to stylize, inclusive, 0-based")
    farm.add_argument("--output", required=True, metavar="DIR",
                      help="where the farm writes frame_NNNNNN.png (numbered by source frame)")
    farm.add_argument("--bundle", required=True, metavar="DIR",
                      help="the job bundle folder to create (never overwritten)")
    farm.add_argument("--chunk-size", type=int, default=10, metavar="N",
                      help="frames per task (default 10)")
    _add_look(farm)
    farm.add_argument("--format", choices=FORMATS, default="png")
    farm.add_argument("--device", choices=DEVICES, default="auto")
    farm.add_argument("--python", default="python", metavar="PY",
                      help="the Python on the farm's workers (default: python)")
    farm.add_argument("--name", help="job name (default: the input's name)")

    check = commands.add_parser(
        "check-frames", help="fail unless every frame of a range exists in a folder",
        description="Exit 0 when OUTPUT holds frame_NNNNNN.png for every frame of FRAMES; "
                    "else one line names the missing frames, exit 1.")
    check.add_argument("--output", required=True, metavar="DIR")
    check.add_argument("--frames", required=True, metavar="A-B")
    check.add_argument("--format", choices=FORMATS, default="png")

    frame = commands.add_parser(
        "frame", help="write one source frame to a PNG (to paint a keyframe over)",
        description="Write frame FRAME of a video, image folder or image to a PNG file, exactly "
                    "as training and stylizing read it (same decoder, same pixels).")
    frame.add_argument("--input", required=True, metavar="PATH", help="video, image folder or image")
    frame.add_argument("--frame", required=True, type=int, metavar="N", help="source frame (0-based)")
    frame.add_argument("--out", required=True, metavar="PNG", help="file to write; never overwritten")

    info = commands.add_parser("info", help="show a style file's metadata",
                               description="Show a style file's metadata (no weights are run).")
    info.add_argument("style_file", metavar="STYLE_FILE")
    info.add_argument("--json", action="store_true", help="print JSON")

    worker = commands.add_parser(
        "worker", help="run one JSON job (used by the Blender add-on)",
        description="Run the job described by JOB (a JSON file, or '-' for the first line of "
                    "stdin). Events go to stdout as JSON lines. A line 'cancel' on stdin, "
                    "stdin closing, or SIGTERM asks the job to stop after saving its work.")
    worker.add_argument("job", metavar="JOB", nargs="?",
                        help="job JSON file, or - for stdin (not with --serve)")
    worker.add_argument("--serve", action="store_true",
                        help="run stylize jobs given as JSON lines on stdin, one after another, "
                             "keeping the loaded model between them; 'cancel' stops the "
                             "current one; exits when stdin closes or after --idle-exit")
    worker.add_argument("--idle-exit", type=float, default=300.0, metavar="S",
                        help="with --serve: exit after S seconds without a job (default 300)")
    worker.add_argument("--free-cores", type=int, default=1, metavar="N",
                        help="CPU cores to leave to the program that started the worker "
                             "(default 1: an interactive Blender; 0 when it only waits)")
    return parser


def _add_look(parser: argparse.ArgumentParser) -> None:
    """How the frames look, for `stylize` and `farm-job` alike."""
    parser.add_argument("--mix", type=float, default=1.0,
                        help="0 = original pixels exactly, 1 = full style (default 1)")
    parser.add_argument("--stabilize", type=float, default=DEFAULT_STABILIZE,
                        metavar="S", help="0-1: blend in the previous output moved by the "
                        f"optical flow against flicker (default {DEFAULT_STABILIZE:g}; "
                        "0 = off, each frame on its own)")
    parser.add_argument("--stroke-scale", type=float, default=1.0, metavar="K",
                        help="the style's strokes at K times the size they were trained at "
                             "(0.25-4, default 1; 2 also runs faster)")


def _device(text: str) -> str:
    if not is_device_name(text):
        raise argparse.ArgumentTypeError(
            f"invalid choice: {text!r} (choose from {', '.join(DEVICES)}, cuda:N)")
    return text


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=_device, default="auto",
                        help="auto (CUDA, then Apple MPS, then CPU), or forced: cpu, cuda, "
                             "cuda:N (GPU N of several), mps")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of text")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The arguments, checked together; bad ones end the process with one line, exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train" and not (args.style or args.keyframe):
        parser.error("give a style source (--style) or painted keyframes (--keyframe)")
    if args.command == "train" and not (args.content or args.keyframe):
        parser.error("give the footage (--content)")
    if args.command == "worker" and args.serve == (args.job is not None):
        parser.error("give a JOB file, or --serve (jobs on stdin)")
    return args


def run(args: argparse.Namespace) -> int:
    """Run a parsed command other than `worker` (gan.worker runs that one); the exit code."""
    try:
        code = _run(args)
        sys.stdout.flush()  # a reader that left shows here, not in the interpreter's last flush
    except BrokenPipeError:
        _reader_left()
        return EXIT_FAILED
    return code


def _reader_left() -> None:
    """`python -m gan info X | head -1`: the reader took what it wanted and closed the pipe.
    As Python's docs advise (signal module, "Note on SIGPIPE"): stdout goes to devnull, so
    that the interpreter's last flush cannot print a traceback, and the exit code is 1."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _run(args: argparse.Namespace) -> int:
    if args.command == "info":
        return _info(args)
    if args.command == "frame":
        return _export_frame(args)
    if args.command == "farm-job":
        return _farm_job(args)
    if args.command == "check-frames":
        return _check_frames(args)
    if args.command not in ("train", "stylize"):
        raise ValueError(f"gan.cli.run does not run {args.command!r}")

    reporter: Reporter = JsonLinesReporter(sys.stdout) if args.json else HumanReporter(sys.stderr)
    if args.command == "train":  # under torchrun: rank 0 reports, the others their errors only
        from .distributed import rank_reporter
        reporter = rank_reporter(reporter)
    try:
        job = _job_from_args(args)
    except UserError as exc:
        reporter.emit("error", message=str(exc))
        return EXIT_FAILED
    cancel = CancelToken()
    # Ctrl-C / SIGTERM: finish the step, keep what is done, then stop.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: cancel.request())
    return run_job(job, reporter, cancel)


def _job_from_args(args: argparse.Namespace) -> TrainJob | StylizeJob:
    from .protocol import job_from_dict, job_to_dict
    if args.command == "train":
        job = TrainJob(
            style=[SourceSpec(p) for p in args.style], content=[SourceSpec(p) for p in args.content],
            out=args.out, preset=args.preset,
            minutes=args.minutes if args.minutes is not None or args.steps else 5.0,
            steps=args.steps, resume=args.resume, device=args.device, seed=args.seed,
            name=args.name, work_dir=args.work_dir, crop=args.crop, batch=args.batch,
            keyframes=[_keyframe(*values) for values in args.keyframe],
            temporal_weight=args.temporal, stroke_scale=args.stroke_scale,
            auto_keyframes=args.auto_keyframes)
    else:
        from .frames import parse_frame_range
        frames = None if args.frames is None else parse_frame_range(args.frames)
        run_start = None if args.run_frames is None else min(parse_frame_range(args.run_frames))
        source = args.input if args.files is None else _listed_files(args.input, args.files)
        job = StylizeJob(model=args.model, input=SourceSpec(source, frames), output=args.output,
                         mix=args.mix, device=args.device, format=args.format,
                         first_number=args.first_number, batch=args.batch, tile=args.tile,
                         stabilize=args.stabilize, stroke_scale=args.stroke_scale,
                         skip_existing=args.skip_existing, run_start=run_start)
    return job_from_dict(job_to_dict(job))  # one validation path for CLI and worker


def _listed_files(folder: str, listing: str) -> list[str]:
    """The images that a --files list names, in the --input folder."""
    try:
        with open(listing, encoding="utf-8") as handle:
            names = [line.rstrip("\r\n") for line in handle if line.strip()]
    except OSError as exc:
        raise UserError(f"cannot read the list of image files {listing}: "
                        f"{exc.strerror or exc}") from None
    if not names:
        raise UserError(f"the list of image files {listing} is empty")
    return [os.path.join(folder, name) for name in names]


def _farm_job(args: argparse.Namespace) -> int:
    """Write a job bundle for one input; prints its folder."""
    from . import farm
    from .frames import parse_frame_range
    try:
        frames = parse_frame_range(args.frames)
        if frames != list(range(frames[0], frames[0] + len(frames))):
            raise UserError(f"--frames {args.frames}: a farm job stylizes one ascending range A-B")
        files = None
        if args.files is not None:
            files = [os.path.basename(p) for p in _listed_files(args.input, args.files)]
        name = args.name or os.path.splitext(os.path.basename(os.path.normpath(args.input)))[0]
        source = farm.FarmSource(name=name, input=os.path.abspath(args.input), first=frames[0],
                                 last=frames[-1], output=os.path.abspath(args.output),
                                 files=files)
        settings = farm.FarmSettings(mix=args.mix, stabilize=args.stabilize,
                                     stroke_scale=args.stroke_scale, chunk_size=args.chunk_size,
                                     device=args.device, format=args.format, python=args.python)
        path = farm.write_bundle(args.bundle, os.path.abspath(args.model), [source], settings,
                                 title=name)
    except UserError as exc:
        sys.stderr.write(f"error: {one_line(str(exc))}\n")
        return EXIT_FAILED
    print(path)
    return EXIT_OK


def _check_frames(args: argparse.Namespace) -> int:
    """The farm job's last step: every frame of the range is in the folder."""
    from .farm import missing_frames
    from .frames import parse_frame_range
    try:
        frames = parse_frame_range(args.frames)
    except UserError as exc:
        sys.stderr.write(f"error: {one_line(str(exc))}\n")
        return EXIT_FAILED
    missing = missing_frames(args.output, frames, args.format)
    if missing:
        listed = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5
                                           else "")
        sys.stderr.write(f"error: {len(missing)} of {len(frames)} frames are missing in "
                         f"{args.output}: {listed}; run the job again: only missing frames are "
                         "stylized\n")
        return EXIT_FAILED
    print(f"all {len(frames)} frames are in {args.output}")
    return EXIT_OK


def _keyframe(footage: str, frame: str, painted: str) -> KeyframeSpec:
    if not frame.isdigit():
        raise UserError(f"--keyframe {footage} {frame} {painted}: FRAME must be a frame number "
                        "(0-based)")
    return KeyframeSpec(footage, int(frame), painted)


def _export_frame(args: argparse.Namespace) -> int:
    """One frame to a PNG, atomically and without replacing anything; prints the path."""
    from .frames import open_frames
    from .images import write_image
    try:
        if args.frame < 0:
            raise UserError("--frame must be >= 0")
        if not args.out.lower().endswith(".png"):
            raise UserError(f"{args.out}: the frame is written as PNG, name it .png")
        with open_frames(args.input, [args.frame]) as source:
            rgb = source.read(args.frame)
        try:
            write_image(args.out, rgb, overwrite=False)
        except ValueError:
            raise UserError(f"could not encode frame {args.frame} as PNG") from None
        except FileExistsError:
            raise UserError(f"{args.out} already exists (nothing is overwritten)") from None
        except OSError as exc:
            raise UserError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    except UserError as exc:
        sys.stderr.write(f"error: {one_line(str(exc))}\n")
        return EXIT_FAILED
    print(os.path.abspath(args.out))
    return EXIT_OK


def _info(args: argparse.Namespace) -> int:
    from .stylefile import read_style_info
    try:
        info = read_style_info(args.style_file)
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILED
    summary = {"path": os.path.abspath(info.path), "name": info.name,
               "format_version": info.format_version, "arch": info.arch, "meta": info.meta,
               "parameters": sum(_count(e.shape) for e in info.tensors.values()),
               "thumbnail": info.thumbnail_png is not None}
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        meta = info.meta
        print(f"name:       {_printable(info.name)}")
        for key in ("preset", "steps", "created", "sources"):
            if key in meta:
                print(f"{key + ':':<11} {_printable(meta[key])}")
        print(f"parameters: {summary['parameters']:,}")
        print(f"arch:       {_printable(json.dumps(info.arch, sort_keys=True))}")
        print(f"format:     {info.format_version}")
    return EXIT_OK


def _printable(value: object, limit: int = 200) -> str:
    """Style files come from strangers: no terminal escape sequences, no endless lines."""
    from .stylefile import printable
    return printable(value, limit)


def _count(shape: tuple[int, ...]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total
