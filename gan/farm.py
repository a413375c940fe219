"""Render-farm jobs: an Open Job Description job bundle that stylizes frames in chunks.

Standard library only (Blender's process writes bundles with it). A bundle is a folder that
AWS Deadline Cloud's CLI submits as it is (`deadline bundle submit BUNDLE`) and that
`openjd run BUNDLE/template.yaml` runs locally:

    template.yaml            jobtemplate-2023-09 with the TASK_CHUNKING extension: per source,
                             a "Stylize" step whose tasks are contiguous chunks of its frame
                             range (`python -m gan stylize ... --frames A-B`), then a "Check"
                             step that fails unless every frame exists
    parameter_values.yaml    the values of this export (media and output paths, settings)
    asset_references.yaml    the files the farm needs and the folders it writes
    style/NAME.ganstyle      a copy of the style file
    engine/gan/              a copy of this engine (PYTHONPATH of every task)
    sources/                 lists of image files, and frames rendered by Blender

Every task re-run is safe: a chunk keeps the frames that exist (`--skip-existing`) and
stylizes only the missing ones; with Stabilize it starts a few frames early without writing
them (`--run-frames`), so chunks meet a single run without a seam (gan/stabilize.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass

from .fileio import atomic_write
from .protocol import DEVICES, FORMATS, STROKE_SCALE_RANGE, UserError

ENGINE_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CHUNK_SIZE = 10
MAX_SOURCES = 64


class FarmError(UserError):
    """A bundle that cannot be written; one line says why."""


@dataclass
class FarmSource:
    """One run of frames: `input` (a video, an image folder, or with `files` the folder that
    holds those images, in that order), source frames `first`..`last` (inclusive), written to
    `output` as frame_NNNNNN.png numbered by source frame. `bundled`: `input` is a folder of
    frames made for this job (e.g. rendered by Blender): it is moved into the bundle."""
    name: str
    input: str
    first: int
    last: int
    output: str
    files: list[str] | None = None
    bundled: bool = False

    @property
    def frames(self) -> str:
        return f"{self.first}-{self.last}"


@dataclass
class FarmSettings:
    mix: float = 1.0
    stabilize: float = 0.0
    stroke_scale: float = 1.0
    chunk_size: int = DEFAULT_CHUNK_SIZE
    device: str = "auto"
    format: str = "png"
    python: str = "python"  # the interpreter on the farm's workers (with requirements.txt)


def file_digest(path: str) -> str:
    """SHA-256 of a file (a style file's identity, whatever its name)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_bundle(bundle: str, style: str, sources: list[FarmSource], settings: FarmSettings,
                 title: str = "") -> str:
    """Write the job bundle folder `bundle` (it must not exist, or be empty); returns its path.

    The bundle is assembled in a hidden sibling folder and renamed into place at the end, so a
    failed export leaves nothing under the final name. Folders of `bundled` sources are moved
    in (and left where they were if the export fails).
    """
    bundle = os.path.abspath(bundle)
    _check(style, sources, settings, bundle)
    parent = os.path.dirname(bundle)
    try:
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix="." + os.path.basename(bundle) + ".", dir=parent)
    except OSError as exc:
        raise FarmError(f"cannot write the job bundle in {parent}: {exc.strerror or exc}") from None
    moved: list[tuple[str, str]] = []
    try:
        style_copy = os.path.join("style", _file_name(os.path.basename(style)))
        os.makedirs(os.path.join(staging, "style"))
        shutil.copyfile(style, os.path.join(staging, style_copy))
        _copy_engine(os.path.join(staging, "engine", "gan"))
        os.makedirs(os.path.join(staging, "sources"))
        inputs: list[str] = []
        for number, source in enumerate(sources, 1):
            if source.bundled:
                inside = os.path.join("sources", f"{number}_{_file_name(source.name)}")
                shutil.move(source.input, os.path.join(staging, inside))
                moved.append((os.path.join(staging, inside), source.input))
                inputs.append(inside)
            else:
                inputs.append(source.input)
            if source.files is not None:
                text = "".join(name + "\n" for name in source.files)
                _write(os.path.join(staging, "sources", f"{number}_files.txt"), text)
        _write(os.path.join(staging, "template.yaml"),
               to_yaml(template(sources, settings, style_copy, inputs, title)))
        _write(os.path.join(staging, "parameter_values.yaml"),
               to_yaml(parameter_values(sources, settings, inputs)))
        _write(os.path.join(staging, "asset_references.yaml"),
               to_yaml(asset_references(sources, inputs)))
        _publish(staging, bundle)
    except BaseException as exc:
        for inside, outside in reversed(moved):  # rendered frames go back where they were
            if os.path.isdir(inside) and not os.path.exists(outside):
                shutil.move(inside, outside)
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            where = f" ({exc.filename})" if exc.filename else ""
            raise FarmError(f"cannot write the job bundle {bundle}: "
                            f"{exc.strerror or exc}{where}") from None
        raise
    return bundle


