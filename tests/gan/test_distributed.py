"""Training on several processes: the real `python -m gan train` under PyTorch's own launcher
(torchrun, `python -m torch.distributed.run`), two processes on the CPU with the gloo backend.
Media are tiny clips and stills made here with OpenCV; one torch thread per process."""

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import pytest
import torch

from gan import models
from gan.stylefile import load_style, read_style_info
from gan.train import CHECKPOINT_NAME, load_checkpoint
from test_train import footage_frame, grade, write_clip

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# PYTHONFAULTHANDLER: a process that dies in C++ shows its Python stack in the failure
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT, "PYTHONFAULTHANDLER": "1"}
for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
    ENV.pop(name, None)  # a test run under a launcher must not make the plain runs distributed
TIMEOUT = 240  # seconds; a hang fails the test instead of the test run
pytestmark = pytest.mark.slow  # launchers and processes: about a minute in all


def launcher(processes: int) -> list[str]:
    # --standalone: a rendezvous on localhost at a free port (tests may run side by side)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={processes}", "-m", "gan"]


def run(command: list[str], *args) -> subprocess.CompletedProcess:
    return subprocess.run([*command, *map(str, args)], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=TIMEOUT)


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def named(all_events: list[dict], name: str) -> list[dict]:
    return [e for e in all_events if e["event"] == name]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    footage = write_clip(folder / "footage.avi", [footage_frame(i, seed=1) for i in range(12)])
    style_clip = write_clip(folder / "graded.avi",
                            [grade(footage_frame(i, seed=2)) for i in range(12)])
    painting = folder / "painting.png"  # a still: rank 0 paints keyframes, all learn from them
    cv2.imwrite(str(painting), cv2.cvtColor(grade(footage_frame(0, seed=5)), cv2.COLOR_RGB2BGR))
    return {"footage": footage, "clip": style_clip, "painting": str(painting)}


def train_args(media, out, *more):
    return ["train", "--style", media["clip"], "--content", media["footage"], "--out", out,
            "--crop", 32, "--batch", 2, "--seed", 0, "--json", *more]


@pytest.fixture(scope="module")
def two_processes(media, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("two") / "painted.ganstyle")
    result = run(launcher(2), *train_args(media, out, "--steps", 4))
    assert result.returncode == 0, result.stderr[-3000:]
    return out, events(result.stdout)


def weights(path):
    return load_style(path)[1]


def test_two_processes_write_one_loadable_style(two_processes, media):
    out, seen = two_processes
    # rank 0 alone reports: one start, one done, no error or cancel from rank 1
    assert len(named(seen, "start")) == 1 and named(seen, "start")[0]["processes"] == 2
    assert [e["output"] for e in named(seen, "done")] == [out]
    assert not named(seen, "error") and not named(seen, "cancelled")
    assert not [e for e in named(seen, "log") if "differ" in e["message"]]  # one model trained
    assert named(seen, "progress")[-1]["done"] == 4
    info = read_style_info(out)
    assert info.meta["steps"] == 4 and info.meta["settings"]["processes"] == 2
    assert info.meta["sources"] == ["graded.avi"]
    assert info.meta["settings"]["batch"] == 2 and info.thumbnail_png.startswith(b"\x89PNG")
    gen, _ = models.load_generator(out, torch.device("cpu"), torch.float32)
    with torch.no_grad():
        y = gen(torch.rand(1, 3, 48, 64))
    assert y.shape == (1, 3, 48, 64) and torch.isfinite(y).all()
    # one work folder, written by rank 0: one checkpoint, no leftovers
    work = out + ".work"
    state = load_checkpoint(os.path.join(work, CHECKPOINT_NAME))
    assert state["step"] == 4 and int(state["ema"]["n_averaged"]) == 4
    files = sorted(os.listdir(work))
    assert files.count(CHECKPOINT_NAME) == 1 and not [f for f in files if f.startswith(".")]


def test_two_processes_learn_from_both_and_one_launched_process_is_the_plain_run(
        two_processes, media, tmp_path):
    """Rank 0 draws what one process draws: torchrun with one process gives the plain run's
    weights bit for bit. With two, rank 1's crops (other seeds) count in every step: the
    weights differ from the plain run's."""
    plain = str(tmp_path / "plain.ganstyle")
    result = run([sys.executable, "-m", "gan"], *train_args(media, plain, "--steps", 4))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "processes" not in read_style_info(plain).meta["settings"]
    one = str(tmp_path / "one.ganstyle")
    result = run(launcher(1), *train_args(media, one, "--steps", 4))
    assert result.returncode == 0, result.stderr[-3000:]
    plain_w, one_w, two_w = weights(plain), weights(one), weights(two_processes[0])
    assert plain_w.keys() == one_w.keys() == two_w.keys()
    assert all(torch.equal(plain_w[k], one_w[k]) for k in plain_w)
    assert not all(torch.equal(plain_w[k], two_w[k]) for k in plain_w)


