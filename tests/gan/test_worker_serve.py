"""`python -m gan worker --serve`: many stylize jobs in one process, each ending with its own
final event; a bad job is one error line and the server goes on; idle or stdin closed: exit."""

import json
import subprocess
import sys
import time

import cv2

from gan.protocol import SourceSpec, StylizeJob, job_to_dict, parse_event
from test_inputs import ROOT, WORKER_ENV, picture, save_tiny_model, write_image


def next_final(process):
    events = []
    while True:
        line = process.stdout.readline()
        assert line, f"the server ended early: {events}"
        events.append(parse_event(line))
        if events[-1]["event"] in ("done", "error", "cancelled"):
            return events


def test_serve_runs_jobs_in_one_process_and_exits_when_idle(tmp_path):
    model = save_tiny_model(tmp_path / "tiny.ganstyle")
    image = write_image(tmp_path / "in.png", picture(1))
    process = subprocess.Popen(
        [sys.executable, "-m", "gan", "worker", "--serve", "--idle-exit", "1"], cwd=ROOT,
        env=WORKER_ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        for number, mix in enumerate((0.0, 1.0)):
            job = StylizeJob(model=model, input=SourceSpec(image),
                             output=str(tmp_path / f"o{number}"), mix=mix, first_number=1)
            process.stdin.write(json.dumps(job_to_dict(job)) + "\n")
            process.stdin.flush()
            assert next_final(process)[-1]["event"] == "done"
            written = cv2.imread(str(tmp_path / f"o{number}" / "frame_000001.png"))
            assert (written == cv2.imread(image)).all() == (mix == 0.0)
        process.stdin.write('{"kind": "train"}\n')  # one error line; the server goes on
        process.stdin.flush()
        error = next_final(process)[-1]
        assert error["event"] == "error" and "\n" not in error["message"]
        assert process.poll() is None
        started = time.monotonic()
        assert process.wait(timeout=30) == 0  # idle for a second: gone
        assert time.monotonic() - started < 20
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