def _check(style: str, sources: list[FarmSource], settings: FarmSettings, bundle: str) -> None:
    if not os.path.isfile(style):
        raise FarmError(f"style file not found: {style}")
    if not sources:
        raise FarmError("nothing to export: no frames were given")
    if len(sources) > MAX_SOURCES:
        raise FarmError(f"at most {MAX_SOURCES} strips fit in one farm job")
    if os.path.lexists(bundle) and not (os.path.isdir(bundle) and not os.listdir(bundle)):
        raise FarmError(f"{bundle} exists already (nothing is overwritten): choose a new folder "
                        "for the job bundle")
    if not (isinstance(settings.chunk_size, int) and settings.chunk_size >= 1):
        raise FarmError("the chunk size must be at least 1 frame")
    if not 0.0 <= settings.mix <= 1.0 or not 0.0 <= settings.stabilize <= 1.0:
        raise FarmError("mix and stabilize must be between 0 and 1")
    if not STROKE_SCALE_RANGE[0] <= settings.stroke_scale <= STROKE_SCALE_RANGE[1]:
        raise FarmError(f"the stroke scale must be between {STROKE_SCALE_RANGE[0]:g} and "
                        f"{STROKE_SCALE_RANGE[1]:g}")
    if settings.device not in DEVICES or settings.format not in FORMATS:
        raise FarmError(f"device must be one of {', '.join(DEVICES)} and format one of "
                        f"{', '.join(FORMATS)}")
    outputs = set()
    for source in sources:
        if not 0 <= source.first <= source.last:
            raise FarmError(f"{source.name}: bad frame range {source.frames}")
        if not os.path.exists(source.input):
            raise FarmError(f"{source.name}: media not found: {source.input}")
        for name in source.files or ():
            if not os.path.isfile(os.path.join(source.input, name)):
                raise FarmError(f"{source.name}: media file not found: "
                                f"{os.path.join(source.input, name)}")
        if source.files is not None and source.last >= len(source.files):
            raise FarmError(f"{source.name}: frames {source.frames} but only "
                            f"{len(source.files)} image files")
        output = os.path.normcase(os.path.abspath(source.output))
        if output in outputs:
            raise FarmError(f"{source.name}: two runs would write into {source.output}")
        outputs.add(output)


def _copy_engine(target: str) -> None:
    """This package's Python files (no caches): what every task runs."""
    os.makedirs(target)
    for name in sorted(os.listdir(ENGINE_DIR)):
        if name.endswith(".py"):
            shutil.copyfile(os.path.join(ENGINE_DIR, name), os.path.join(target, name))


def _publish(staging: str, bundle: str) -> None:
    if os.path.isdir(bundle):
        os.rmdir(bundle)  # an empty folder only (checked); raises if something appeared
    os.rename(staging, bundle)


def _write(path: str, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), overwrite=False)


def _file_name(text: str) -> str:
    return re.sub(r"[^\w.+-]+", "_", text).strip("._")[:60] or "untitled"


# -- the documents ---------------------------------------------------------------------------------

