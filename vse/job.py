"""Jobs run in a worker process: `<python> -m gan worker JOB.json` (Blender never imports torch).

`WorkerProcess` starts one worker and reads its JSON-line events on a thread, so nothing ever
blocks Blender. `Job` is what the user sees: one or more worker runs (one per strip when
stylizing several strips), progress, ETA, losses, preview, and a completion callback that runs
on Blender's main thread. One job runs per scene; two jobs never share an output folder.

With a window, `bpy.app.timers` polls the running jobs. In background mode (`blender -b`, the
bpy module) timers never fire, so `Job.run_blocking` polls in the operator itself and prints
progress lines instead.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from typing import Callable

import bpy

from ..gan import protocol
from . import deps
from .storage import ADDON_DIR

POLL_S = 0.2
CANCEL_GRACE_S = 20.0   # a cooperative cancel may have to finish a step and save a checkpoint
TERMINATE_GRACE_S = 5.0
STDERR_LINES = 200

# Tests set this to exercise the timer path without a window (they call `tick()` themselves).
FORCE_ASYNC = False

RUNNING, DONE, FAILED, CANCELLED = "RUNNING", "DONE", "FAILED", "CANCELLED"
# How a full disk or a file size limit reads in a worker's error (strerror of ENOSPC, EFBIG,
# EDQUOT).
DISK_FULL = ("No space left on device", "File too large", "Disk quota exceeded")


def blocking() -> bool:
    """True when jobs must run inside the operator (no event loop to poll them)."""
    return bpy.app.background and not FORCE_ASYNC


class JobError(Exception):
    """A job that cannot start; the message is for the user."""


def worker_environment() -> dict[str, str]:
    """The environment of a worker Python: the add-on's folder on its path (for `-m gan`) and
    UTF-8 pipes whatever the system's locale."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ADDON_DIR, env.get("PYTHONPATH")) if p)
    env["PYTHONIOENCODING"] = "utf-8"
    return env


# -- one worker process -------------------------------------------------------------------------

class WorkerProcess:
    """A running `python -m gan worker JOB.json`, its event queue and its cancellation.

    Without a job it is a serving worker (`--serve`): jobs are sent as lines with `send`, and
    it exits on its own after `idle_exit_s` without one (see `ServedRun`).
    """

    def __init__(self, python: str, job: dict | None, job_file: str | None = None,
                 idle_exit_s: float = 0.0):
        if job is not None:
            with open(job_file, "x", encoding="utf-8") as handle:
                json.dump(job, handle)
            arguments = [job_file]
        else:
            arguments = ["--serve", "--idle-exit", f"{idle_exit_s:g}"]
        env = worker_environment()
        env["PYTHONUNBUFFERED"] = "1"
        options: dict = {}
        if os.name == "posix":
            options["start_new_session"] = True  # Ctrl-C in Blender's terminal is Blender's
        else:
            options["creationflags"] = (subprocess.CREATE_NEW_PROCESS_GROUP
                                        | getattr(subprocess, "CREATE_NO_WINDOW", 0))
        try:
            # Blender in background mode only waits for the worker: it needs no core of its own,
            # so the worker takes them all (docs/decisions.md, "Worker threads").
            free_cores = "0" if blocking() else "1"
            self.process = subprocess.Popen(
                [python, "-m", "gan", "worker", *arguments, "--free-cores", free_cores],
                cwd=ADDON_DIR, env=env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, encoding="utf-8", errors="replace", bufsize=1, **options)
        except OSError as exc:
            raise JobError(f"Cannot start the worker Python '{python}': {exc.strerror or exc}. "
                           "Set the worker Python in the add-on preferences") from None
        self.python = python
        self.events: queue.Queue = queue.Queue()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self.cancel_sent_at: float | None = None
        self.terminated_at: float | None = None
        self.stopped_by_us = False  # we terminated or killed it (a cancel it did not obey)
        self._stdout_done = threading.Event()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    @property
    def alive(self) -> bool:
        """Running and still talking (a worker whose output ended is of no more use)."""
        return self.process.poll() is None and not self._stdout_done.is_set()

    def send(self, line: str) -> bool:
        """Write one line to the worker's stdin (False when it is gone)."""
        try:
            self.process.stdin.write(line.rstrip("\n") + "\n")
            self.process.stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def _read_stdout(self) -> None:
        try:
            for line in self.process.stdout:
                line = line.strip()
                if not line:
                    continue
                try:
                    event = protocol.parse_event(line)
                except protocol.ProtocolError:
                    event = {"event": "log", "message": line[:500]}
                self.events.put(event)
        except (OSError, ValueError):
            pass
        finally:
            self._stdout_done.set()

    def _read_stderr(self) -> None:
        try:
            for line in self.process.stderr:
                self.stderr_tail.append(line.rstrip("\n"))
        except (OSError, ValueError):
            pass

    def drain(self) -> list[dict]:
        events = []
        while True:
            try:
                events.append(self.events.get_nowait())
            except queue.Empty:
                return events

    @property
    def finished(self) -> bool:
        """The process has exited and all its output has been read."""
        return self.process.poll() is not None and self._stdout_done.is_set()

    def request_cancel(self) -> None:
        """Ask the worker to stop after its current step (it keeps what it finished)."""
        if self.cancel_sent_at is not None:
            return
        self.cancel_sent_at = time.monotonic()
        self.send("cancel")  # False: already gone

    def enforce_cancel(self) -> None:
        """Escalate a cancel the worker ignores: terminate after a grace period, then kill."""
        if self.cancel_sent_at is None or self.process.poll() is not None:
            return
        now = time.monotonic()
        if self.terminated_at is None:
            if now - self.cancel_sent_at >= CANCEL_GRACE_S:
                self.terminated_at = now
                self.stopped_by_us = True
                self.process.terminate()
        elif now - self.terminated_at >= TERMINATE_GRACE_S:
            self.process.kill()

    def close(self, timeout: float = TERMINATE_GRACE_S) -> None:
        """Make sure the process is gone and reaped (kills it if needed)."""
        if self.process.poll() is None:
            self.request_cancel()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.stopped_by_us = True
                self.process.kill()
                self.process.wait()
        self._stdout_done.wait(2.0)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass

    def failure_message(self) -> str:
        """Why a worker ended without a final event: a crash, or a missing package."""
        tail = [line for line in self.stderr_tail if line.strip()]
        text = "\n".join(tail)
        if "No module named" in text:
            return deps.explain(text, self.python)
        code = self.process.returncode
        if code is not None and code < 0:
            try:
                how = f"signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"signal {-code}"
        else:
            how = f"exit code {code}"
        last = tail[-1].strip() if tail else ""
        return f"The style worker stopped unexpectedly ({how})" + (f": {last}" if last else "")


