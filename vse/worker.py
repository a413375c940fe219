"""The worker Python: every process of the style engine that Blender's side starts.

`start` is the one way to start `<python> -m gan ...` (or any code in the worker Python): one
command line, one environment, one way to detach it from Blender's terminal, one message when
the interpreter cannot be run. `run` waits for a short command (a frame export, the dependency
check). `WorkerProcess` is a running `python -m gan worker` job whose JSON-line events are read
on threads, so nothing ever blocks Blender; the serving worker (`preview_server`, `ServedRun`)
keeps one alive between previews with the style loaded.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import threading
import time

from ..gan import protocol
from . import deps
from .errors import UserError
from .storage import ADDON_DIR

CANCEL_GRACE_S = 20.0   # a cooperative cancel may have to finish a step and save a checkpoint
TERMINATE_GRACE_S = 5.0
STDERR_LINES = 200
# torchrun's variables: a worker started from a Blender that carries them (Blender itself
# launched by torchrun, a farm wrapper) would try to join that process group.
DISTRIBUTED_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def environment() -> dict[str, str]:
    """The environment of a worker Python: the add-on's folder on its path (for `-m gan`),
    UTF-8 unbuffered pipes whatever the system's locale, and no torchrun variables."""
    env = {k: v for k, v in os.environ.items() if k not in DISTRIBUTED_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ADDON_DIR, env.get("PYTHONPATH")) if p)
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def gan_command(*arguments: str) -> list[str]:
    """The arguments after the interpreter for `python -m gan <arguments>`."""
    return ["-m", "gan", *arguments]


def start(python: str, arguments: list[str], stdin=subprocess.DEVNULL) -> subprocess.Popen:
    """Start `<python> <arguments>` in the add-on's folder with `environment()`, its stdout
    and stderr piped as text. It gets its own process group, so that Ctrl-C in Blender's
    terminal stays Blender's, and no console window on Windows. Raises UserError when the
    interpreter cannot be run."""
    options: dict = {}
    if os.name == "posix":
        options["start_new_session"] = True
    else:
        options["creationflags"] = (subprocess.CREATE_NEW_PROCESS_GROUP
                                    | getattr(subprocess, "CREATE_NO_WINDOW", 0))
    try:
        return subprocess.Popen([python, *arguments], cwd=ADDON_DIR, env=environment(),
                                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, encoding="utf-8", errors="replace", bufsize=1,
                                **options)
    except FileNotFoundError:
        why = "not found"
    except PermissionError:
        why = "not executable"
    except OSError as exc:
        why = exc.strerror or str(exc)
    raise UserError(f"Cannot start the worker Python '{python}': {why}; set the worker "
                    "Python in the add-on preferences")


def run(python: str, arguments: list[str], timeout: float, what: str
        ) -> subprocess.CompletedProcess:
    """Run a short command in the worker Python to its end (killed after `timeout` seconds:
    UserError "<what> took longer than ...")."""
    process = start(python, arguments)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise UserError(f"{what} took longer than {timeout:.0f} s ({python})") from None
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


# -- one worker process -------------------------------------------------------------------------

class WorkerProcess:
    """A running `python -m gan worker JOB.json`, its event queue and its cancellation.

    Without a job it is a serving worker (`--serve`): jobs are sent as lines with `send`, and
    it exits on its own after `idle_exit_s` without one (see `ServedRun`). `free_cores`: the
    cores the worker leaves to Blender (docs/decisions.md, "Worker threads").
    """

    def __init__(self, python: str, job: dict | None, job_file: str | None = None,
                 idle_exit_s: float = 0.0, free_cores: int = 1):
        if job is not None:
            with open(job_file, "x", encoding="utf-8") as handle:
                json.dump(job, handle)
            arguments = [job_file]
        else:
            arguments = ["--serve", "--idle-exit", f"{idle_exit_s:g}"]
        self.process = start(python, gan_command("worker", *arguments,
                                                 "--free-cores", str(free_cores)),
                             stdin=subprocess.PIPE)
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


def preview_server(python: str, free_cores: int = 1) -> WorkerProcess:
    """The running serving worker of this Blender session, started if needed (or when it
    exited: idle, crashed, or another interpreter was chosen)."""
    global _server
    if _server is not None and (not _server.alive or _server.python != python):
        stop_server()
    if _server is None:
        _server = WorkerProcess(python, None, idle_exit_s=PREVIEW_IDLE_S, free_cores=free_cores)
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

    def __init__(self, python: str, job: dict, free_cores: int = 1):
        self.server = preview_server(python, free_cores)
        self.python = python
        self.final: dict | None = None
        self.cancel_sent_at: float | None = None
        self.stopped_by_us = False
        self.server.drain()  # nothing of an earlier run may count for this one
        if not self.server.send(json.dumps(job)):
            stop_server()
            raise UserError("The style worker could not take the job (it exited); try again")

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
