"""Apply a style file to frames: streaming, batched, tiled when large, I/O overlapped.

Three stages run at once so that the model, not I/O, sets the speed:
    decode thread  --bounded queue-->  inference (this thread)  --bounded-->  encoder threads
OpenCV releases the GIL while it decodes and encodes, and torch while it computes. Every queue is
bounded, so memory does not grow with the length of the clip. The model stage
(`FrameStylizer`) follows a plan per frame size (gan/tiling.py: frames per call, whole or in
overlapping tiles, from the memory a call may use).

Each frame is stylized on its own (no state crosses frames), so stylizing frames 0-9 and 10-19
separately, even on two machines of the same kind, gives the same files as 0-19 at once. The
optional stabilization (`stabilize` > 0, gan/stabilize.py) blends in the previous output moved
by the optical flow, so it carries state from frame to frame: a chunk that knows where its run
starts (`run_start`) first stylizes `preroll_frames` frames before its first one without
writing them. Its motion is measured on motion threads while the model works on the same
frames; only the final warp and blend run in the inference thread.
"""

from __future__ import annotations

import collections
import concurrent.futures
import ctypes
import os
import sys
import threading

import numpy as np
import torch
import torch.nn.functional as F

from . import device as device_mod
from . import frames as frames_mod
from .images import model_rgb, restore_native, to_images, to_tensor, write_image
from .protocol import CancelledError, CancelToken, ProgressMeter, Reporter, StylizeJob, UserError
from .stabilize import Stabilizer, preroll_frames
from .tiling import Plan, make_plan, pad_to_multiple, pixels_that_fit, ramp, round_up, tile_starts

EXTENSIONS = {"png": ".png", "jpg": ".jpg"}  # job.format -> file extension (gan.images encodes)


def output_paths(job: StylizeJob, indices: list[int]) -> list[str]:
    """frame_{n:06d}.ext with n = source index, or first_number + position."""
    ext = EXTENSIONS[job.format]
    numbers = (indices if job.first_number is None
               else range(job.first_number, job.first_number + len(indices)))
    return [os.path.join(job.output, f"frame_{n:06d}{ext}") for n in numbers]


def _check_outputs(job: StylizeJob, paths: list[str | None], indices: list[int]) -> None:
    """`paths`: None for a frame that is kept as it is (skip_existing)."""
    seen: set[str] = set()
    for index, path in zip(indices, paths):
        if path is not None and path in seen:
            raise UserError(f"frame {index} is asked for twice, so its output file would be "
                            "written twice; number the outputs by position (first_number)")
        seen.add(path)
    if os.path.exists(job.output) and not os.path.isdir(job.output):
        raise UserError(f"output {job.output} is a file, not a folder")
    clashes = [p for p in paths if p is not None and os.path.lexists(p)]
    if clashes:
        more = (f" (and {len(clashes) - 1} more of the {len(paths)} frames)"
                if len(clashes) > 1 else "")
        raise UserError(f"{clashes[0]} exists already{more}; nothing is overwritten: choose an "
                        "empty output folder or remove those files")


MODELS_KEPT = 2  # a server keeps this many loaded models (one style, plus the one tried next)


def _load_stylizer(job: StylizeJob, device: torch.device, dtype: torch.dtype,
                   models: dict | None):
    from . import models as models_mod
    if models is None:
        return models_mod.load_stylizer(job.model, device, dtype, job.stroke_scale)
    try:
        stat = os.stat(job.model)
        key = (os.path.abspath(job.model), stat.st_mtime_ns, stat.st_size, str(device), str(dtype),
               job.stroke_scale)
    except OSError:  # load_stylizer says why, in one line
        return models_mod.load_stylizer(job.model, device, dtype, job.stroke_scale)
    if key not in models:
        while len(models) >= MODELS_KEPT:
            models.pop(next(iter(models)))
        models[key] = models_mod.load_stylizer(job.model, device, dtype, job.stroke_scale)
    return models[key]


# -- the model stage ------------------------------------------------------------------------------

