"""Does the worker Python have what the style engine needs (torch, OpenCV, NumPy)? And the
private environment that Install Dependencies makes for it (operators/deps.py: the operators).

The check runs `<python> -c ...` in a subprocess (Blender's process never imports torch), on a
thread so the panel never waits, and is cached per interpreter. The result names what is
missing and the exact pip command for that interpreter - never a traceback - and lists the
GPUs that the worker's torch sees (the device choice offers those).
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass, field

from . import installer, storage, worker
from .errors import UserError

# The modules the worker imports (pip names: `requirement`).
REQUIREMENTS = ("torch", "cv2", "numpy")
CHECK_TIMEOUT_S = 120.0

_CHECK_CODE = """
import importlib, json, sys
missing = {}
for name in %r:
    try:
        importlib.import_module(name)
    except Exception as exc:
        missing[name] = type(exc).__name__ + ": " + str(exc).splitlines()[0][:200]
gpus, mps, torch_version = [], False, ""
if "torch" not in missing:
    try:
        import torch
        torch_version = torch.__version__
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                p = torch.cuda.get_device_properties(i)
                gpus.append({"index": i, "name": p.name, "memory": int(p.total_memory)})
        backend = getattr(torch.backends, "mps", None)
        mps = bool(backend and backend.is_available())
    except Exception as exc:
        missing["torch"] = type(exc).__name__ + ": " + str(exc).splitlines()[0][:200]
print(json.dumps({"missing": missing, "version": sys.version.split()[0], "gpus": gpus,
                  "mps": mps, "torch": torch_version}))
""" % (REQUIREMENTS,)


@dataclass
class DepStatus:
    python: str
    checking: bool = False
    ok: bool = False
    missing: dict[str, str] = field(default_factory=dict)  # module -> why
    python_version: str = ""
    error: str = ""  # the interpreter itself could not be run
    gpus: list[dict] = field(default_factory=list)  # CUDA devices: index, name, memory
    mps: bool = False                               # Apple Metal
    torch_version: str = ""

    @property
    def summary(self) -> str:
        if self.checking:
            return "Checking the worker Python..."
        if self.error:
            return self.error
        if self.ok:
            return (f"Worker Python {self.python_version}: torch {self.torch_version}, "
                    "OpenCV and NumPy found")
        return f"Missing in the worker Python: {', '.join(self.missing)}"

    @property
    def hint(self) -> str:
        return install_hint(self.python, list(self.missing)) if self.missing else ""

    @property
    def command(self) -> str:
        """The pip command that installs what is missing into this Python."""
        return pip_command(self.python, list(self.missing), self.python_version)


_cache: dict[str, DepStatus] = {}
_lock = threading.Lock()


def requirement(module: str, version: tuple[int, int] | None = None) -> str:
    """The pip requirement of a module for a Python version (default: Blender's): NumPy and
    OpenCV pins follow the Python (`installer.requirements`)."""
    numpy, opencv = installer.requirements(version or sys.version_info[:2])
    return {"torch": "torch", "cv2": opencv, "numpy": numpy}.get(module, module)


def pip_command(python: str, modules: list[str], version: str = "") -> str:
    """`"<python>" -m pip install ...` for the missing modules; `version`: that Python's."""
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit()) if version else ()
    packages = " ".join(f'"{requirement(m, parts if len(parts) == 2 else None)}"'
                        for m in modules)
    return f'"{python}" -m pip install {packages}'


def install_hint(python: str, modules: list[str]) -> str:
    return ("Press Install Dependencies in the add-on preferences, or install with: "
            f"{pip_command(python, modules)}, or choose another worker Python there")


def run_check(python: str) -> DepStatus:
    """Check now, in this thread (may take seconds: importing torch)."""
    status = DepStatus(python)
    try:
        done = worker.run(python, ["-c", _CHECK_CODE], CHECK_TIMEOUT_S,
                          "Checking the worker Python")
    except UserError as exc:
        status.error = str(exc)
        return status
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        status.missing = dict(answer["missing"])
        status.python_version = str(answer["version"])
        status.gpus = [dict(g) for g in answer.get("gpus", [])]
        status.mps = bool(answer.get("mps"))
        status.torch_version = str(answer.get("torch", ""))
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


# -- installing: a private environment for the worker ---------------------------------------

_installer: installer.Installer | None = None


def current_installer() -> installer.Installer | None:
    return _installer


def installing() -> bool:
    return _installer is not None and _installer.active


def start_install(plan: installer.Plan) -> installer.Installer:
    """Start Install Dependencies on its thread (one at a time: see `installing`)."""
    global _installer
    _installer = installer.Installer(plan).start()
    return _installer


# The torch builds of this platform as enum items, the one its hardware suggests first.
BUILD_ITEMS = [(key, installer.BUILDS[key][0], installer.BUILDS[key][1])
               for key in installer.builds_for()]


def install_plan(context=None, build: str = "", wheel_dir: str = "") -> installer.Plan:
    """What Install Dependencies does with the preferences' choices (or the given ones)."""
    prefs = storage.preferences(context)
    build = build or (prefs.torch_build if prefs is not None else installer.default_build())
    folder = wheel_dir or (prefs.wheel_dir.strip() if prefs is not None else "")
    return installer.Plan(base_python=sys.executable, env_dir=storage.env_dir(), build=build,
                          version=sys.version_info[:2],
                          wheel_dir=storage.absolute(folder) if folder else "")
