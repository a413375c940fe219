"""Does the worker Python have what the style engine needs (torch, OpenCV, NumPy)?

The check runs `<python> -c ...` in a subprocess (Blender's process never imports torch), on a
thread so the panel never waits, and is cached per interpreter. The result names what is
missing and the exact pip command for that interpreter - never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass, field

import bpy

# import name -> pip requirement. OpenCV 4.12+ needs NumPy 2, which Blender's own Python
# (NumPy 1.x) must keep: ask for the last OpenCV that works with NumPy 1.
REQUIREMENTS = {"torch": "torch", "cv2": "opencv-python-headless<4.12", "numpy": "numpy<2"}
CHECK_TIMEOUT_S = 120.0

_CHECK_CODE = """
import importlib, json, sys
missing = {}
for name in %r:
    try:
        importlib.import_module(name)
    except Exception as exc:
        missing[name] = type(exc).__name__ + ": " + str(exc).splitlines()[0][:200]
print(json.dumps({"missing": missing, "version": sys.version.split()[0]}))
""" % (tuple(REQUIREMENTS),)


@dataclass
class DepStatus:
    python: str
    checking: bool = False
    ok: bool = False
    missing: dict[str, str] = field(default_factory=dict)  # module -> why
    python_version: str = ""
    error: str = ""  # the interpreter itself could not be run

    @property
    def summary(self) -> str:
        if self.checking:
            return "Checking the worker Python..."
        if self.error:
            return self.error
        if self.ok:
            return f"Worker Python {self.python_version}: torch, OpenCV and NumPy found"
        return f"Missing in the worker Python: {', '.join(self.missing)}"

    @property
    def hint(self) -> str:
        return install_hint(self.python, list(self.missing)) if self.missing else ""


_cache: dict[str, DepStatus] = {}
_lock = threading.Lock()


def pip_command(python: str, modules: list[str]) -> str:
    packages = " ".join(f'"{REQUIREMENTS.get(m, m)}"' for m in modules)
    return f'"{python}" -m pip install {packages}'


def install_hint(python: str, modules: list[str]) -> str:
    return (f"Install with: {pip_command(python, modules)} "
            "(for an NVIDIA GPU take the CUDA build of torch from pytorch.org), "
            "or choose another worker Python in the add-on preferences")


def run_check(python: str) -> DepStatus:
    """Check now, in this thread (may take seconds: importing torch)."""
    status = DepStatus(python)
    try:
        done = subprocess.run([python, "-c", _CHECK_CODE], capture_output=True, text=True,
                              timeout=CHECK_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        status.error = f"Worker Python not found: {python}"
        return status
    except PermissionError:
        status.error = f"Worker Python is not executable: {python}"
        return status
    except OSError as exc:
        status.error = f"Cannot run the worker Python {python}: {exc.strerror or exc}"
        return status
    except subprocess.TimeoutExpired:
        status.error = f"The worker Python did not answer within {CHECK_TIMEOUT_S:.0f} s: {python}"
        return status
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        status.missing = dict(answer["missing"])
        status.python_version = str(answer["version"])
    except (ValueError, IndexError, KeyError, TypeError):
        status.error = f"{python} is not a usable Python interpreter"
        return status
    status.ok = not status.missing
    return status


def check(python: str, refresh: bool = False) -> DepStatus:
    """The cached result, checking now if there is none (blocking)."""
    with _lock:
        cached = _cache.get(python)
    if cached is not None and not cached.checking and not refresh:
        return cached
    status = run_check(python)
    with _lock:
        _cache[python] = status
    return status


def check_async(python: str, refresh: bool = False) -> DepStatus:
    """The cached result, or a 'checking' status while a thread checks (for panels)."""
    with _lock:
        cached = _cache.get(python)
        if cached is not None and (cached.checking or not refresh):
            return cached
        pending = DepStatus(python, checking=True)
        _cache[python] = pending

    def work():
        status = run_check(python)
        with _lock:
            _cache[python] = status

    threading.Thread(target=work, daemon=True).start()
    return pending


def explain(message: str, python: str) -> str:
    """Turn a worker's "No module named 'x'" into what to install."""
    if "No module named" not in message:
        return message
    module = message.rsplit("No module named", 1)[1].strip().strip("'\"").split("'")[0]
    top = module.split(".")[0]
    if top == "gan":  # part of the add-on itself: a broken installation, not a dependency
        return message
    return f"The worker Python lacks the module '{top}'. {install_hint(python, [top])}"


def cached(python: str) -> DepStatus | None:
    with _lock:
        return _cache.get(python)


def clear() -> None:
    with _lock:
        _cache.clear()


# -- the preferences' button ------------------------------------------------------------------


class SEQUENCER_OT_gan_style_check_dependencies(bpy.types.Operator):
    """Check again whether the worker Python has torch, OpenCV and NumPy"""
    bl_idname = "sequencer.gan_style_check_dependencies"
    bl_label = "Check Dependencies"
    bl_options = {'INTERNAL'}

    def execute(self, context):
        from .storage import worker_python
        status = check(worker_python(context), refresh=True)
        if status.ok:
            self.report({'INFO'}, status.summary)
        else:
            self.report({'WARNING'}, f"{status.summary}. {status.hint}".strip(". "))
        return {'FINISHED'}


classes = (SEQUENCER_OT_gan_style_check_dependencies,)