class FrameStylizer:
    """RGB uint8 frames in, stylized RGB uint8 frames out (mix applied), batched and tiled.

    `margin`: the generator's receptive-field margin in pixels (context a pixel needs);
    `multiple`: its input sides must be multiples of this (its total stride).
    """

    def __init__(self, generator: torch.nn.Module, device: torch.device, dtype: torch.dtype, *,
                 mix: float = 1.0, margin: int = 64, multiple: int = 4, ngf: int = 64,
                 batch: int | None = None, tile: int | None = None):
        self.generator = generator
        self.device = device
        self.dtype = dtype
        self.mix = float(mix)
        self.multiple = max(1, int(multiple))
        self.margin = round_up(max(0, int(margin)), self.multiple)
        self.ngf = ngf
        self.batch = batch
        self.tile = tile
        self._plans: dict[tuple[int, int], Plan] = {}

    @classmethod
    def from_job(cls, job: StylizeJob, models: dict | None = None) -> "FrameStylizer":
        """The job's stylizer. `models`: a cache of loaded models that a long-lived worker
        keeps between jobs (the preview server), keyed by the file's identity and settings."""
        keep_freed_memory()
        device = device_mod.pick_device(job.device)
        dtype = device_mod.pick_dtype(device)
        generator, info = _load_stylizer(job, device, dtype, models)
        return cls(generator, device, dtype, mix=job.mix, margin=generator.receptive_margin,
                   multiple=generator.alignment, ngf=int(info.arch["ngf"]), batch=job.batch,
                   tile=job.tile)

    # planning -------------------------------------------------------------------------------------

    def plan(self, height: int, width: int) -> Plan:
        key = (height, width)
        if key not in self._plans:
            self._plans[key] = self._make_plan(height, width)
        return self._plans[key]

    def _make_plan(self, height: int, width: int) -> Plan:
        return make_plan(height, width, pixels_that_fit(self.ngf, self.dtype, self.device),
                         multiple=self.multiple, margin=self.margin, batch=self.batch,
                         tile=self.tile, on_cpu=self.device.type == "cpu")

    # running ------------------------------------------------------------------------------------

    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Stylize frames (any sizes; same-size runs are batched together)."""
        out: list[np.ndarray] = []
        start = 0
        while start < len(images):
            shape = images[start].shape
            end = start
            while end < len(images) and images[end].shape == shape:
                end += 1
            plan = self.plan(shape[0], shape[1])
            for i in range(start, end, plan.batch):
                group = images[i:min(end, i + plan.batch)]
                if plan.tile:
                    out.extend(self._tiled(image, plan) for image in group)
                else:
                    out.extend(self._whole(group))
            start = end
        return out

    @torch.inference_mode()
    def _whole(self, images: list[np.ndarray]) -> list[np.ndarray]:
        x = self._to_tensor(images)
        styled = self._forward(x)
        return self._to_images(self._mix(x, styled))

    @torch.inference_mode()
    def _tiled(self, image: np.ndarray, plan: Plan) -> np.ndarray:
        """Overlapping tiles, each blended in where it has enough context, so no seams show.

        The frame is done one row of tiles at a time: besides the uint8 frame and its output,
        memory holds one band of tile rows in float32, never the whole frame (an 8K frame as
        float32 is 400 MB per copy). Rows are finished as soon as no later tile touches them.
        """
        height, width = image.shape[:2]
        tile, overlap = plan.tile, 2 * self.margin
        padded_h, padded_w = round_up(height, self.multiple), round_up(width, self.multiple)
        ys = tile_starts(padded_h, tile, overlap)
        xs = tile_starts(padded_w, tile, overlap)
        th, tw = min(tile, padded_h), min(tile, padded_w)
        ramp_y = [ramp(th, y0 > 0, y0 + th < padded_h, overlap, self.device) for y0 in ys]
        ramp_x = [ramp(tw, x0 > 0, x0 + tw < padded_w, overlap, self.device) for x0 in xs]
        out = np.empty_like(image)
        acc = weight = None
        top = 0  # frame row of the band's first row
        for iy, y0 in enumerate(ys):
            new_acc = torch.zeros((3, th, padded_w), dtype=torch.float32, device=self.device)
            new_weight = torch.zeros((1, th, padded_w), dtype=torch.float32, device=self.device)
            if acc is not None:  # rows the previous tile row already contributed to
                keep = top + th - y0
                new_acc[:, :keep] = acc[:, y0 - top:]
                new_weight[:, :keep] = weight[:, y0 - top:]
            acc, weight, top = new_acc, new_weight, y0
            for i in range(0, len(xs), plan.batch):
                columns = range(i, min(len(xs), i + plan.batch))
                batch = torch.cat([self._tile_input(image, y0, xs[ix], th, tw) for ix in columns])
                styled = self._generate(batch)
                for ix, styled_tile in zip(columns, styled):
                    x0 = xs[ix]
                    w = ramp_y[iy][:, None] * ramp_x[ix][None, :]
                    acc[:, :, x0:x0 + tw] += styled_tile * w
                    weight[:, :, x0:x0 + tw] += w
            done = min(ys[iy + 1] if iy + 1 < len(ys) else padded_h, height)
            for r0 in range(y0, done, 256):  # finished rows, in slices: small temporaries
                r1 = min(done, r0 + 256)
                styled_rows = (acc[:, r0 - top:r1 - top, :width]
                               / weight[:, r0 - top:r1 - top, :width])[None]
                out[r0:r1] = self._to_images(self._mix(self._to_tensor([image[r0:r1]]),
                                                       styled_rows))[0]
        return out

    def _tile_input(self, image: np.ndarray, y0: int, x0: int, th: int, tw: int) -> torch.Tensor:
        """One tile as a float NCHW tensor; a tile reaching past the frame (whose sides are
        not multiples of the stride) is padded by repeating the edge, as the whole frame is."""
        part = image[y0:y0 + th, x0:x0 + tw]
        x = self._to_tensor([part])
        pad_h, pad_w = th - part.shape[0], tw - part.shape[1]
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return x

    def _to_tensor(self, images: list[np.ndarray]) -> torch.Tensor:
        return to_tensor(images, self.device)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[2:]
        return self._generate(pad_to_multiple(x, self.multiple))[:, :, :height, :width]

    def _generate(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dtype).contiguous(memory_format=torch.channels_last)
        return self.generator(x).float()

    def _mix(self, x: torch.Tensor, styled: torch.Tensor) -> torch.Tensor:
        return styled if self.mix >= 1.0 else torch.lerp(x, styled, self.mix)

    @staticmethod
    def _to_images(y: torch.Tensor) -> list[np.ndarray]:
        return list(to_images(y))


def keep_freed_memory() -> None:
    """Let glibc keep freed memory for reuse instead of returning it to the OS.

    glibc hands blocks over 32 MB back with munmap when they are freed, so every frame's
    activations were page-faulted in again: measured 0.57 s of kernel time in a 2.4 s 1080p
    draft forward pass, gone with this (the whole 1080p job ran 23% faster; its peak memory
    rose from 823 to 949 MB and stays flat however long the clip)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    m_trim_threshold, m_mmap_max = -1, -4
    mallopt(m_mmap_max, 0)
    mallopt(m_trim_threshold, 2**31 - 1)


