"""The worker: runs one job for the Blender add-on and answers in JSON lines.

Blender starts `python -m gan worker JOB.json` with stdin and stdout as pipes. Events go to
stdout, one JSON object per line; everything else a library might print goes to stderr so the
event stream stays parseable. Cancel is cooperative: a line "cancel" on stdin, stdin closing
(Blender quit or crashed: no orphan keeps running), or SIGTERM. The job then finishes its step,
keeps what it finished and ends with a "cancelled" event.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

from .cli import EXIT_FAILED, run_job
from .protocol import CancelToken, JsonLinesReporter, UserError, job_from_dict

MAX_JOB_BYTES = 16 << 20


def run_worker(job_arg: str) -> int:
    events = _take_stdout_for_events()
    reporter = JsonLinesReporter(events)
    cancel = CancelToken()
    try:
        job = job_from_dict(_read_job(job_arg))
    except UserError as exc:
        reporter.emit("error", message=str(exc))
        return EXIT_FAILED
    signal.signal(signal.SIGTERM, lambda *_: cancel.request())
    threading.Thread(target=_watch_stdin, args=(cancel,), daemon=True).start()
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


def _watch_stdin(cancel: CancelToken) -> None:
    for line in sys.stdin:
        if line.strip().lower() in ("cancel", '{"cmd": "cancel"}', '{"cmd":"cancel"}'):
            cancel.request()
            return
    cancel.request()  # stdin closed: whoever started us is gone
