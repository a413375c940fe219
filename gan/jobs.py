"""Running a `gan.protocol` job: dispatch to the engine, every outcome a final event and an
exit code. The command line (`gan.cli`) and the worker (`gan.worker`) both run jobs here, so
that neither needs the other.

Exit codes: 0 done, 1 failed (one line says why), 2 bad arguments, 3 cancelled.
"""

from __future__ import annotations

import os
import sys

from .protocol import CancelToken, CancelledError, Reporter, StylizeJob, TrainJob, UserError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 3


def run_job(job: TrainJob | StylizeJob, reporter: Reporter, cancel: CancelToken,
            models: dict | None = None) -> int:
    """Run a validated job, turning every outcome into a final event and an exit code.
    `models`: loaded models kept between stylize jobs by a long-lived worker."""
    try:
        if isinstance(job, TrainJob):
            from .train import train
            path = train(job, reporter, cancel)
            reporter.emit("done", output=path)
        else:
            from .stylize import stylize
            files = stylize(job, reporter, cancel, models=models)
            reporter.emit("done", output=os.path.abspath(job.output), files=len(files))
        return EXIT_OK
    except CancelledError as exc:
        output = job.resolved_work_dir if isinstance(job, TrainJob) else job.output
        reporter.emit("cancelled", message=one_line(str(exc) or "cancelled"), output=output)
        return EXIT_CANCELLED
    except UserError as exc:
        reporter.emit("error", message=one_line(str(exc)))
        return EXIT_FAILED
    except ModuleNotFoundError as exc:  # the worker's Python lacks a dependency
        reporter.emit("error", message=f"No module named '{exc.name}' in this Python "
                      f"({sys.executable}): pip install -r requirements.txt there, "
                      "or use another interpreter")
        return EXIT_FAILED
    except MemoryError:
        reporter.emit("error", message="out of memory: use a smaller preset, batch or tile size")
        return EXIT_FAILED
    except OSError as exc:  # e.g. disk full while writing: atomic_write names the file
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        reporter.emit("error", message=one_line(f"{where}{exc.strerror or exc}"))
        return EXIT_FAILED
    except Exception as exc:  # a bug: still one line for the user, the type for the report
        reporter.emit("error", message=one_line(f"internal error: {type(exc).__name__}: {exc}"))
        return EXIT_FAILED


MAX_MESSAGE = 2000


def one_line(text: str) -> str:
    """Error events are one line (paths and library messages can hold line breaks)."""
    if any(c in text for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"):
        text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "..."
