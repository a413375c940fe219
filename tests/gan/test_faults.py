"""Faults on the worker side: SIGKILL at random moments, a full disk, an unwritable output
folder, and a parent that goes away. Real `python -m gan worker JOB.json` processes, real
files, real limits (RLIMIT_FSIZE), no mocks.

After every case: source media are byte-for-byte unchanged, no existing output file was
replaced, nothing half-written sits under a final name (every frame decodes, every checkpoint
and style file loads), and no temporary files are left behind.

Kill moments are random; a failure message shows the delays used.
"""

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from gan.protocol import (CancelToken, Reporter, SourceSpec, StylizeJob, TrainJob, UserError,
                          job_to_dict, parse_event)
from gan.stylefile import load_style
from gan.train import CHECKPOINT_NAME, load_checkpoint, train
from test_inputs import (ROOT, WORKER_ENV, assert_failed_cleanly, assert_one_line,
                         check_output_folder, digest, picture, read_image, run_worker,
                         save_tiny_model, start_worker, write_clip, write_image)

STEPS = 60


class Worker:
    """A worker process whose events are read as they come."""

    def __init__(self, job, folder, **popen):
        self.process = start_worker(job, folder, **popen)
        self.events = []
        self._new = threading.Condition()
        self.stderr = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.append(self.process.stderr.read()),
                         daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            with self._new:
                self.events.append(parse_event(line))
                self._new.notify_all()
        with self._new:
            self.events.append(None)  # end of output
            self._new.notify_all()

    def wait_for(self, name, timeout=120, after=0):
        """The first event `name` after the first `after` events (None if the worker ended)."""
        deadline = time.monotonic() + timeout
        with self._new:
            while True:
                for event in self.events[after:]:
                    if event is None:
                        return None
                    if event["event"] == name:
                        return event
                if time.monotonic() > deadline:
                    raise AssertionError(f"no {name!r} event within {timeout} s: {self.events}")
                self._new.wait(0.5)

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        return self.finish()

    def finish(self, timeout=180):
        code = self.process.wait(timeout=timeout)
        with self._new:
            while not self.events or self.events[-1] is not None:
                self._new.wait(1)
        self.process.stdin.close()
        return code


def train_job(clips, out, **settings):
    content, style = clips
    fields = dict(style=[SourceSpec(style)], content=[SourceSpec(content)], out=str(out),
                  steps=STEPS, crop=32, batch=1, checkpoint_every_s=0.05, preview_every_s=1.0)
    fields.update(settings)
    return TrainJob(**fields)


def check_work_dir(work):
    """Only finished files: the checkpoint loads, previews decode, nothing temporary.
    Returns the checkpoint's step (None without a checkpoint)."""
    names = sorted(os.listdir(work)) if os.path.isdir(work) else []
    for name in names:
        assert not name.startswith(".") and not name.endswith(".tmp"), f"debris: {name}"
        assert name == CHECKPOINT_NAME or (name.endswith(".png") and read_image(
            os.path.join(work, name)).size), name
    if CHECKPOINT_NAME not in names:
        return None
    return int(load_checkpoint(os.path.join(work, CHECKPOINT_NAME))["step"])


def no_debris(folder):
    return [n for n in os.listdir(folder) if n.startswith(".") or n.endswith(".tmp")]


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def clips(place):
    return (write_clip(place / "footage ü.avi", 10, (48, 40)),
            write_clip(place / "style ✓.avi", 10, (48, 40), start=50))


@pytest.fixture(scope="module")
def model(place):
    return save_tiny_model(place / "models" / "tiny.ganstyle")