# -- the pipeline ---------------------------------------------------------------------------------

_END = object()

# Decoded frames waiting for the model, and finished frames waiting for their encoder, are
# bounded in bytes as well as in number: a sequence that mixes sizes (a batch planned for small
# frames, then 8K ones) must not hold dozens of huge frames.
MAX_QUEUED_BYTES = 512 << 20
MAX_WRITING_BYTES = 768 << 20


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


class _FrameQueue:
    """A queue bounded by item count and bytes (one item always fits, however large)."""

    def __init__(self, max_items: int, max_bytes: int = MAX_QUEUED_BYTES):
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: collections.deque[tuple[object, int]] = collections.deque()
        self._bytes = 0
        self._changed = threading.Condition()

    def put(self, item: object, stop: threading.Event) -> bool:
        size = item.nbytes if isinstance(item, np.ndarray) else 0
        with self._changed:
            while self._items and (len(self._items) >= self.max_items
                                   or self._bytes + size > self.max_bytes):
                if stop.is_set():
                    return False
                self._changed.wait(0.1)
            if stop.is_set():
                return False
            self._items.append((item, size))
            self._bytes += size
            self._changed.notify_all()
            return True

    def get(self) -> object:
        with self._changed:
            while not self._items:
                self._changed.wait()
            item, size = self._items.popleft()
            self._bytes -= size
            self._changed.notify_all()
            return item


def _decode(source: frames_mod.FrameSource, q: _FrameQueue, stop: threading.Event) -> None:
    try:
        for _, rgb in source:
            if not q.put(rgb, stop):
                return
        q.put(_END, stop)
    except BaseException as exc:  # handed to the main thread, raised there in frame order
        q.put(_Failure(exc), stop)


class _Batches:
    """Frames from the decoder in batches of one size (the model's plan for that size)."""

    def __init__(self, q: _FrameQueue, batch_for):
        self.q = q
        self.batch_for = batch_for
        self._carry: object = None  # a frame of another size, or a failure, for next time
        self.finished = False

    def _take(self) -> object:
        if self._carry is not None:
            item, self._carry = self._carry, None
            return item
        item = self.q.get()
        if item is _END:
            self.finished = True
            return None
        return item

    def next(self) -> list[np.ndarray]:
        """The next batch ([] at the end). A frame of another size starts the next batch; an
        unreadable frame ends the batch, and is raised once the frames before it are done."""
        first = None if self.finished else self._take()
        if first is None:
            return []
        if isinstance(first, _Failure):
            raise first.exc
        batch, size = [first], self.batch_for(first)
        while len(batch) < size and not self.finished:
            item = self._take()
            if item is None:
                break
            if isinstance(item, _Failure) or item.shape != first.shape:
                self._carry = item
                break
            batch.append(item)
        return batch


