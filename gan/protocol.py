"""Job descriptions, progress events and cancellation, shared by the CLI, the worker and Blender.

Standard library only: Blender's process imports this module to build jobs and read the
worker's output without loading torch.

A job is a JSON object (`job_to_dict`); the worker answers with one JSON object per line, each
with an "event" key (see EVENT_FIELDS).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

PRESETS = ("draft", "standard", "high")
DEVICES = ("auto", "cpu", "cuda", "mps")  # and "cuda:N", one GPU of several


def is_device_name(name) -> bool:
    """True for a device a job may name: one of DEVICES, or "cuda:N" (GPU number N)."""
    return isinstance(name, str) and (name in DEVICES or (
        name.startswith("cuda:") and name[5:].isdigit() and name[5:] == str(int(name[5:]))))
FORMATS = ("png", "jpg")


class UserError(Exception):
    """A problem the user can fix (bad path, bad argument, bad file): shown as one line."""


class CancelledError(Exception):
    """The job stopped because cancellation was requested; finished work was kept."""


class ProtocolError(UserError):
    """A job or event that does not follow this protocol."""


# -- jobs ---------------------------------------------------------------------------------------

@dataclass
class SourceSpec:
    """Frames of one source: a video, image folder, image list or still image."""
    path: str | list[str]
    frames: list[int] | None = None  # source indices, in the order wanted; None = all


@dataclass
class KeyframeSpec:
    """A painted keyframe: `painted` (an image file) shows frame `frame` of `footage` in the
    style. Pairs train the generator directly (few-shot, EbSynth-like)."""
    footage: str | list[str]
    frame: int
    painted: str


# Weight of the temporal term in training, and what the operators offer by default: it costs
# about a quarter more time per step (benchmarks/quality.py measures what it buys).
DEFAULT_TEMPORAL_WEIGHT = 10.0
# Stroke scale: the size of the style's strokes in the footage, as a multiple of the size that
# matches the style image to the footage frame (training), or of the size the style was trained
# with (stylizing).
STROKE_SCALE_RANGE = (0.25, 4.0)
MAX_AUTO_KEYFRAMES = 32
# Stabilize: what Apply, farm jobs and both command lines offer by default (a job states its
# own). Half the flicker of a painterly style for a few thousandths of its texture and a few
# per cent of the speed (docs/decisions.md, "session 8"); the texture strength fitted after
# training counts on it (texture_strength).
DEFAULT_STABILIZE = 0.5


@dataclass
class TrainJob:
    style: list[SourceSpec]   # unpaired style sources (may be empty when keyframes are given)
    content: list[SourceSpec]  # footage (may be empty: then the keyframes' footage is used)
    out: str
    preset: str = "draft"
    minutes: float | None = None
    steps: int | None = None
    resume: bool = False
    device: str = "auto"
    seed: int = 0
    name: str | None = None
    work_dir: str | None = None  # checkpoint, previews, loss plot; default out + ".work"
    checkpoint_every_s: float = 60.0
    preview_every_s: float = 30.0
    crop: int | None = None
    batch: int | None = None
    keyframes: list[KeyframeSpec] = field(default_factory=list)
    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT  # 0: no temporal term
    stroke_scale: float = 1.0  # 2: the style image's strokes land twice as large in the footage
    # footage frames painted with the style's patches, then learned; None: automatic
    auto_keyframes: int | None = None
    patch_weight: float | None = None  # the patch-distribution (strokes) term; None: default

    kind = "train"

    @property
    def resolved_work_dir(self) -> str:
        return self.work_dir or self.out + ".work"


@dataclass
class StylizeJob:
    model: str
    input: SourceSpec
    output: str
    mix: float = 1.0
    device: str = "auto"
    format: str = "png"
    first_number: int | None = None  # None: files numbered by source index
    batch: int | None = None
    tile: int | None = None
    stabilize: float = 0.0  # 0 off; up to 1: blend in the previous output, moved by the flow
    stroke_scale: float = 1.0  # the style's strokes at this multiple of their trained size
    # Farm chunks (gan/farm.py). skip_existing: frames whose output file exists are kept, not
    # stylized again (a re-run redoes only the missing ones). run_start: the chunk belongs to a
    # run that starts at source frame run_start; with stabilize, the chunk first stylizes up to
    # stylize.preroll_frames(stabilize) frames before its first one (never before run_start)
    # without writing them, so that its stabilizer starts where a single run's would be.
    skip_existing: bool = False
    run_start: int | None = None

    kind = "stylize"


JOB_TYPES = {"train": TrainJob, "stylize": StylizeJob}


def job_to_dict(job: TrainJob | StylizeJob) -> dict[str, Any]:
    return {"kind": job.kind, **dataclasses.asdict(job)}


def job_from_dict(data: Any) -> TrainJob | StylizeJob:
    """Build and validate a job from parsed JSON; every problem is a one-line ProtocolError."""
    if not isinstance(data, dict):
        raise ProtocolError("job must be a JSON object")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in JOB_TYPES:
        raise ProtocolError(f"job 'kind' must be one of {sorted(JOB_TYPES)}, got {kind!r}")
    cls = JOB_TYPES[kind]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known - {"kind"})
    if unknown:
        raise ProtocolError(f"unknown {kind} job field(s): {', '.join(map(str, unknown))}")
    values = {k: v for k, v in data.items() if k != "kind"}
    try:
        if cls is TrainJob:
            values["keyframes"] = [_keyframe(k) for k in _list(values.get("keyframes", []),
                                                                 "keyframes", empty_ok=True)]
            sources_optional = bool(values["keyframes"])  # keyframes alone can teach a style
            values["style"] = [_source(s, "style") for s in
                               _list(values.get("style"), "style", sources_optional)]
            values["content"] = [_source(s, "content") for s in
                                 _list(values.get("content"), "content", sources_optional)]
        else:
            values["input"] = _source(values.get("input"), "input")
        job = cls(**values)
    except TypeError as exc:  # missing required field
        raise ProtocolError(f"bad {kind} job: {exc}") from None
    _validate(job)
    return job


def _list(value: Any, name: str, empty_ok: bool = False) -> list:
    if empty_ok and value is None:
        return []
    if not isinstance(value, list) or not (value or empty_ok):
        raise ProtocolError(f"'{name}' must be a non-empty list")
    return value


def _path_ok(path: Any) -> bool:
    """A non-empty string, or a non-empty list of non-empty strings (an image sequence)."""
    return isinstance(path, str) and path != "" or (
        isinstance(path, list) and path != [] and all(isinstance(p, str) and p for p in path))


def _keyframe(value: Any) -> KeyframeSpec:
    if not isinstance(value, dict) or set(value) != {"footage", "frame", "painted"}:
        raise ProtocolError("a keyframe must be an object with 'footage', 'frame' and 'painted'")
    _check(_path_ok(value["footage"]), "keyframe 'footage' must be a path or a list of files")
    _check(_is_int(value["frame"]) and value["frame"] >= 0, "keyframe 'frame' must be >= 0")
    _check(isinstance(value["painted"], str) and value["painted"] != "",
           "keyframe 'painted' must be the path of an image")
    return KeyframeSpec(**value)


def _source(value: Any, name: str) -> SourceSpec:
    if isinstance(value, str):
        value = {"path": value}
    if not isinstance(value, dict) or set(value) - {"path", "frames"}:
        raise ProtocolError(f"'{name}' source must be an object with 'path' and optional 'frames'")
    path = value.get("path")
    if not _path_ok(path):
        raise ProtocolError(f"'{name}' source needs a path (a string or a list of file paths)")
    frames = value.get("frames")
    if frames is not None and not (
            isinstance(frames, list) and all(_is_int(i) and i >= 0 for i in frames)):
        raise ProtocolError(f"'{name}' frames must be a list of frame numbers >= 0")
    return SourceSpec(path=path, frames=frames)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ProtocolError(message)


def _validate(job: TrainJob | StylizeJob) -> None:
    _check(is_device_name(job.device),
           f"device must be one of {', '.join(DEVICES)} or cuda:N, got {job.device!r}")
    _check(job.batch is None or (_is_int(job.batch) and job.batch >= 1), "batch must be >= 1")
    if isinstance(job, TrainJob):
        _check(isinstance(job.out, str) and job.out != "", "train job needs 'out' (the style file)")
        _check(job.preset in PRESETS, f"preset must be one of {', '.join(PRESETS)}, got {job.preset!r}")
        _check(job.minutes is None or (_is_number(job.minutes) and job.minutes > 0),
               "minutes must be a number > 0")
        _check(job.steps is None or (_is_int(job.steps) and job.steps >= 1), "steps must be >= 1")
        _check(job.minutes is not None or job.steps is not None,
               "give a time budget (minutes) or a step count (steps)")
        _check(isinstance(job.resume, bool), "resume must be true or false")
        _check(_is_int(job.seed), "seed must be an integer")
        _check(job.name is None or isinstance(job.name, str), "name must be a string")
        _check(job.work_dir is None or isinstance(job.work_dir, str), "work_dir must be a path")
        for key in ("checkpoint_every_s", "preview_every_s"):
            value = getattr(job, key)
            _check(_is_number(value) and value > 0, f"{key} must be a number > 0")
        _check(job.crop is None or (_is_int(job.crop) and 16 <= job.crop <= 4096),
               "crop must be between 16 and 4096 pixels")
        _check(job.style or job.keyframes, "give a style source or painted keyframes")
        _check(_is_number(job.temporal_weight) and 0 <= job.temporal_weight <= 1000,
               "temporal_weight must be a number between 0 and 1000")
        _check(job.auto_keyframes is None
               or (_is_int(job.auto_keyframes) and 0 <= job.auto_keyframes <= MAX_AUTO_KEYFRAMES),
               f"auto_keyframes must be between 0 and {MAX_AUTO_KEYFRAMES}")
        _check(job.patch_weight is None
               or (_is_number(job.patch_weight) and 0 <= job.patch_weight <= 10000),
               "patch_weight must be a number between 0 and 10000")
    else:
        _check(isinstance(job.model, str) and job.model != "", "stylize job needs 'model' (a style file)")
        _check(isinstance(job.output, str) and job.output != "", "stylize job needs 'output' (a folder)")
        _check(_is_number(job.mix) and 0.0 <= job.mix <= 1.0, "mix must be between 0 and 1")
        _check(job.format in FORMATS, f"format must be one of {', '.join(FORMATS)}")
        _check(job.first_number is None or (_is_int(job.first_number) and job.first_number >= 0),
               "first_number must be >= 0")
        _check(job.tile is None or (_is_int(job.tile) and job.tile >= 64), "tile must be >= 64 pixels")
        _check(_is_number(job.stabilize) and 0.0 <= job.stabilize <= 1.0,
               "stabilize must be between 0 and 1")
        _check(isinstance(job.skip_existing, bool), "skip_existing must be true or false")
        _check(job.run_start is None or (_is_int(job.run_start) and job.run_start >= 0),
               "run_start must be a frame number >= 0")
    _check(_is_number(job.stroke_scale)
           and STROKE_SCALE_RANGE[0] <= job.stroke_scale <= STROKE_SCALE_RANGE[1],
           f"stroke_scale must be between {STROKE_SCALE_RANGE[0]:g} and {STROKE_SCALE_RANGE[1]:g}")


# -- events -------------------------------------------------------------------------------------

# Required fields of each event, with their JSON types; other fields are allowed.
EVENT_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "start": {"kind": (str,), "total": (int, float)},
    "progress": {"done": (int, float), "total": (int, float)},
    "preview": {"path": (str,)},
    "checkpoint": {"path": (str,)},
    "log": {"message": (str,)},
    "done": {"output": (str, list)},
    "cancelled": {"message": (str,)},
    "error": {"message": (str,)},
}
MAX_EVENT_LINE = 1 << 20


def parse_event(line: str) -> dict[str, Any]:
    """Parse and validate one worker output line; raises ProtocolError on anything else."""
    if len(line) > MAX_EVENT_LINE:
        raise ProtocolError("worker line too long")
    try:
        event = json.loads(line)
    except (ValueError, RecursionError):
        raise ProtocolError(f"worker sent a line that is not JSON: {line[:80]!r}") from None
    if not isinstance(event, dict):
        raise ProtocolError("worker event must be a JSON object")
    name = event.get("event")
    if not isinstance(name, str) or name not in EVENT_FIELDS:
        raise ProtocolError(f"unknown worker event {name!r}")
    for key, types in EVENT_FIELDS[name].items():
        value = event.get(key)
        if not isinstance(value, types) or isinstance(value, bool):
            raise ProtocolError(f"worker event '{name}' has a bad or missing '{key}'")
    return event


class Reporter:
    """Receives the events of a job and shows nothing; subclasses decide how events are shown
    (a caller that wants a quiet job passes a plain Reporter())."""

    def emit(self, event: str, **fields: Any) -> None:
        pass


class JsonLinesReporter(Reporter):
    """One JSON object per line, flushed at once: the worker protocol and `--json`."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        line = json.dumps(_strict_json({"event": event, **fields}), default=str)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def _strict_json(value: Any) -> Any:
    """NaN/inf are not JSON: a diverged loss is sent as null rather than an unparsable line."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    return value


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def describe_device(start: dict[str, Any]) -> str:
    """'cpu bfloat16, 2 threads' or 'cuda bfloat16', from a "start" event's fields."""
    text = f"{start.get('device', '?')} {start.get('dtype', '?')}"
    threads = start.get("threads")
    if start.get("device") == "cpu" and isinstance(threads, int):
        text += f", {threads} thread{'' if threads == 1 else 's'}"
    return text