# -- the serving worker (previews) --------------------------------------------------------------

PREVIEW_IDLE_S = 300.0  # a preview worker with nothing to do exits after this (its memory back)
FINAL_EVENTS = ("done", "cancelled", "error")

_server: WorkerProcess | None = None


def preview_server(python: str) -> WorkerProcess:
    """The running serving worker of this Blender session, started if needed (or when it
    exited: idle, crashed, or another interpreter was chosen)."""
    global _server
    if _server is not None and (not _server.alive or _server.python != python):
        stop_server()
    if _server is None:
        _server = WorkerProcess(python, None, idle_exit_s=PREVIEW_IDLE_S)
    return _server


def server_pid() -> int | None:
    """The pid of the live serving worker, else None."""
    if _server is not None and _server.alive:
        return _server.pid
    return None


def stop_server() -> None:
    """End the serving worker (closing its stdin ends it; killed if it does not go at once)."""
    global _server
    server, _server = _server, None
    if server is None:
        return
    try:
        server.process.stdin.close()
    except (OSError, ValueError):
        pass
    try:
        server.process.wait(TERMINATE_GRACE_S)
    except subprocess.TimeoutExpired:
        server.process.kill()
    server.close(timeout=1.0)


class ServedRun:
    """One job on the serving worker, with the face of a WorkerProcess for `Job.poll`: it is
    finished at the job's final event (the process lives on) or when the server died."""

    def __init__(self, python: str, job: dict):
        self.server = preview_server(python)
        self.python = python
        self.final: dict | None = None
        self.cancel_sent_at: float | None = None
        self.stopped_by_us = False
        self.server.drain()  # nothing of an earlier run may count for this one
        if not self.server.send(json.dumps(job)):
            stop_server()
            raise JobError("The style worker could not take the job (it exited); try again")

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def returncode(self) -> int | None:
        if self.final is not None:
            return 0 if self.final["event"] == "done" else 1
        return self.server.returncode

    @property
    def finished(self) -> bool:
        return self.final is not None or self.server.finished

    def drain(self) -> list[dict]:
        events = []
        if self.final is None:
            for event in self.server.drain():
                events.append(event)
                if event["event"] in FINAL_EVENTS:
                    self.final = event
                    break
        return events

    def request_cancel(self) -> None:
        if self.cancel_sent_at is None and self.final is None:
            self.cancel_sent_at = time.monotonic()
            self.server.send("cancel")

    def enforce_cancel(self) -> None:
        """A job that ignores its cancel takes the server down with it."""
        if (self.cancel_sent_at is not None and self.final is None and not self.server.finished
                and time.monotonic() - self.cancel_sent_at >= CANCEL_GRACE_S):
            self.stopped_by_us = True
            if self.server is _server:
                stop_server()
            else:
                self.server.close(timeout=1.0)

    def close(self, timeout: float = TERMINATE_GRACE_S) -> None:
        """Leave the server idle: a run still going is cancelled, and the server is stopped
        when the run does not end within `timeout`."""
        if self.finished:
            return
        self.request_cancel()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.finished:
            self.drain()
            time.sleep(0.02)
        if not self.finished:
            self.stopped_by_us = True
            if self.server is _server:
                stop_server()
            else:
                self.server.close(timeout=1.0)

    def failure_message(self) -> str:
        return self.server.failure_message()