def _write_frame(rgb: np.ndarray, path: str, ext: str) -> str:
    """Write an RGB or RGBA, 8- or 16-bit frame (PNG keeps all of it; JPEG gets RGB 8-bit)."""
    try:
        # Unnamed temp file + no-replace link: a file under the final name is always complete.
        write_image(path, rgb, overwrite=False, ext=ext)
    except ValueError:
        raise UserError(f"could not encode {path}") from None
    except FileExistsError:
        raise UserError(f"{path} appeared while stylizing (another job writing to the same "
                        "folder?); it was not replaced") from None
    except OSError as exc:  # disk full, file size limit, folder removed or read-only
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _encoder_threads() -> int:
    # A 1080p PNG takes ~50 ms: a fast GPU needs many encoders; on a CPU they idle while the
    # model works, so extra threads cost nothing but their bounded queue.
    return max(2, min(16, (os.cpu_count() or 2) - 1))


def stylize(job: StylizeJob, reporter: Reporter, cancel: CancelToken,
            models: dict | None = None) -> list[str]:
    """Stylize job.input's frames into job.output; returns the written files, in order.
    `models`: a cache of loaded models kept between jobs (see FrameStylizer.from_job).

    Frames of different sizes in one sequence are each stylized at their own size, as a video
    editor shows them (each image of a strip is fitted to the canvas on its own); the output
    keeps every frame's size.
    """
    from .stylefile import read_style_info
    read_style_info(job.model)  # a broken style file fails at once, whatever the mix
    # Image files keep their alpha and 16 bits: the output composites like its source.
    with frames_mod.open_frames(job.input.path, job.input.frames, native=True) as source:
        if not source.indices:
            raise UserError(f"nothing to stylize: no frames of {source.path} were asked for")
        indices = list(source.indices)
    wanted = output_paths(job, indices)
    kept = [job.skip_existing and os.path.lexists(p) for p in wanted]
    _check_outputs(job, [None if k else p for p, k in zip(wanted, kept)], indices)
    indices, paths = _frames_to_run(job, indices, wanted, kept, reporter)
    if not any(paths):
        return []  # every frame exists already (skip_existing)
    with frames_mod.open_frames(job.input.path, indices, native=True) as source:
        # mix 0: the original pixels, no model
        model = FrameStylizer.from_job(job, models) if job.mix > 0 else None
        try:
            os.makedirs(job.output, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the output folder {job.output}: "
                            f"{exc.strerror or exc}") from None
        reporter.emit("start", kind="stylize", total=len(paths),
                      **(device_mod.start_fields(model.device, model.dtype) if model
                         else {"device": "none", "dtype": "none"}))
        stabilizer = Stabilizer(job.stabilize) if model and job.stabilize > 0 else None
        return _run_pipeline(source, model, paths, job.format, reporter, cancel, stabilizer)


def _frames_to_run(job: StylizeJob, indices: list[int], wanted: list[str], kept: list[bool],
                   reporter: Reporter) -> tuple[list[int], list[str | None]]:
    """The source frames to run through the model and, for each, the file to write (None:
    stylized only to bring the stabilizer's state up to date, not written).

    Without Stabilize only the frames to write are run. With it, the run starts up to
    `preroll_frames` before the first frame to write: before a chunk's first frame (from
    `run_start` on) and before a missing frame of a half-finished chunk (its finished
    neighbours are stylized again, not rewritten).
    """
    stabilizing = job.stabilize > 0 and job.mix > 0
    preroll = preroll_frames(job.stabilize) if stabilizing else 0
    if preroll and job.run_start is not None and indices[0] > job.run_start:
        before = list(range(max(job.run_start, indices[0] - preroll), indices[0]))
        indices = before + indices
        wanted = [None] * len(before) + wanted
        kept = [True] * len(before) + kept
    paths = [None if k else p for p, k in zip(wanted, kept)]
    todo = [i for i, p in enumerate(paths) if p is not None]
    finished = sum(1 for p, k in zip(wanted, kept) if p is not None and k)
    if not todo:
        reporter.emit("log", message=f"all {finished} frames exist already in {job.output}; "
                                     "nothing to do")
        return [], []
    if not stabilizing:
        indices, paths = [indices[i] for i in todo], [paths[i] for i in todo]
    else:
        first = max(0, todo[0] - preroll)
        indices, paths = indices[first:todo[-1] + 1], paths[first:todo[-1] + 1]
    warm = sum(1 for p in paths if p is None)
    if finished or warm:
        notes = []
        if finished:
            notes.append(f"kept {finished} finished frames in {job.output}")
        notes.append(f"stylizing {len(todo)}")
        if warm:
            notes.append(f"{warm} more stylized without writing so that Stabilize continues "
                         "the run")
        reporter.emit("log", message="; ".join(notes))
    return indices, paths