class HumanReporter(Reporter):
    """Readable progress lines for a terminal or a farm log."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self._unit = "steps"

    def emit(self, event: str, **f: Any) -> None:
        if event == "start":
            self._unit = "steps" if f.get("kind") == "train" else "frames"
            text = f"{f.get('kind')}: {f.get('total')} {self._unit} on {describe_device(f)}"
        elif event == "progress":
            losses = f.get("losses") or {}
            loss_text = " ".join(f"{k}={v:.4f}" for k, v in losses.items()
                                 if isinstance(v, (int, float)))
            rate = f.get("rate")
            rate_text = f"{rate:.2f} {self._unit}/s" if isinstance(rate, (int, float)) else ""
            text = (f"{self._unit[:-1]} {f.get('done')}/{f.get('total')}"
                    f" {100 * (f.get('fraction') or 0):5.1f}% {rate_text}"
                    f" eta {format_duration(f.get('eta_s'))} {loss_text}").rstrip()
        elif event in ("preview", "checkpoint"):
            text = f"{event}: {f.get('path')}"
        elif event == "done":
            output = f.get("output")
            text = f"done: {output if isinstance(output, str) else f'{len(output)} files'}"
        elif event == "cancelled":
            text = f"cancelled: {f.get('message')}"
        elif event == "error":
            text = f"error: {f.get('message')}"
        else:
            text = str(f.get("message", f))
        self.stream.write(text + "\n")
        self.stream.flush()


class ProgressMeter:
    """Rate and ETA for a job of `total` units, and a throttle so progress is sent ~1/s.

    `budget_s`: the job also ends when this much time is spent (training for N minutes;
    `total` 0: only the time counts), `spent_s` of it by earlier runs (a resumed job). While
    the time runs out before the units do, `total` is the units reached at this rate by then.
    """

    def __init__(self, total: float, interval_s: float = 1.0, budget_s: float | None = None,
                 spent_s: float = 0.0):
        self.total = total
        self.interval_s = interval_s
        self.budget_s = budget_s
        self.spent_s = spent_s
        self.started = time.monotonic()
        self._last_sent = -math.inf

    def due(self) -> bool:
        return time.monotonic() - self._last_sent >= self.interval_s

    def fields(self, done: float, since_done: float = 0.0) -> dict[str, Any]:
        """`since_done`: units already done before this run (a resumed job) - not in the rate."""
        now = self._last_sent = time.monotonic()
        elapsed = max(now - self.started, 1e-9)
        rate = (done - since_done) / elapsed
        fractions = [done / self.total] if self.total else []
        if self.budget_s:
            fractions.append((self.spent_s + now - self.started) / self.budget_s)
        fraction = min(max(fractions), 1.0) if fractions else 1.0
        total = self.total
        if self.budget_s and not (self.total and done / self.total >= fraction):
            eta = max(self.budget_s - self.spent_s - (now - self.started), 0.0)
            total = int(done + rate * eta)  # the time budget ends first
        else:
            remaining = max(self.total - done, 0)
            eta = remaining / rate if rate > 0 else None
        return {"done": done, "total": total, "fraction": round(fraction, 4),
                "rate": round(rate, 4), "eta_s": None if eta is None else round(eta, 1)}


class CancelToken:
    """Cooperative cancellation: set from another thread (stdin reader, signal handler)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def request(self) -> None:
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()