def _step_name(kind: str, number: int, source: FarmSource) -> str:
    label = re.sub(r"[\x00-\x1f\x7f]", " ", source.name).strip()[:40]
    return f"{kind} {number} {label}".strip()


def template(sources: list[FarmSource], settings: FarmSettings, style_copy: str,
             inputs: list[str], title: str = "") -> dict:
    """The job template (a jobtemplate-2023-09 document as a dict)."""
    parameters = [
        _path("StyleFile", "FILE", "IN", "The style file", style_copy),
        _path("EngineDir", "DIRECTORY", "IN", "The style engine (the gan package's folder)",
              "engine"),
        {"name": "Python", "type": "STRING", "default": settings.python,
         "description": "Python on the workers with torch, numpy and OpenCV "
                        "(pip install -r requirements.txt)"},
        {"name": "Device", "type": "STRING", "default": settings.device,
         "allowedValues": list(DEVICES), "description": "auto: CUDA, then Apple MPS, then CPU"},
        _number("Mix", settings.mix, 0.0, 1.0, "0 = original pixels, 1 = full style"),
        _number("Stabilize", settings.stabilize, 0.0, 1.0,
                "0 = off; 0.5-0.7 against flicker (chunks start a few frames early)"),
        _number("StrokeScale", settings.stroke_scale, *STROKE_SCALE_RANGE,
                "The style's strokes at this multiple of their trained size"),
        {"name": "ChunkSize", "type": "INT", "default": settings.chunk_size, "minValue": 1,
         "description": "Frames per task"},
    ]
    steps = []
    for number, (source, path) in enumerate(zip(sources, inputs), 1):
        bundled = not os.path.isabs(path)
        listed = source.files is not None
        object_type = "DIRECTORY" if listed or os.path.isdir(path) or bundled else "FILE"
        # A folder of listed images is only path-mapped; its listed files are the inputs
        # (asset_references.yaml), not every file that happens to be in that folder.
        flow = "NONE" if listed else "IN"
        parameters.append(_path(f"Input{number}", object_type, flow,
                                f"Media of '{source.name}'", path if bundled else None))
        if listed:
            parameters.append(_path(f"Files{number}", "FILE", "IN",
                                    f"The image files of '{source.name}', in order",
                                    f"sources/{number}_files.txt"))
        parameters.append({"name": f"Frames{number}", "type": "STRING",
                           "default": source.frames,
                           "description": f"Source frames of '{source.name}' (A-B, inclusive)"})
        parameters.append(_path(f"Output{number}", "DIRECTORY", "OUT",
                                f"Stylized frames of '{source.name}'", None))
        args = ["-m", "gan", "stylize", "--model", "{{Param.StyleFile}}",
                "--input", f"{{{{Param.Input{number}}}}}"]
        if listed:
            args += ["--files", f"{{{{Param.Files{number}}}}}"]
        args += ["--output", f"{{{{Param.Output{number}}}}}",
                 "--frames", "{{Task.Param.Frame}}", "--run-frames", f"{{{{Param.Frames{number}}}}}",
                 "--skip-existing", "--mix", "{{Param.Mix}}", "--stabilize", "{{Param.Stabilize}}",
                 "--stroke-scale", "{{Param.StrokeScale}}", "--format", settings.format,
                 "--device", "{{Param.Device}}"]
        stylize_step = _step_name("Stylize", number, source)
        steps.append({
            "name": stylize_step,
            "parameterSpace": {"taskParameterDefinitions": [{
                "name": "Frame", "type": "CHUNK[INT]", "range": f"{{{{Param.Frames{number}}}}}",
                "chunks": {"defaultTaskCount": "{{Param.ChunkSize}}",
                           "rangeConstraint": "CONTIGUOUS"}}]},
            "script": {"actions": {"onRun": {"command": "{{Param.Python}}", "args": args}}},
        })
        steps.append({
            "name": _step_name("Check", number, source),
            "dependencies": [{"dependsOn": stylize_step}],
            "script": {"actions": {"onRun": {"command": "{{Param.Python}}", "args": [
                "-m", "gan", "check-frames", "--output", f"{{{{Param.Output{number}}}}}",
                "--frames", f"{{{{Param.Frames{number}}}}}", "--format", settings.format]}}},
        })
    name = f"GAN Style: {title}" if title else "GAN Style"
    return {
        "specificationVersion": "jobtemplate-2023-09",
        "extensions": ["TASK_CHUNKING"],
        "name": name[:128],
        "description": "Stylizes frames in contiguous chunks (python -m gan stylize), then "
                       "checks that every frame exists. Re-running redoes only missing frames.",
        "parameterDefinitions": parameters,
        "jobEnvironments": [{
            "name": "GanStyleEngine",
            "description": "Puts the bundled engine on the Python path",
            "variables": {"PYTHONPATH": "{{Param.EngineDir}}", "PYTHONUNBUFFERED": "1"},
        }],
        "steps": steps,
    }


