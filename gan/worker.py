"""The worker: runs one job for the Blender add-on and answers in JSON lines.

`--serve` keeps one worker alive for many small stylize jobs (the editor's Preview Frame): jobs
arrive as JSON lines on stdin and run one after another, each ending with its own final event
(done, cancelled or error); the loaded model is kept between them, so only the first job pays
for importing torch and loading the style. It exits when stdin closes (Blender quit, the add-on
was disabled, another file was loaded) or after `--idle-exit` seconds without a job.

Blender starts `python -m gan worker JOB.json` (`gan.__main__` hands the parsed arguments here;
jobs run through `gan.jobs.run_job`, as the command line's do) with stdin and stdout as pipes. Events go to
stdout, one JSON object per line; everything else a library might print goes to stderr so the
event stream stays parseable. Cancel is cooperative: a line "cancel" on stdin, stdin closing
(Blender quit or crashed: no orphan keeps running), or SIGTERM. The job then finishes its step,
keeps what it finished and ends with a "cancelled" event.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading

from .jobs import EXIT_FAILED, EXIT_OK, run_job
from .protocol import CancelToken, JsonLinesReporter, StylizeJob, UserError, job_from_dict

MAX_JOB_BYTES = 16 << 20


class _WorkerReporter(JsonLinesReporter):
    """Events to the parent; when the parent is gone (stdout a broken pipe), the job is asked
    to stop - it saves what it finished - and later events are dropped instead of failing."""

    def __init__(self, stream, cancel: CancelToken):
        super().__init__(stream)
        self.cancel = cancel
        self.broken = False

    def emit(self, event: str, **fields) -> None:
        if self.broken:
            return
        try:
            super().emit(event, **fields)
        except (OSError, ValueError):  # EPIPE, or the stream closed
            self.broken = True
            self.cancel.request()


def run_worker(job_arg: str, free_cores: int = 1) -> int:
    events = _take_stdout_for_events()
    cancel = CancelToken()
    reporter = _WorkerReporter(events, cancel)
    try:
        return _run(job_arg, reporter, cancel, free_cores)
    finally:
        if reporter.broken:  # nobody reads: do not let the final flush print a traceback
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), events.fileno())
            except OSError:
                pass


def _run(job_arg: str, reporter: JsonLinesReporter, cancel: CancelToken, free_cores: int) -> int:
    try:
        job = job_from_dict(_read_job(job_arg))
    except UserError as exc:
        reporter.emit("error", message=str(exc))
        return EXIT_FAILED
    signal.signal(signal.SIGTERM, lambda *_: cancel.request())
    try:  # stray bytes on stdin must not kill the stdin watcher
        sys.stdin.reconfigure(errors="replace")
    except (AttributeError, OSError, ValueError):  # no stdin, or not a text stream
        pass
    threading.Thread(target=_watch_stdin, args=(cancel,), daemon=True).start()
    try:
        from .device import leave_cores_free
    except ModuleNotFoundError:  # no torch in this Python: run_job reports it in one line
        pass
    else:
        leave_cores_free(free_cores)  # an interactive Blender must stay responsive
    return run_job(job, reporter, cancel)


def _take_stdout_for_events():
    """Keep the real stdout for events; send file descriptor 1 (print, C libraries) to stderr."""
    sys.stdout.flush()
    events = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return events


def _read_job(job_arg: str) -> object:
    try:
        if job_arg == "-":
            text = sys.stdin.readline(MAX_JOB_BYTES)
        else:
            with open(job_arg, encoding="utf-8") as handle:
                text = handle.read(MAX_JOB_BYTES + 1)
    except OSError as exc:
        raise UserError(f"cannot read job file {job_arg}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"job file {job_arg} is not UTF-8 text") from None
    if len(text) > MAX_JOB_BYTES:
        raise UserError("job description is too large")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise UserError("job description is not valid JSON") from None


MAX_COMMAND_CHARS = 256


def _watch_stdin(cancel: CancelToken) -> None:
    """Cancel on a "cancel" line, and when stdin ends. Lines are read in bounded pieces: a
    parent that writes without line breaks must not make this thread's memory grow."""
    stream = sys.stdin
    if stream is None:  # started without stdin: nobody can ask us to stop this way
        return
    inside_long_line = False
    try:
        while True:
            piece = stream.readline(MAX_COMMAND_CHARS)
            if not piece:
                break
            complete = piece.endswith("\n")
            if complete and not inside_long_line and _is_cancel(piece):
                break
            inside_long_line = not complete
    except (OSError, ValueError):  # stdin broken or closed under us: treat as closed
        pass
    cancel.request()  # a cancel line, or stdin closed: whoever started us is gone


def _is_cancel(line: str) -> bool:
    return line.strip().lower() in ("cancel", '{"cmd": "cancel"}', '{"cmd":"cancel"}')


# -- serving many jobs ----------------------------------------------------------------------------

def run_server(idle_exit_s: float, free_cores: int = 1) -> int:
    """Run stylize jobs from stdin lines until stdin closes or nothing comes for idle_exit_s."""
    events = _take_stdout_for_events()
    try:  # stray bytes on stdin must not kill the reader
        sys.stdin.reconfigure(errors="replace")
    except (AttributeError, OSError, ValueError):
        pass
    jobs: queue.Queue = queue.Queue()
    threading.Thread(target=_read_jobs, args=(jobs,), daemon=True).start()
    try:
        from .device import leave_cores_free
    except ModuleNotFoundError:  # no torch here: each job reports it in one line
        pass
    else:
        leave_cores_free(free_cores)
    models: dict = {}
    while True:
        try:
            item = jobs.get(timeout=idle_exit_s)
        except queue.Empty:
            return EXIT_OK  # idle: give the memory back; the next preview starts a new server
        if item is None:
            return EXIT_OK  # stdin closed: whoever started us is gone
        line, cancel = item
        reporter = _WorkerReporter(events, cancel)
        try:
            job = job_from_dict(json.loads(line))
            if not isinstance(job, StylizeJob):
                raise UserError("a serving worker runs stylize jobs only")
        except (ValueError, RecursionError):
            reporter.emit("error", message="job description is not valid JSON")
            continue
        except UserError as exc:
            reporter.emit("error", message=str(exc))
            continue
        run_job(job, reporter, cancel, models=models)
        if reporter.broken:
            return EXIT_FAILED



def _read_jobs(jobs: queue.Queue) -> None:
    """Queue each job line with its own cancel token; a "cancel" line cancels the job queued
    last (the running one: jobs are sent one at a time). None marks the end of stdin."""
    latest = CancelToken()
    try:
        while True:
            line = sys.stdin.readline(MAX_JOB_BYTES + 1)
            if not line:
                break
            if len(line) > MAX_JOB_BYTES:  # swallow the rest of an oversized line
                while line and not line.endswith("\n"):
                    line = sys.stdin.readline(MAX_COMMAND_CHARS)
                continue
            if _is_cancel(line):
                latest.request()
            elif line.strip():
                latest = CancelToken()
                jobs.put((line, latest))
    except (OSError, ValueError):
        pass
    latest.request()
    jobs.put(None)