# -- SIGKILL during training ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def killed_training(place, clips):
    """Train, SIGKILL the worker at random moments, resume each time with a new worker, and
    finally let one finish. Returns what happened at each stage."""
    rng = random.Random()
    folder = place / "killed"
    folder.mkdir()
    out = folder / "style ü.ganstyle"
    work = str(out) + ".work"
    sources = digest(clips)
    stages = []
    plans = [("checkpoint", rng.uniform(0.0, 0.6)),   # fresh run, soon after its first save
             ("start", rng.uniform(0.2, 1.5)),        # resumed, somewhere in its steps
             ("checkpoint", rng.uniform(0.0, 0.08)),  # resumed, most likely during a save
             (None, None)]                            # resumed, runs to the end
    for trigger, delay in plans:
        before = check_work_dir(work)
        worker = Worker(train_job(clips, out, resume=before is not None), folder)
        start = worker.wait_for("start")
        assert start is not None, (worker.events, worker.stderr, [(s["trigger"], s["delay"], s["code"], s["start_step"], s["after"], [e and e["event"] for e in s["events"]][-4:]) for s in stages])
        if trigger is None:
            code = worker.finish()
        else:
            if trigger != "start":
                assert worker.wait_for(trigger, after=1) is not None, worker.events
            time.sleep(delay)
            code = worker.kill()
        stages.append(dict(trigger=trigger, delay=delay, code=code, resumed_from=before,
                           start_step=start.get("step"), events=worker.events,
                           stderr=worker.stderr, after=check_work_dir(work),
                           style_exists=os.path.exists(out)))
        assert digest(clips) == sources
    return dict(out=str(out), work=work, stages=stages)


def test_training_killed_at_random_moments_resumes_and_finishes(killed_training):
    stages = killed_training["stages"]
    trace = [(s["trigger"], s["delay"], s["code"], s["resumed_from"], s["start_step"], s["after"])
             for s in stages]
    for stage in stages[:-1]:
        assert stage["code"] == -signal.SIGKILL, trace
        assert not stage["style_exists"], trace  # killed long before the end
        saved = [e["step"] for e in stage["events"] if e and e["event"] == "checkpoint"]
        if saved:  # the checkpoint on disk is the last one announced, or a newer complete one
            assert stage["after"] is not None and stage["after"] >= saved[-1], trace
    for stage in stages:  # each new worker continued from the checkpoint the last one left
        assert stage["start_step"] == (stage["resumed_from"] or 0), trace
    last = stages[-1]
    assert last["code"] == 0, (trace, last["events"][-3:], last["stderr"])
    assert last["events"][-2] == {"event": "done", "output": killed_training["out"]}
    assert last["after"] == STEPS
    info, tensors = load_style(killed_training["out"])
    assert info.meta["steps"] == STEPS and tensors
    assert stages[0]["resumed_from"] is None and stages[1]["resumed_from"] is not None, trace


# -- SIGKILL during stylizing ------------------------------------------------------------------------

def test_stylize_killed_leaves_only_complete_frames_and_a_rerun_works(model, place, tmp_path):
    rng = random.Random()
    clip = write_clip(tmp_path / "long clip.avi", 60, (320, 180))
    sources = digest([clip, model])
    out = tmp_path / "out"
    wanted = rng.randint(1, 30)
    worker = Worker(StylizeJob(model=model, input=SourceSpec(clip), output=str(out)), tmp_path)
    assert worker.wait_for("start") is not None, worker.stderr
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and worker.process.poll() is None:
        if out.exists() and len(os.listdir(out)) >= wanted:
            break
        time.sleep(0.002)
    code = worker.kill()
    names = check_output_folder(out)  # complete and decodable, no temporary files
    # killed mid-clip: the remaining frames cannot all be written between a poll and the kill
    assert code == -signal.SIGKILL and wanted <= len(names) < 60, (wanted, code, len(names))
    kept = digest([out])

    rc, events, err = run_worker(StylizeJob(model=model, input=SourceSpec(clip),
                                            output=str(out)), tmp_path)  # the same folder
    assert_failed_cleanly(rc, events, err, "exists already")
    assert digest([out]) == kept  # nothing replaced

    fresh = tmp_path / "rerun"
    rc, events, err = run_worker(StylizeJob(model=model, input=SourceSpec(clip),
                                            output=str(fresh)), tmp_path)
    assert rc == 0 and events[-1]["files"] == 60, (events[-2:], err[-2000:])
    assert check_output_folder(fresh) == [f"frame_{i:06d}.png" for i in range(60)]
    for name in names:  # the frames the killed job finished are exactly right
        assert np.array_equal(read_image(str(out / name)), read_image(str(fresh / name))), name
    assert digest([clip, model]) == sources