def _path(name: str, object_type: str, flow: str, description: str,
          default: str | None) -> dict:
    parameter = {"name": name, "type": "PATH", "objectType": object_type, "dataFlow": flow,
                 "description": description}
    if default is not None:  # relative: inside the bundle (Deadline resolves it there)
        parameter["default"] = default.replace(os.sep, "/")
    return parameter


def _number(name: str, value: float, low: float, high: float, description: str) -> dict:
    return {"name": name, "type": "FLOAT", "default": float(value), "minValue": float(low),
            "maxValue": float(high), "description": description}


def parameter_values(sources: list[FarmSource], settings: FarmSettings,
                     inputs: list[str]) -> dict:
    """Deadline Cloud's parameter_values document: the paths outside the bundle."""
    values = []
    for number, (source, path) in enumerate(zip(sources, inputs), 1):
        if os.path.isabs(path):
            values.append({"name": f"Input{number}", "value": path})
        values.append({"name": f"Output{number}", "value": os.path.abspath(source.output)})
    return {"parameterValues": values}


def asset_references(sources: list[FarmSource], inputs: list[str]) -> dict:
    """What job attachments upload (media outside the bundle) and download (the outputs)."""
    files, folders = [], []
    for source, path in zip(sources, inputs):
        if not os.path.isabs(path):
            continue  # inside the bundle: PATH parameters with a default, uploaded with it
        if source.files is not None:
            files.extend(os.path.join(path, name) for name in dict.fromkeys(source.files))
        elif os.path.isdir(path):
            folders.append(path)
        else:
            files.append(path)
    return {"assetReferences": {
        "inputs": {"filenames": files, "directories": folders},
        "outputs": {"directories": [os.path.abspath(s.output) for s in sources]},
        "referencedPaths": [],
    }}


def to_yaml(value, indent: int = 0) -> str:
    """Block-style YAML for dicts, lists and scalars; strings are JSON-quoted (valid YAML
    double-quoted scalars), so no value can be misread as a number, a bool or a comment."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        lines = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:\n{to_yaml(item, indent + 2)}")
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}\n")
        return "".join(lines)
    if isinstance(value, list):
        if not value:
            return pad + "[]\n"
        lines = []
        for item in value:
            if isinstance(item, (dict, list)) and item:
                text = to_yaml(item, indent + 2)
                lines.append(f"{pad}- {text[indent + 2:]}")
            else:
                lines.append(f"{pad}- {_scalar(item)}\n")
        return "".join(lines)
    return pad + _scalar(value) + "\n"


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return json.dumps(str(value), ensure_ascii=False)


# -- checking a run's output -----------------------------------------------------------------------

def missing_frames(output: str, frames: list[int], fmt: str = "png") -> list[str]:
    """The frame files of `frames` that are not in `output` (numbered by source frame)."""
    ext = ".jpg" if fmt == "jpg" else ".png"
    return [f"frame_{n:06d}{ext}" for n in frames
            if not os.path.isfile(os.path.join(output, f"frame_{n:06d}{ext}"))]