def _run_pipeline(source: frames_mod.FrameSource, model: FrameStylizer | None,
                 paths: list[str | None], fmt: str, reporter: Reporter, cancel: CancelToken,
                 stabilizer: Stabilizer | None = None) -> list[str]:
    """Decode -> model -> encode, overlapped; `model` None copies the frames unchanged. A
    frame whose path is None is stylized (the stabilizer's state) but not written."""
    ext = EXTENSIONS[fmt]
    width, height = source.size
    batch = model.plan(height, width).batch if model else 1
    workers = _encoder_threads()
    frames_q = _FrameQueue(max_items=max(2, 2 * batch))
    stop = threading.Event()
    decoder = threading.Thread(target=_decode, args=(source, frames_q, stop),
                               name="gan-decode", daemon=True)
    batches = _Batches(frames_q, (lambda image: model.plan(*image.shape[:2]).batch)
                       if model else (lambda image: 1))
    encoders = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="gan-encode")
    # The stabilizer's motion depends on the input frames alone: measured while the model works
    # (with one thread when the model runs on the CPU: more would take cores from torch's).
    motion_pool = None
    if stabilizer is not None:
        motion_pool = concurrent.futures.ThreadPoolExecutor(
            1 if model.device.type == "cpu" else workers, thread_name_prefix="gan-motion")
    previous_frame: np.ndarray | None = None
    pending: collections.deque[tuple[concurrent.futures.Future, int]] = collections.deque()
    written: list[str] = []
    meter = ProgressMeter(len(paths))
    writing_bytes = 0
    skipped = 0

    def collect(block_until: int) -> None:
        """Take finished writes in order; wait while more than `block_until` frames (or too
        many bytes) are in flight."""
        nonlocal writing_bytes
        while pending and (pending[0][0].done() or len(pending) > block_until
                           or writing_bytes > MAX_WRITING_BYTES):
            future, size = pending.popleft()
            writing_bytes -= size
            written.append(future.result())

    decoder.start()
    try:
        position = 0
        while True:
            if cancel.requested:
                raise CancelledError(f"cancelled after {len(written) + len(pending)} of "
                                     f"{len(paths) - paths.count(None)} frames")
            images = batches.next()
            if not images:
                break
            # The model sees RGB 8-bit; alpha and 16 bits are put back after it (mix 0 copies
            # the native frames as they are).
            inputs = [model_rgb(image) for image in images] if model else images
            motions = []
            if motion_pool is not None:
                for frame in inputs:
                    motions.append(motion_pool.submit(stabilizer.measure, previous_frame, frame))
                    previous_frame = frame
            for i, image in enumerate(model(inputs) if model else images):
                if stabilizer is not None:
                    image = stabilizer.blend(image, motions[i].result())
                if paths[position] is None:  # a pre-roll frame: its state, not its file
                    position += 1
                    skipped += 1
                    continue
                if model is not None and inputs[i] is not images[i]:
                    image = restore_native(image, inputs[i], images[i])
                collect(block_until=2 * workers + batch)
                pending.append((encoders.submit(_write_frame, image, paths[position], ext),
                                image.nbytes))
                writing_bytes += image.nbytes
                position += 1
            collect(block_until=2 * workers + batch)
            if meter.due():
                reporter.emit("progress", **meter.fields(len(written) + skipped))
        collect(block_until=0)
        reporter.emit("progress", **meter.fields(len(written) + skipped))
        return written
    finally:
        stop.set()
        # Finish the writes in flight (a frame is either complete or absent), then stop.
        concurrent.futures.wait([future for future, _ in pending])
        encoders.shutdown(wait=True)
        if motion_pool is not None:
            motion_pool.shutdown(wait=True, cancel_futures=True)
        decoder.join()