# -- jobs as the user sees them -----------------------------------------------------------------

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
    `items` and raises JobError with a message for the user when it cannot."""

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
            self._worker = ServedRun(self.python, step.job)
        else:
            job_file = os.path.join(self.work_dir, f"job_{self._index:03d}.json")
            self._worker = WorkerProcess(self.python, step.job, job_file)
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
                except JobError as exc:
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
        except JobError as exc:
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
                except JobError as exc:
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


# -- the jobs of this Blender session -----------------------------------------------------------

_jobs: dict[int, Job] = {}  # scene session_uid -> running or last finished job


def job_for(scene) -> Job | None:
    return _jobs.get(scene.session_uid) if scene is not None else None


def running_jobs() -> list[Job]:
    return [job for job in _jobs.values() if job.active]


def ensure_idle(scene) -> None:
    """Raise JobError when the scene already runs a job (one job per scene)."""
    current = job_for(scene)
    if current is not None and current.active:
        raise JobError(f"A style job is already running in scene '{scene.name}' "
                       f"({current.title}); cancel it or wait for it")


def submit(job: Job) -> None:
    """Start a job (raises JobError when the scene is busy or an output is already claimed).

    In background mode the job runs to its end here, printing progress lines; otherwise a
    timer polls it and this returns at once. A refused job is cleaned up like a failed one.
    """
    try:
        scene = job.scene()
        if scene is not None:
            ensure_idle(scene)
        for other in running_jobs():
            if set(other.claims) & set(job.claims):
                raise JobError(f"Another job ({other.title}) is writing the same output")
    except JobError as exc:
        job._finish(FAILED, str(exc))
        raise
    _jobs[job.scene_uid] = job
    if blocking():
        job._printer = lambda text: print(f"GAN Style: {text}", flush=True)
    try:
        job.start()
    except JobError as exc:
        job._finish(FAILED, str(exc))
        raise
    if blocking():
        job.run_blocking()
    elif not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=POLL_S, persistent=True)


def dismiss(scene) -> None:
    """Forget the last finished job of a scene (the panel stops showing it)."""
    job = job_for(scene)
    if job is not None and not job.active:
        del _jobs[scene.session_uid]


def tick() -> float | None:
    """Timer callback: poll all running jobs, redraw the sequencer. None ends the timer."""
    for job in list(_jobs.values()):
        if job.active:
            try:
                job.poll()
            except Exception as exc:  # never let one job stop the timer for the others
                job._finish(FAILED, f"{type(exc).__name__}: {exc}")
            if not job.active:
                _announce(job)
    _redraw()
    return POLL_S if running_jobs() else None


def cancel_all(wait: bool = True) -> None:
    """Cancel every job (add-on disabled, another file loaded) and leave no process behind."""
    for job in running_jobs():
        job.cancel()
        if wait:
            if job._worker is not None:
                job._worker.close()
            job.poll()
            if job.active:
                job._finish(CANCELLED, "Cancelled")


def _announce(job: Job) -> None:
    print(f"GAN Style: {job.title}: {job.status.lower()}: {job.message}")
    if job.state != FAILED or bpy.app.background:
        return
    wm = bpy.context.window_manager
    if wm is None or not len(wm.windows):
        return

    def draw(menu, _context):
        for line in _wrap(job.message, 90):
            menu.layout.label(text=line)

    with bpy.context.temp_override(window=wm.windows[0]):
        wm.popup_menu(draw, title=f"GAN Style: {job.title} failed", icon='ERROR')


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


def _redraw() -> None:
    wm = bpy.context.window_manager
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in ('SEQUENCE_EDITOR', 'PREFERENCES', 'STATUSBAR'):
                area.tag_redraw()
