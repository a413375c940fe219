"""The job model: what the user sees of one piece of work in a scene.

A `Job` is a list of steps run in order: worker runs (`Step`, a `gan.protocol` job as a dict,
run by a `worker.WorkerProcess`, or on the serving worker with `served`), and frames that
Blender draws itself one per poll (`RenderStep`, so that a window stays responsive). It keeps
the progress, ETA, losses, preview and checkpoint the worker reports and ends in one of
DONE, FAILED or CANCELLED with a message; `on_success` (main thread) adds the result.
`scheduler` starts and polls jobs.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Callable

import bpy

from ..gan import protocol
from . import deps
from .errors import UserError
from .worker import ServedRun, WorkerProcess

POLL_S = 0.2
RUNNING, DONE, FAILED, CANCELLED = "RUNNING", "DONE", "FAILED", "CANCELLED"
# How a full disk or a file size limit reads in a worker's error (strerror of ENOSPC, EFBIG,
# EDQUOT).
DISK_FULL = ("No space left on device", "File too large", "Disk quota exceeded")


class Step:
    """One worker run of a job. `subject` (e.g. "Strip 'Clip'") starts its failure messages,
    so that a job over several strips says which one failed."""

    def __init__(self, job: dict, label: str, weight: float = 1.0, subject: str = ""):
        self.job = job
        self.label = label
        self.weight = weight
        self.subject = subject


class RenderStep(Step):
    """Frames that Blender must draw itself, one per poll on the main thread: with a window
    the interface stays responsive between two frames (the timer polls), Cancel stops after
    the frame being drawn, and the status shows the progress. `render(item)` draws one of
    `items` and raises UserError with a message for the user when it cannot."""

    def __init__(self, label: str, items: list, render: Callable[[object], None],
                 subject: str = ""):
        super().__init__({}, label, weight=len(items), subject=subject)
        self.items = items
        self.render = render


class Job:
    """A unit of work for one scene: sequential worker runs and a completion callback.

    `on_success(job)` runs on the main thread after the last step finished and returns the
    message to show; an exception from it fails the job. `cleanup(job)` always runs last.
    """

    def __init__(self, kind: str, scene, title: str, steps: list[Step], work_dir: str,
                 python: str, on_success: Callable[["Job"], str] | None = None,
                 cleanup: Callable[["Job"], None] | None = None, claims: tuple[str, ...] = (),
                 served: bool = False):
        self.kind = kind
        self.served = served  # steps run on the serving worker (model kept between jobs)
        self.scene_uid = scene.session_uid
        self.scene_name = scene.name
        self.title = title
        self.steps = steps
        self.work_dir = work_dir
        self.python = python
        self.on_success = on_success
        self.cleanup = cleanup
        self.claims = tuple(os.path.normcase(os.path.abspath(p)) for p in claims)
        self.data: dict = {}            # whatever the operator needs on completion
        self.state = RUNNING
        self.message = ""
        self.status = "Starting"
        self.fraction = 0.0
        self.eta_s: float | None = None
        self.losses: dict = {}
        self.preview_path = ""
        self.preview_step: int | None = None
        self.checkpoint_path = ""
        self.checkpoint_step = 0
        self.device = ""
        self.cancel_requested = False
        self._index = -1
        self._worker: WorkerProcess | ServedRun | None = None
        self._rendered = 0             # frames drawn of the current render step
        self._render_started = 0.0
        self._last_event: dict | None = None
        self._printer: Callable[[str], None] | None = None
        self.free_cores = 1  # cores the worker leaves to Blender (0 when Blender only waits)
        self._last_print = 0.0

    # state ---------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.state == RUNNING

    @property
    def pids(self) -> list[int]:
        return [self._worker.pid] if self._worker is not None else []

    @property
    def step(self) -> Step | None:
        return self.steps[self._index] if 0 <= self._index < len(self.steps) else None

    def scene(self):
        for scene in bpy.data.scenes:
            if scene.session_uid == self.scene_uid:
                return scene
        return None

    # running -------------------------------------------------------------------------------
    def start(self) -> None:
        if not self.steps:  # nothing left to make (a resumed job whose frames all exist)
            self._succeed()
            return
        self._next_step()

    def _next_step(self) -> None:
        self._index += 1
        step = self.steps[self._index]
        self.status = step.label
        self._worker = None
        if isinstance(step, RenderStep):
            self._rendered, self._render_started = 0, time.monotonic()
            self._say(f"{self.title}: {step.label}: {len(step.items)} frames")
            return
        if self.served:
            self._worker = ServedRun(self.python, step.job, self.free_cores)
        else:
            job_file = os.path.join(self.work_dir, f"job_{self._index:03d}.json")
            self._worker = WorkerProcess(self.python, step.job, job_file,
                                         free_cores=self.free_cores)
        self._say(f"{self.title}: {step.label} (worker pid {self._worker.pid})")

    def cancel(self) -> None:
        """Stop at any moment: the worker keeps what it finished, no result is added."""
        if not self.active:
            return
        self.cancel_requested = True
        self.status = "Cancelling"
        if self._worker is not None:
            self._worker.request_cancel()

    def poll(self) -> bool:
        """Handle what the worker said (or draw the next frame of a render step); advance or
        finish. Returns True while running."""
        if not self.active:
            return False
        if isinstance(self.step, RenderStep):
            return self._poll_render(self.step)
        worker = self._worker
        for event in worker.drain():
            self._handle(event)
        worker.enforce_cancel()
        if not worker.finished:
            return True
        worker.close()
        last = self._last_event or {}
        ended = last.get("event")
        # A cancel that the worker obeyed (or that we enforced) is a cancel; a worker that
        # failed or was killed by something else while stopping is a failure: what it was
        # saving (a checkpoint) may be missing, and the user must hear why.
        if ended == "cancelled" or (self.cancel_requested
                                    and (ended == "done" or worker.stopped_by_us)):
            self._finish(CANCELLED, "Cancelled" + self._cancel_note())
        elif worker.returncode == 0 and ended == "done" and not self.cancel_requested:
            self._last_event = None
            if self._index + 1 < len(self.steps):
                try:
                    self._next_step()
                except UserError as exc:
                    self._finish(FAILED, str(exc))
                return self.active
            self._succeed()
        elif last.get("event") == "error":
            self._fail(deps.explain(last["message"], self.python))
        else:
            self._fail(worker.failure_message())
        return self.active

    def _poll_render(self, step: RenderStep) -> bool:
        if self.cancel_requested:
            self._finish(CANCELLED, "Cancelled")
            return False
        try:
            step.render(step.items[self._rendered])
        except UserError as exc:
            self._fail(str(exc))
            return False
        self._rendered += 1
        done, total = self._rendered, len(step.items)
        total_weight = sum(s.weight for s in self.steps) or 1.0
        done_weight = sum(s.weight for s in self.steps[:self._index]) + done
        self.fraction = min(1.0, done_weight / total_weight)
        self.eta_s = (time.monotonic() - self._render_started) / done * (total - done)
        self.status = f"{step.label}: {done}/{total} frames"
        self._say(self.progress_line())
        if done == total:
            self.eta_s = None
            if self._index + 1 < len(self.steps):
                try:
                    self._next_step()
                except UserError as exc:
                    self._finish(FAILED, str(exc))
            else:
                self._succeed()
        return self.active

    def _fail(self, message: str) -> None:
        """A worker run failed: say which strip, what to do about a full disk, what is kept."""
        subject = self.step.subject if self.step is not None else ""
        if subject and not message.startswith(subject):
            message = f"{subject}: {message}"
        if any(text in message for text in DISK_FULL):
            message += " (free disk space or choose another folder, then try again)"
        self._finish(FAILED, message + self._cancel_note())

    def _cancel_note(self) -> str:
        """Where an interrupted training can resume from (the last checkpoint, when one is on
        disk: a worker killed before its first checkpoint leaves none)."""
        path = self.checkpoint_path or self.data.get("checkpoint", "")
        if self.kind == "train" and path and os.path.isfile(path):
            return f"; the last checkpoint is kept ({path}): train the same name again to resume"
        return ""

    def _succeed(self) -> None:
        try:
            message = self.on_success(self) if self.on_success else "Done"
        except Exception as exc:  # the result could not be added: report it, add nothing
            self._finish(FAILED, str(exc) or type(exc).__name__)
            return
        self.fraction = 1.0
        self._finish(DONE, message)

    def _finish(self, state: str, message: str) -> None:
        self.state = state
        self.message = message
        self.status = {DONE: "Done", FAILED: "Failed", CANCELLED: "Cancelled"}[state]
        self.eta_s = None
        if self._worker is not None:
            self._worker.close()
        try:
            if self.cleanup:
                self.cleanup(self)
        finally:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        self._say(f"{self.title}: {self.status.lower()}: {message}", force=True)

    def _handle(self, event: dict) -> None:
        name = event["event"]
        step_weight = self.step.weight
        total_weight = sum(s.weight for s in self.steps) or 1.0
        done_weight = sum(s.weight for s in self.steps[:self._index])
        if name == "start":
            self.device = protocol.describe_device(event)
        elif name == "progress":
            fraction = event.get("fraction")
            if not isinstance(fraction, (int, float)):
                fraction = event["done"] / event["total"] if event["total"] else 0.0
            fraction = min(max(fraction, 0.0), 1.0)
            self.fraction = (done_weight + step_weight * fraction) / total_weight
            eta = event.get("eta_s")
            self.eta_s = eta if isinstance(eta, (int, float)) else None
            losses = event.get("losses")
            if isinstance(losses, dict):
                self.losses = {k: v for k, v in losses.items() if isinstance(v, (int, float))}
            unit = "steps" if self.kind == "train" else "frames"
            counts = f"{_number(event['done'])}/{_number(event['total'])}"
            self.status = f"{self.step.label}: {counts} {unit}"
            self._say(self.progress_line())
        elif name == "preview":
            self.preview_path = event["path"]
            self.preview_step = event.get("step")
        elif name == "checkpoint":
            self.checkpoint_path = event["path"]
            step = event.get("step")
            self.checkpoint_step = step if isinstance(step, int) else self.checkpoint_step
        elif name == "log":
            self._say(f"{self.title}: {event['message']}", force=True)
        if name in ("done", "error", "cancelled"):
            self._last_event = event

    # presentation --------------------------------------------------------------------------
    def progress_line(self) -> str:
        parts = [f"{self.title}: {self.status}", f"{100 * self.fraction:.0f}%"]
        if self.eta_s is not None:
            parts.append(f"ETA {protocol.format_duration(self.eta_s)}")
        if self.losses:
            parts.append(" ".join(f"{k}={v:.4f}" for k, v in self.losses.items()))
        return "  ".join(parts)

    def _say(self, text: str, force: bool = False) -> None:
        if self._printer is None:
            return
        now = time.monotonic()
        if force or now - self._last_print >= 1.0:
            self._last_print = now
            self._printer(text)

    def run_blocking(self) -> None:
        """Run to the end in the caller (background mode)."""
        try:
            while self.poll():
                time.sleep(POLL_S / 2)
        except KeyboardInterrupt:
            self.cancel()
            while self.poll():
                time.sleep(POLL_S / 2)
            raise
        finally:
            if self.active:  # an exception on our side: leave no process behind
                self.cancel()
                if self._worker is not None:
                    self._worker.close(timeout=1.0)
                self._finish(CANCELLED, "Interrupted")


def _number(value) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