# -- a full disk -----------------------------------------------------------------------------------

def limited(size):
    """preexec_fn: files may not grow past `size` bytes; SIGXFSZ ignored, so a write beyond
    it fails with EFBIG, as on a full disk, instead of killing the process."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return apply


def test_disk_full_while_writing_frames(model, tmp_path):
    """Flat frames compress to small PNGs and fit; the first noisy frame does not: the job
    stops with one line naming that file, and every frame written before it is complete."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(8):
        flat = np.full((90, 160, 3), 40 + 10 * i, np.uint8)
        write_image(folder / f"f{i}.png", flat if i < 5 else picture(i, (160, 90)))
    sources = digest([folder])
    out = tmp_path / "out"
    rc, events, err = run_worker(StylizeJob(model=model, input=SourceSpec(str(folder)),
                                            output=str(out), mix=0.0), tmp_path,
                                 preexec_fn=limited(8000))
    assert_failed_cleanly(rc, events, err, "frame_000005.png", "File too large")
    names = check_output_folder(out)
    assert names == [f"frame_{i:06d}.png" for i in range(5)]
    assert digest([folder]) == sources


def test_disk_full_while_writing_a_checkpoint(killed_training, clips, tmp_path):
    """A resumed run cannot write its next checkpoint: one error line naming it, exit code 1,
    the previous checkpoint untouched and still loadable, no style file, no debris."""
    work = tmp_path / "work"
    shutil.copytree(killed_training["work"], work)
    checkpoint = work / CHECKPOINT_NAME
    kept = digest([checkpoint])
    out = tmp_path / "more.ganstyle"
    job = train_job(clips, out, resume=True, work_dir=str(work), steps=STEPS + 200)
    rc, events, err = run_worker(job, tmp_path, preexec_fn=limited(1 << 20))
    assert_failed_cleanly(rc, events, err, "checkpoint.pt", "File too large")
    assert digest([checkpoint]) == kept and check_work_dir(work) == STEPS
    assert not out.exists() and no_debris(tmp_path) == []


SAVE_STYLE = textwrap.dedent("""
    import resource, signal, sys
    import numpy as np
    from gan.stylefile import StyleFileError, save_style
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100000, 100000))
    try:
        save_style(sys.argv[1], arch={"type": "test"}, meta={"name": "big"},
                   state_dict={"w": np.zeros(200000, np.float32)})
    except StyleFileError as exc:
        print(exc)
        sys.exit(1)
""")


def test_disk_full_while_writing_the_style_file(tmp_path):
    path = tmp_path / "big style.ganstyle"
    result = subprocess.run([sys.executable, "-c", SAVE_STYLE, str(path)], cwd=ROOT,
                            capture_output=True, text=True, env=WORKER_ENV, timeout=120)
    assert result.returncode == 1, result.stderr
    assert_one_line(result.stdout.strip(), "big style.ganstyle", "File too large")
    assert os.listdir(tmp_path) == []  # nothing under the final name, no temporary file


# -- an output folder that cannot be written ---------------------------------------------------------

def unwritable_folders(tmp_path):
    """Folders that refuse new files, also to root (the tests may run as root, for whom
    chmod 0o500 changes nothing): the immutable attribute where the file system has it
    (chattr +i: root cannot create files in such a folder either), and always a folder whose
    parent is a regular file (ENOTDIR for everyone). Yields (path, words in the error)."""
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    yield str(blocker / "out"), ("a file", "Not a directory")
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() != 0:
        locked.chmod(0o500)
        yield str(locked), ("Permission denied",)
        locked.chmod(0o700)
    elif shutil.which("chattr") and subprocess.run(["chattr", "+i", str(locked)],
                                                   capture_output=True).returncode == 0:
        try:
            yield str(locked), ("Operation not permitted",)
        finally:
            subprocess.run(["chattr", "-i", str(locked)], check=True)


