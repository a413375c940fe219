"""Install Dependencies: a private virtual environment for the worker, with torch, NumPy, OpenCV.

No bpy here: the steps are plain subprocesses (`python -m venv`, `python -m pip install`) run
one after the other on a thread, so Blender keeps drawing; the preferences poll `Installer`'s
fields with a timer. Cancel stops the running subprocess (its whole process group).

The environment lives in the data folder (`storage.data_dir`), never in the extension, so
updating or removing the extension keeps it. It is made from Blender's own Python (a venv needs
a base interpreter of the same version), one per Python version: Blender versions that share a
Python share it, and a Blender whose Python moved on gets a new one.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from ..gan import fileio

TORCH_INDEX = "https://download.pytorch.org/whl/"
# (identifier, label, description, PyTorch wheel index or None for PyPI)
BUILDS = {
    "CUDA": ("NVIDIA (CUDA)", "torch for NVIDIA GPUs (CUDA 12.8 build; needs a recent driver)",
             TORCH_INDEX + "cu128"),
    "CPU": ("CPU only", "The small torch without GPU support (any computer)", TORCH_INDEX + "cpu"),
    "APPLE": ("Apple (Metal)", "torch for macOS: Apple GPUs through Metal (MPS), and the CPU",
              None),
}
TORCH_REQUIREMENT = "torch>=2.4"  # bf16 detection and weights-only loading as the engine uses
MARKER = "gan_style_env.json"     # what was installed, written when the install succeeded


def builds_for(platform: str = sys.platform) -> list[str]:
    """The torch builds that exist for a platform: PyPI's macOS torch already has Metal; on
    Windows and Linux the CPU and CUDA builds come from PyTorch's own wheel index (on Windows
    a plain `pip install torch` is CPU-only, on Linux it is a multi-gigabyte CUDA build)."""
    return ["APPLE"] if platform == "darwin" else ["CUDA", "CPU"]


def has_nvidia_gpu() -> bool:
    """An NVIDIA driver is installed (it brings nvidia-smi): offer the CUDA build first."""
    return shutil.which("nvidia-smi") is not None


def default_build(platform: str = sys.platform) -> str:
    if platform == "darwin":
        return "APPLE"
    return "CUDA" if has_nvidia_gpu() else "CPU"


def requirements(version: tuple[int, int]) -> list[str]:
    """NumPy and OpenCV pins for the Python `version` of the environment.

    Up to Python 3.12: NumPy 1.26 and the last OpenCV built for it (4.11; every 4.12+ needs
    NumPy 2) - the pair the engine is tested with, as in Blender 4.2-5.0's own Python. From 3.13
    on NumPy 1.x has no wheels, so NumPy 2 and an OpenCV built for it.
    """
    if tuple(version) < (3, 13):
        return ["numpy<2", "opencv-python-headless<4.12"]
    return ["numpy>=2", "opencv-python-headless>=4.12"]


def env_python(env_dir: str) -> str:
    if os.name == "nt":
        return os.path.join(env_dir, "Scripts", "python.exe")
    return os.path.join(env_dir, "bin", "python")


@dataclass
class Plan:
    """Everything an installation does: what `commands()` lists and `Installer` runs."""
    base_python: str               # makes the environment (Blender's Python)
    env_dir: str
    build: str                     # a BUILDS key
    version: tuple[int, int]       # the base Python's (major, minor)
    wheel_dir: str = ""            # install only from this folder (no network)
    torch: str = TORCH_REQUIREMENT

    @property
    def python(self) -> str:
        return env_python(self.env_dir)

    def _source(self, index: str | None) -> list[str]:
        if self.wheel_dir:
            return ["--no-index", "--find-links", self.wheel_dir]
        return ["--index-url", index] if index else []

    def steps(self) -> list[tuple[str, list[str], float]]:
        """(what the user reads, command, share of the progress bar)."""
        pip = [self.python, "-m", "pip", "install", "--disable-pip-version-check",
               "--progress-bar", "off"]
        return [
            ("Creating the environment", [self.base_python, "-m", "venv", self.env_dir], 0.1),
            ("Installing torch", pip + [self.torch] + self._source(BUILDS[self.build][2]), 0.7),
            ("Installing NumPy and OpenCV", pip + requirements(self.version)
             + self._source(None), 0.2),
        ]

    def command_text(self) -> str:
        """The same installation as one line a user can paste into a terminal."""
        quote = _quote_windows if os.name == "nt" else shlex.quote
        lines = [" ".join(quote(part) for part in command) for _label, command, _w in
                 self.steps()]
        return " && ".join(lines)


def _quote_windows(part: str) -> str:
    return f'"{part}"' if any(c in part for c in ' <>&|^"') else part


RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"


@dataclass
class Installer:
    """Runs a Plan on a thread. Read `state`, `fraction`, `status`, `message` from any thread."""
    plan: Plan
    state: str = RUNNING
    fraction: float = 0.0
    status: str = "Starting"
    message: str = ""
    log: list[str] = field(default_factory=list)
    _process: subprocess.Popen | None = None
    _cancel: bool = False
    _thread: threading.Thread | None = None

    def start(self) -> "Installer":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> str:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state

    @property
    def active(self) -> bool:
        return self.state == RUNNING

    def cancel(self) -> None:
        """Stop now: the running pip or venv is terminated (what it finished stays)."""
        self._cancel = True
        process = self._process
        if process is not None and process.poll() is None:
            _terminate(process)

    def _run(self) -> None:
        try:
            done = 0.0
            for label, command, weight in self.plan.steps():
                if self._cancel:
                    break
                if command[1:3] == ["-m", "venv"] and _usable(self.plan.python):
                    done += weight  # the environment exists: pip adds what is missing
                    continue
                self.status = label
                self._call(command, done, weight)
                done += weight
                self.fraction = done
            if self._cancel:
                self._finish(CANCELLED, "Installation cancelled; Install again continues it")
                return
            self._write_marker()
            self._finish(DONE, f"Installed torch, NumPy and OpenCV in {self.plan.env_dir}")
        except _StepFailed as exc:
            if self._cancel:
                self._finish(CANCELLED, "Installation cancelled; Install again continues it")
            else:
                self._finish(FAILED, str(exc))
        except OSError as exc:
            self._finish(FAILED, f"Cannot run {exc.filename or 'the installer'}: "
                                 f"{exc.strerror or exc}")

    def _call(self, command: list[str], start: float, weight: float) -> None:
        kwargs = {"start_new_session": True} if os.name == "posix" else {
            "creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
        env.pop("PYTHONPATH", None)  # Blender's own paths must not leak into the environment
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, encoding="utf-8", errors="replace", env=env, **kwargs)
        packages = 0
        for line in self._process.stdout:
            line = line.rstrip()
            if not line:
                continue
            self.log.append(line)
            del self.log[:-200]
            if line.startswith(("Collecting", "Downloading", "Processing", "Installing",
                                "Successfully")):
                self.status = line[:120]
                packages += line.startswith("Collecting") or line.startswith("Processing")
                # pip prints no overall fraction: creep towards the end of the step
                self.fraction = start + weight * (1 - 0.8 ** packages) * 0.9
        code = self._process.wait()
        self._process = None
        if code != 0:
            last = next((line for line in reversed(self.log) if line.startswith("ERROR")),
                        self.log[-1] if self.log else f"exit code {code}")
            raise _StepFailed(f"{self.status} failed: {last[:300]}")

    def _write_marker(self) -> None:
        data = {"build": self.plan.build, "torch": self.plan.torch,
                "requirements": requirements(self.plan.version),
                "wheel_dir": self.plan.wheel_dir, "base_python": self.plan.base_python,
                "installed": time.strftime("%Y-%m-%d %H:%M:%S")}
        payload = json.dumps(data, indent=1).encode("utf-8")
        fileio.atomic_write(os.path.join(self.plan.env_dir, MARKER),
                            lambda out: out.write(payload), overwrite=True)

    def _finish(self, state: str, message: str) -> None:
        self.message = message
        if state == DONE:
            self.fraction = 1.0
        self.status = message
        self.state = state


class _StepFailed(Exception):
    pass


def _usable(python: str) -> bool:
    """The environment's Python runs and has pip (a half-made one is made again)."""
    if not os.path.isfile(python):
        return False
    try:
        return subprocess.run([python, "-c", "import pip"], capture_output=True,
                               timeout=60, stdin=subprocess.DEVNULL).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _terminate(process: subprocess.Popen) -> None:
    try:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.terminate()
        process.wait(10)
    except (OSError, subprocess.TimeoutExpired):
        try:
            if os.name == "posix":
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        except OSError:
            pass


def installed(env_dir: str) -> dict:
    """The marker of a finished installation ({} when there is none)."""
    try:
        with open(os.path.join(env_dir, MARKER), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}