def test_two_processes_resume_from_the_checkpoint(two_processes, media, tmp_path):
    first, _ = two_processes
    out = str(tmp_path / "more.ganstyle")
    result = run(launcher(2), *train_args(media, out, "--steps", 7, "--resume",
                                          "--work-dir", first + ".work"))
    assert result.returncode == 0, result.stderr[-3000:]
    seen = events(result.stdout)
    assert named(seen, "start")[0]["step"] == 4
    assert not [e for e in named(seen, "log") if "differ" in e["message"]]
    assert named(seen, "progress")[0]["done"] == 5
    assert read_style_info(out).meta["steps"] == 7
    state = load_checkpoint(os.path.join(first + ".work", CHECKPOINT_NAME))
    assert state["step"] == 7
    assert int(state["opt_g"]["state"][0]["step"]) == 7  # the optimizer went on, too
    assert int(state["ema"]["n_averaged"]) == 7


def test_a_still_style_is_painted_by_rank_zero_and_learned_by_all(media, tmp_path):
    """A still style: rank 0 paints the footage keyframe with its patches and sends it to the
    other ranks, which learn from the same pairs with their own crops."""
    out = str(tmp_path / "still.ganstyle")
    # one keyframe painted with small strokes: the painting route, in seconds
    result = run(launcher(2), "train", "--style", media["painting"], "--content",
                 media["footage"], "--out", out, "--auto-keyframes", 1, "--stroke-scale", 0.25,
                 "--crop", 32, "--batch", 2, "--steps", 2, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    logs = [e["message"] for e in named(events(result.stdout), "log")]
    assert logs.count("painting keyframe 1 of 1 with the style's patches") == 1
    assert not [m for m in logs if "differ" in m]
    assert os.listdir(os.path.join(out + ".work", "auto_keyframes")) == ["source0_frame000000.png"]
    info = read_style_info(out)
    assert info.meta["steps"] == 2 and info.arch.get("full_band")  # learned as painted pairs


def test_a_refusal_on_rank_zero_stops_every_process(media, tmp_path):
    out = str(tmp_path / "nothing.ganstyle")
    started = time.monotonic()
    result = run(launcher(2), *train_args(media, out, "--steps", 4, "--resume"))
    assert result.returncode != 0
    errors = named(events(result.stdout), "error")
    assert [e["message"] for e in errors] == [
        f"nothing to resume: no checkpoint in {out}.work"]  # rank 1 stops quietly
    # torchrun's failure summary shows that line (its error file), not a link to its docs
    assert f"traceback : nothing to resume: no checkpoint in {out}.work" in result.stderr
    assert time.monotonic() - started < TIMEOUT / 2
    assert not os.path.exists(out)


def _worker_of_rank(launcher_pid: int, rank: int) -> int:
    """The pid of torchrun's worker process with this RANK."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            if parent != launcher_pid:
                continue
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if f"RANK={rank}".encode() in handle.read().split(b"\0"):
                    return int(entry)
        except (OSError, ValueError, IndexError):
            continue
    raise AssertionError(f"no worker of rank {rank} under pid {launcher_pid}")


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds torchrun's workers in /proc")
def test_a_crashed_process_fails_the_command_and_keeps_the_work(media, tmp_path):
    """Rank 1 dies (SIGKILL, as the out-of-memory killer does) in the middle of training: the
    command ends non-zero at once with one clear line, and rank 0 keeps a resumable
    checkpoint."""
    out = str(tmp_path / "crash.ganstyle")
    args = ["train", "--style", media["clip"], "--content", media["footage"], "--out", out,
            "--crop", 32, "--batch", 2, "--steps", 100000, "--json"]
    process = subprocess.Popen([*launcher(2), *map(str, args)], cwd=ROOT, env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # a failed test ends all its processes
    try:
        seen = []
        for line in process.stdout:  # until training has made a step
            seen += events(line)
            if named(seen, "progress"):
                break
        assert named(seen, "progress"), process.stderr.read()[-3000:]
        os.kill(_worker_of_rank(process.pid, 1), signal.SIGKILL)
        rest, stderr = process.communicate(timeout=TIMEOUT / 2)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode != 0
    errors = named(events(rest), "error")
    assert len(errors) == 1, (rest, stderr[-3000:])
    message = errors[0]["message"]
    assert message.startswith("training stopped at step ") and "lost contact" in message
    assert f"the checkpoint in {out}.work keeps the work: resume to continue" in message
    step = int(message.split()[4].rstrip(":"))
    assert step >= 1 and load_checkpoint(os.path.join(out + ".work", CHECKPOINT_NAME))["step"] == step
    assert not os.path.exists(out)
