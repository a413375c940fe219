"""`python -m gan ...` end to end, as scripts and farms use it: real processes, real files."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from gan.protocol import parse_event

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def gan(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "gan", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def _clip(path, frames=12, size=(72, 56), seed=0):
    """A lossless-enough MJPG clip with moving shapes."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 24, size)
    base = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), np.uint8)
    for i in range(frames):
        frame = cv2.resize(base, size, interpolation=cv2.INTER_NEAREST)
        cv2.circle(frame, (10 + 4 * i, size[1] // 2), 9, (255, 255, 255), -1)
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    style = tmp / "style.png"
    cv2.imwrite(str(style), np.dstack([np.full((64, 64), v, np.uint8) for v in (30, 90, 220)]))
    footage = _clip(tmp / "footage.avi")
    model = tmp / "tiny.ganstyle"
    result = gan("train", "--style", style, "--content", footage, "--out", model,
                 "--steps", 6, "--json", "--name", "Tiny")
    assert result.returncode == 0, result.stderr + result.stdout
    events = [parse_event(line) for line in result.stdout.splitlines()]
    assert events[0]["event"] == "start" and events[-1] == {"event": "done", "output": str(model)}
    return tmp, model, footage


def test_info_shows_metadata(trained):
    _, model, _ = trained
    result = gan("info", model, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["name"] == "Tiny" and info["meta"]["preset"] == "draft" and info["thumbnail"]
    text = gan("info", model).stdout
    assert "name:       Tiny" in text


@pytest.mark.parametrize("args", [["info", "{model}"], ["info", "{model}", "--json"],
                                  ["check-frames", "--output", "{tmp}", "--frames", "0"]])
def test_a_reader_that_leaves_gets_no_traceback(trained, tmp_path, args):
    """`python -m gan info X | head -1`: when the reader closes the pipe, the command exits
    quietly (1, as Python's docs advise), without a BrokenPipeError traceback. The reading end
    is closed before the command writes, so that the pipe is broken on every run. (argparse's
    --help already ignores a closed stdout.)"""
    _, model, _ = trained
    (tmp_path / "frame_000000.png").write_bytes(b"")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "gan", *[a.format(model=model, tmp=tmp_path) for a in args]],
            cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert result.stderr == "" and result.returncode == 1, result


def test_stylize_frame_range_and_mix_zero(trained):
    tmp, model, footage = trained
    out = tmp / "mix0"
    result = gan("stylize", "--model", model, "--input", footage, "--output", out,
                 "--frames", "3-5", "--mix", 0)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ["frame_000003.png", "frame_000004.png", "frame_000005.png"]
    capture = cv2.VideoCapture(str(footage))
    decoded = [capture.read()[1] for _ in range(6)]
    for index in (3, 4, 5):
        written = cv2.imread(str(out / f"frame_{index:06d}.png"))
        assert np.array_equal(written, decoded[index])


def test_stylize_with_a_stroke_scale(trained):
    """Stroke scale 2 gives frames of the source's size that differ from scale 1's (the
    texture path ran on a half-size frame)."""
    tmp, model, footage = trained
    plain, scaled = tmp / "scale1", tmp / "scale2"
    for out, scale in ((plain, 1), (scaled, 2)):
        result = gan("stylize", "--model", model, "--input", footage, "--output", out,
                     "--frames", "4", "--stroke-scale", scale)
        assert result.returncode == 0, result.stderr
    one = cv2.imread(str(plain / "frame_000004.png"))
    two = cv2.imread(str(scaled / "frame_000004.png"))
    assert one.shape == two.shape == (56, 72, 3)
    assert not np.array_equal(one, two)


def test_stylize_json_events_and_no_overwrite(trained):
    tmp, model, footage = trained
    out = tmp / "styled"
    result = gan("stylize", "--model", model, "--input", footage, "--output", out, "--json")
    assert result.returncode == 0, result.stderr
    events = [parse_event(line) for line in result.stdout.splitlines()]
    assert events[-1]["event"] == "done" and events[-1]["files"] == 12
    before = (out / "frame_000000.png").read_bytes()
    again = gan("stylize", "--model", model, "--input", footage, "--output", out)
    assert again.returncode == 1
    assert again.stderr.strip().count("\n") == 0 and "exist" in again.stderr
    assert (out / "frame_000000.png").read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (["stylize", "--model", "{tmp}/missing.ganstyle", "--input", "{tmp}/x.avi",
      "--output", "{tmp}/o"], "not found"),
    (["stylize", "--model", "{model}", "--input", "{tmp}/x.avi", "--output", "{tmp}/o"], "x.avi"),
    (["stylize", "--model", "{model}", "--input", "{footage}", "--output", "{tmp}/o",
      "--mix", "2"], "mix"),
    (["stylize", "--model", "{model}", "--input", "{footage}", "--output", "{tmp}/o",
      "--frames", "2-x"], "2-x"),
    (["stylize", "--model", "{model}", "--input", "{footage}", "--output", "{tmp}/o",
      "--frames", "10-40"], "frame 12"),
    (["train", "--style", "{tmp}/nope.png", "--content", "{footage}", "--out",
      "{tmp}/o.ganstyle", "--steps", "2"], "nope.png"),
    (["train", "--style", "{footage}", "--content", "{footage}", "--out", "{model}",
      "--steps", "2"], "exist"),
    (["info", "{tmp}/missing.ganstyle"], "not found"),
    (["stylize", "--model", "{model}", "--input", "{footage}", "--output", "{tmp}/o",
      "--stroke-scale", "9"], "stroke_scale must be between 0.25 and 4"),
    (["train", "--style", "{footage}", "--content", "{footage}", "--out", "{tmp}/o.ganstyle",
      "--steps", "2", "--stroke-scale", "0"], "stroke_scale must be between 0.25 and 4"),
    (["train", "--style", "{footage}", "--content", "{footage}", "--out", "{tmp}/o.ganstyle",
      "--steps", "2", "--auto-keyframes", "-1"], "auto_keyframes must be between 0 and 32"),
])
def test_bad_input_gives_one_line_and_nonzero_exit(trained, tmp_path, args, message):
    _, model, footage = trained
    args = [a.format(tmp=tmp_path, model=model, footage=footage) for a in args]
    result = gan(*args)
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.ganstyle").exists()


def test_bad_arguments_exit_2_with_one_line():
    for args in (["stylize"], ["train", "--style", "a", "--content", "b", "--out", "c",
                               "--preset", "huge"], ["dance"]):
        result = gan(*args)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_help_for_every_command():
    for command in ("train", "stylize", "info", "worker"):
        result = gan(command, "--help")
        assert result.returncode == 0 and "usage:" in result.stdout