def folders_can_be_locked(tmp_path) -> bool:
    """Whether `unwritable_folders` can make its permission case here: as any user but root, or
    as root where the file system has the immutable attribute."""
    if os.geteuid() != 0:
        return True
    probe = tmp_path / "lock probe"
    probe.mkdir()
    if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(probe)],
                                                    capture_output=True).returncode != 0:
        return False
    subprocess.run(["chattr", "-i", str(probe)], check=True)
    return True


def test_output_folder_not_writable(model, clips, tmp_path):
    sources = digest([clips[0], model])
    seen = 0
    for folder, words in unwritable_folders(tmp_path):
        seen += 1
        job = StylizeJob(model=model, input=SourceSpec(clips[0], [0, 1]), output=folder)
        assert_failed_cleanly(*run_worker(job, tmp_path), *words)
        assert not os.path.isdir(folder) or os.listdir(folder) == []
    assert seen == 1 + folders_can_be_locked(tmp_path)  # every case this machine can make
    assert digest([clips[0], model]) == sources


# -- the parent goes away -----------------------------------------------------------------------------

def test_stdin_closing_stops_the_worker_after_a_checkpoint(killed_training, clips, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(killed_training["work"], work)
    job = train_job(clips, tmp_path / "s.ganstyle", resume=True, work_dir=str(work),
                    steps=100000, checkpoint_every_s=3600.0)
    worker = Worker(job, tmp_path)
    assert worker.wait_for("progress") is not None, worker.stderr
    # Stray bytes first: a long line that is not UTF-8 is no command, and must neither stop
    # the job nor break the watcher (nor be kept in memory whole).
    worker.process.stdin.buffer.write(b"\xff\xfe\x00not a command" * 300_000 + b"\n")
    worker.process.stdin.flush()
    time.sleep(1.0)
    assert worker.process.poll() is None, worker.events[-2:]
    worker.process.stdin.close()  # what a crashed or closed Blender looks like to the worker
    code = worker.process.wait(timeout=60)
    assert code == 3, (worker.events[-3:], worker.stderr)
    assert worker.wait_for("cancelled")["output"] == str(work)
    step = check_work_dir(work)
    assert step > STEPS and worker.wait_for("checkpoint")["step"] == step


PARENT = textwrap.dedent("""
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-m", "gan", "worker", sys.argv[1]],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    print(child.pid, flush=True)
    while b'"progress"' not in child.stdout.readline():  # the worker is training
        pass
    print("started", flush=True)
    time.sleep(600)
""")


def test_parent_killed_worker_exits_instead_of_lingering(killed_training, clips, tmp_path):
    """Blender killed (SIGKILL: no chance to cancel): its pipes close, the worker notices,
    saves a checkpoint and exits, with nobody left to read its events."""
    work = tmp_path / "work"
    shutil.copytree(killed_training["work"], work)
    job = train_job(clips, tmp_path / "s.ganstyle", resume=True, work_dir=str(work),
                    steps=100000, checkpoint_every_s=3600.0)
    job_path = tmp_path / "job.json"
    job_path.write_text(json.dumps(job_to_dict(job)))
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(job_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True, env=WORKER_ENV)
    worker_pid = int(parent.stdout.readline())
    assert parent.stdout.readline().strip() == "started"
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _alive(worker_pid):
        time.sleep(0.1)
    assert not _alive(worker_pid), "the worker outlived its parent"
    assert check_work_dir(work) > STEPS  # it saved its work on the way out
    assert no_debris(tmp_path) == []


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_unwritable_style_folder_is_refused_before_training(clips, tmp_path):
    seen = 0
    for folder, words in unwritable_folders(tmp_path):
        seen += 1
        work = tmp_path / f"work{seen}"
        job = train_job(clips, os.path.join(folder, "style.ganstyle"), work_dir=str(work))
        with pytest.raises(UserError) as caught:
            train(job, Reporter(), CancelToken())
        assert any(word in str(caught.value) for word in words), str(caught.value)
        assert not work.exists()  # refused before any training
    assert seen == 1 + folders_can_be_locked(tmp_path)  # every case this machine can make
