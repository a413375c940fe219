"""Jobs and events: validation, round trips, and the worker's handling of bad jobs."""

import io
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from gan.protocol import (HumanReporter, JsonLinesReporter, ProgressMeter, ProtocolError,
                          SourceSpec, StylizeJob, TrainJob, describe_device, job_from_dict,
                          job_to_dict, parse_event)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_jobs_round_trip_through_json():
    train = TrainJob(style=[SourceSpec("s.mp4", [1, 2])], content=[SourceSpec(["a.png", "b.png"])],
                     out="x.ganstyle", steps=10)
    stylize = StylizeJob(model="x.ganstyle", input=SourceSpec("c.mp4", [5, 4, 3]), output="out",
                         mix=0.5, first_number=1)
    for job in (train, stylize):
        assert job_from_dict(json.loads(json.dumps(job_to_dict(job)))) == job


@pytest.mark.parametrize("change, message", [
    ({"kind": "paint"}, "kind"),
    ({"mix": 1.5}, "mix"),
    ({"mix": float("nan")}, "mix"),
    ({"device": "tpu"}, "device"),
    ({"device": "cuda:one"}, "device"),
    ({"device": "cuda:-1"}, "device"),
    ({"input": {"path": ""}}, "path"),
    ({"input": {"path": "a.mp4", "frames": [-1]}}, "frames"),
    ({"input": {"path": "a.mp4", "frames": [True]}}, "frames"),
    ({"tile": 8}, "tile"),
    ({"surprise": 1}, "unknown"),
])
def test_bad_stylize_jobs_are_refused(change, message):
    data = job_to_dict(StylizeJob(model="m.ganstyle", input=SourceSpec("a.mp4"), output="o"))
    data.update(change)
    with pytest.raises(ProtocolError, match=message):
        job_from_dict(data)


def test_a_gpu_of_several_is_a_device_a_job_may_name():
    data = job_to_dict(StylizeJob(model="m.ganstyle", input=SourceSpec("a.mp4"), output="o",
                                  device="cuda:1"))
    assert job_from_dict(data).device == "cuda:1"


def test_train_job_needs_a_budget_and_sources():
    data = job_to_dict(TrainJob(style=[SourceSpec("s.png")], content=[SourceSpec("c.mp4")],
                                out="o.ganstyle", minutes=1))
    for change, message in (({"minutes": None}, "budget"), ({"style": []}, "style"),
                            ({"preset": "huge"}, "preset"), ({"steps": 0}, "steps")):
        with pytest.raises(ProtocolError, match=message):
            job_from_dict({**data, **change})


def test_events_are_one_json_line_each_and_nan_becomes_null():
    stream = io.StringIO()
    reporter = JsonLinesReporter(stream)
    reporter.emit("progress", done=3, total=10, losses={"g": float("nan"), "d": 0.5})
    reporter.emit("done", output="/x")
    lines = stream.getvalue().splitlines()
    assert [parse_event(line)["event"] for line in lines] == ["progress", "done"]
    assert json.loads(lines[0])["losses"] == {"g": None, "d": 0.5}


def test_human_reporter_writes_readable_lines():
    stream = io.StringIO()
    reporter = HumanReporter(stream)
    reporter.emit("start", kind="train", total=100, device="cpu", dtype="bfloat16", threads=1)
    reporter.emit("progress", done=50, total=100, fraction=0.5, rate=2.0, eta_s=25,
                  losses={"nce": 1.25})
    text = stream.getvalue()
    assert "100 steps on cpu bfloat16, 1 thread\n" in text
    assert "step 50/100" in text and "nce=1.2500" in text


@pytest.mark.parametrize("total, budget_s, spent_s, expected", [
    # 25 units done, 20 of them in this run's 10 s: a rate of 2
    (30, None, 0.0, {"total": 30, "fraction": 0.8333, "eta_s": 2.5}),
    (0, 100.0, 40.0, {"total": 125, "fraction": 0.5, "eta_s": 50.0}),   # time alone
    (1000, 100.0, 40.0, {"total": 125, "fraction": 0.5, "eta_s": 50.0}),  # time ends first
    (30, 1000.0, 0.0, {"total": 30, "fraction": 0.8333, "eta_s": 2.5}),   # units end first
])
def test_progress_meter_with_units_and_a_time_budget(total, budget_s, spent_s, expected):
    """Training's ETA: a step count, a time budget (partly spent by earlier runs), or both,
    whichever ends first."""
    meter = ProgressMeter(total, budget_s=budget_s, spent_s=spent_s)
    meter.started -= 10.0
    fields = meter.fields(25, since_done=5)
    assert fields["done"] == 25 and fields["rate"] == pytest.approx(2.0, rel=1e-3)
    assert fields["total"] in (expected["total"], expected["total"] - 1)  # int() of ~125
    assert fields["fraction"] == pytest.approx(expected["fraction"], abs=2e-4)
    assert fields["eta_s"] == pytest.approx(expected["eta_s"], abs=0.2)
    assert not meter.due()


@pytest.mark.parametrize("fields, text", [
    ({"device": "cpu", "dtype": "float32", "threads": 2}, "cpu float32, 2 threads"),
    ({"device": "cuda", "dtype": "bfloat16", "threads": 16}, "cuda bfloat16"),  # GPU: no threads
    ({"device": "cpu", "dtype": "float32"}, "cpu float32"),  # an older worker's event
])
def test_describe_device(fields, text):
    assert describe_device(fields) == text


@pytest.mark.parametrize("line", ['', 'null', '[]', '{"event": "boom"}', '{"event": "done"}',
                                  '{"event": "progress", "done": "1", "total": 2}',
                                  '{"event": "error", "message": true}', '{' * 100000])
def test_parse_event_refuses_bad_lines(line):
    with pytest.raises(ProtocolError):
        parse_event(line)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.text(max_size=200),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                              lambda children: st.lists(children) | st.dictionaries(
                                  st.sampled_from(["event", "message", "path", "done", "total",
                                                   "output", "kind", "x"]), children),
                              max_leaves=20).map(json.dumps)))
def test_parse_event_fuzz_only_raises_protocol_error(line):
    try:
        event = parse_event(line)
    except ProtocolError:
        return
    assert isinstance(event, dict) and isinstance(event["event"], str)


@settings(max_examples=1000, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(
                        st.sampled_from(["kind", "model", "input", "output", "mix", "path", "frames",
                                         "style", "content", "out", "steps", "minutes", "tile"]),
                        children, max_size=6), max_leaves=25))
def test_job_from_dict_fuzz_only_raises_protocol_error(data):
    try:
        job_from_dict(data)
    except ProtocolError:
        pass


def _worker(args, stdin=""):
    return subprocess.run([sys.executable, "-m", "gan", "worker", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_worker_reports_a_bad_job_as_one_error_event(tmp_path):
    job = tmp_path / "job.json"
    job.write_text('{"kind": "stylize", "model": "m", "input": "a.mp4", "output": "o", "mix": 7}')
    result = _worker([str(job)])
    assert result.returncode == 1
    events = [parse_event(line) for line in result.stdout.splitlines()]
    assert events == [{"event": "error", "message": "mix must be between 0 and 1"}]
    for args, stdin in (([str(tmp_path / "missing.json")], ""), (["-"], "not json\n")):
        result = _worker(args, stdin)
        assert result.returncode == 1
        assert parse_event(result.stdout.strip())["event"] == "error"
