"""Shared helpers of the Blender tests: test media, strips, file checks."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from dataclasses import dataclass

import bpy
import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
W, H, FPS = 64, 48, 24
MOVIE_FRAMES = 30
IMAGE_FRAMES = 12
TRAIN_STEPS = 3


def coded_frame(index: int, seed: int = 0) -> np.ndarray:
    """A BGR frame that differs strongly from every other index (and seed)."""
    rng = np.random.default_rng(1000 * seed + index)
    img = rng.integers(0, 256, size=(H // 8, W // 8, 3), dtype=np.uint8)
    img = cv2.resize(img, (W, H), interpolation=cv2.INTER_NEAREST)
    cv2.putText(img, str(index), (4, H - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2)
    return img


@dataclass
class Media:
    folder: str
    movie: str               # FFV1 .avi, MOVIE_FRAMES frames (lossless)
    images: list[str]        # PNG sequence, IMAGE_FRAMES files
    style_image: str         # a still image that shows a "style"


def make_media(folder: str) -> Media:
    movie = os.path.join(folder, "clip.avi")
    writer = cv2.VideoWriter(movie, cv2.VideoWriter_fourcc(*"FFV1"), FPS, (W, H))
    assert writer.isOpened(), "OpenCV cannot write FFV1"
    for i in range(MOVIE_FRAMES):
        writer.write(coded_frame(i))
    writer.release()
    image_dir = os.path.join(folder, "seq")
    os.makedirs(image_dir)
    images = []
    for i in range(IMAGE_FRAMES):
        path = os.path.join(image_dir, f"img_{i:04d}.png")
        cv2.imwrite(path, coded_frame(i, seed=1))
        images.append(path)
    style = np.zeros((H, W, 3), np.uint8)
    style[:, :, 0] = np.linspace(0, 255, W, dtype=np.uint8)[None, :]
    style[:, :, 2] = 200
    style[::6] = 0
    style_image = os.path.join(folder, "style.png")
    cv2.imwrite(style_image, style)
    return Media(folder, movie, images, style_image)


def movie_frames(path: str) -> list[np.ndarray]:
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def strips(owner):
    """The strip collection of a scene's editor or of a meta strip (4.2: `sequences`)."""
    owner = getattr(owner, "sequence_editor", owner)
    return owner.strips if hasattr(owner, "strips") else owner.sequences


def strips_all(scene):
    ed = scene.sequence_editor
    return list(ed.strips_all if hasattr(ed, "strips_all") else ed.sequences_all)


def _as_blender_leaves_it(strip):
    """4.2's API creates strips with strobe 0.0, which Blender sets to 1.0 the first time it
    looks up a frame; do that now so that 'unchanged' checks compare settled strips."""
    if strip.strobe < 1.0:
        strip.strobe = 1.0
    return strip


def add_movie(scene, path, name, channel=1, frame_start=1):
    return _as_blender_leaves_it(strips(scene).new_movie(
        name=name, filepath=path, channel=channel, frame_start=frame_start))


def add_effect(owner, name, type, channel, frame_start, length):
    """An effect strip (colour, text...); 4.2 takes frame_end instead of length."""
    collection = strips(owner)
    try:
        strip = collection.new_effect(name=name, type=type, channel=channel,
                                      frame_start=frame_start, length=length)
    except TypeError:
        strip = collection.new_effect(name=name, type=type, channel=channel,
                                      frame_start=frame_start, frame_end=frame_start + length)
    return _as_blender_leaves_it(strip)


def add_images(scene, paths, name, channel=1, frame_start=1):
    strip = strips(scene).new_image(name=name, filepath=paths[0], channel=channel,
                                    frame_start=frame_start)
    for path in paths[1:]:
        strip.elements.append(os.path.basename(path))
    return _as_blender_leaves_it(strip)


def select_only(scene, *chosen):
    for strip in strips_all(scene):
        strip.select = False
    for strip in chosen:
        strip.select = True
    if chosen:
        scene.sequence_editor.active_strip = chosen[0]


def new_strips(scene, before: set[str]) -> list:
    return [s for s in strips_all(scene) if s.name not in before]


def file_digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def strip_state(strip) -> dict:
    """Every plain property of a strip (to check that an operation left it unchanged)."""
    def plain(value):
        if isinstance(value, float) and value != value:
            return "nan"  # 4.2 leaves some effect-strip floats uninitialised
        if hasattr(value, "__len__") and not isinstance(value, str):
            return tuple(plain(v) for v in value)
        return value

    state = {}
    for prop in strip.bl_rna.properties:
        if prop.type in {'POINTER', 'COLLECTION'} or prop.identifier == "select":
            continue
        state[prop.identifier] = plain(getattr(strip, prop.identifier))
    for group in ("transform", "crop"):
        owner = getattr(strip, group, None)
        if owner is not None:
            for prop in owner.bl_rna.properties:
                if prop.identifier != "rna_type":
                    state[f"{group}.{prop.identifier}"] = plain(getattr(owner, prop.identifier))
    return state


def state_changes(before: dict, strips_now) -> set:
    """(strip, property) pairs whose value differs from a `strip_state` snapshot."""
    now = {s.name: strip_state(s) for s in strips_now}
    return {(name, key) for name, state in before.items() for key, value in state.items()
            if name not in now or now[name].get(key) != value}


def strip_files(strip) -> list[str]:
    """Absolute paths of the files an image strip shows, in order."""
    directory = os.path.normpath(bpy.path.abspath(strip.directory))
    return [os.path.join(directory, e.filename) for e in strip.elements]


def process_gone(pid: int) -> bool:
    """True when the process no longer exists (or is a zombie nobody reaps)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_for(predicate, timeout=60.0, step=0.05, tick=None):
    """Poll `predicate` (calling `tick` between tries, e.g. the job timer) until it is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick is not None:
            tick()
        if predicate():
            return True
        time.sleep(step)
    return False


def write_fake_python(folder: str, name: str, body: str) -> str:
    """An executable that stands in for the worker interpreter (crash, missing torch...)."""
    path = os.path.join(folder, name)
    with open(path, "w") as handle:
        handle.write("#!/bin/sh\n" + body + "\n")
    os.chmod(path, 0o755)
    return path


def python_without_torch(folder, worker_python: str) -> str:
    """An interpreter whose `import torch` fails like an uninstalled package."""
    shadow = os.path.join(folder, "shadow")
    os.makedirs(shadow, exist_ok=True)
    with open(os.path.join(shadow, "torch.py"), "w") as handle:
        handle.write("raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n")
    return write_fake_python(folder, "python-without-torch",
                             f'PYTHONPATH="$PYTHONPATH:{shadow}" exec "{worker_python}" "$@"')


def run_python(code: str, *args: str, timeout=300) -> subprocess.CompletedProcess:
    """Run code in a new interpreter of this same Python (a fresh bpy: a 'farm' process);
    it sees the same isolated Blender user folder (BLENDER_USER_RESOURCES)."""
    import sys
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=timeout)


def make_untrained_style(path: str, worker_python: str) -> str:
    """A valid draft style file with initial weights (no training), written by the engine."""
    code = (
        "import sys, numpy as np\n"
        "from gan import models, stylefile\n"
        "arch = models.generator_arch('draft')\n"
        "gen = models.build_generator(arch)\n"
        "thumb = np.zeros((16, 16, 3), np.uint8); thumb[:, :, 0] = 200\n"
        "stylefile.save_style(sys.argv[1], arch=arch, state_dict=gen.state_dict(),\n"
        "    meta={'name': 'untrained', 'preset': 'draft', 'steps': 0}, thumbnail_rgb=thumb)\n")
    subprocess.run([worker_python, "-c", code, path], cwd=ROOT, check=True)
    return path


# -- invariants checked after every fault and input case -------------------------------------

ADDON_MODULE = "bl_ext.user_default.gan_style"
TEMP_SUFFIXES = (".tmp", ".part", ".partial")


def scene_media(scene) -> list[str]:
    """The media files the scene's movie and image strips read (those that exist)."""
    paths = []
    for strip in strips_all(scene):
        if strip.type == 'MOVIE':
            paths.append(os.path.normpath(bpy.path.abspath(strip.filepath)))
        elif strip.type == 'IMAGE':
            paths.extend(strip_files(strip))
    return sorted({p for p in paths if os.path.isfile(p)})


def _tree(roots, skip=()) -> dict[str, tuple]:
    """path -> (inode, mtime_ns, size) of every file under the roots (`skip`: folder names)."""
    files = {}
    for root in roots:
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d not in skip]
            for name in names:
                path = os.path.join(folder, name)
                stat = os.lstat(path)
                files[path] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    return files


def library_dir() -> str:
    import sys
    return sys.modules[ADDON_MODULE].vse.storage.library_dir()


def output_root() -> str:
    """Where the add-on writes stylized frames for the open .blend."""
    return os.path.join(os.path.dirname(bpy.data.filepath), "gan_style")


def process_group_gone(pgid: int) -> bool:
    """No live process of the worker's process group (it starts its own session) remains."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return False
    return True


def no_process_left(pids) -> bool:
    return all(process_gone(pid) and process_group_gone(pid) for pid in pids)


class Invariants:
    """A snapshot before a fault or input case; `check()` after it asserts that

    - every source media file has the same bytes,
    - every strip that existed is unchanged (all its plain properties),
    - no file that existed under the output roots (frame folders, style library) was replaced,
      changed or removed (`.training` is skipped: checkpoints are replaced atomically by design),
    - every new *.ganstyle under its final name reads (metadata, no torch), and no temporary
      or half-written file was left under the roots.
    """

    SKIP = (".training",)

    def __init__(self, scene, media=(), roots=()):
        import sys
        self.stylefile = sys.modules[ADDON_MODULE + ".gan.stylefile"]
        self.roots = sorted({*(os.path.normpath(r) for r in roots), output_root(),
                             library_dir()})
        self.media = {p: file_digest(p) for p in {*scene_media(scene), *media}}
        assert self.media, "no media to watch"
        self.strips = {s.name: strip_state(s) for s in strips_all(scene)}
        self.files = _tree(self.roots, self.SKIP)

    def check(self, scene=None) -> None:
        for path, digest in self.media.items():
            assert os.path.isfile(path), f"source media removed: {path}"
            assert file_digest(path) == digest, f"source media changed: {path}"
        if scene is not None:
            changed = state_changes(self.strips, strips_all(scene))
            assert not changed, f"existing strips changed: {sorted(changed)[:10]}"
        now = _tree(self.roots, self.SKIP)
        for path, stamp in self.files.items():
            assert path in now, f"an existing file was removed: {path}"
            assert now[path] == stamp, f"an existing file was replaced or changed: {path}"
        for path in set(now) - set(self.files):  # what this case wrote
            name = os.path.basename(path)
            assert not name.endswith(TEMP_SUFFIXES), f"temporary file left behind: {path}"
            if name.endswith(".png"):
                assert cv2.imread(path, cv2.IMREAD_UNCHANGED) is not None, \
                    f"a frame under its final name does not decode: {path}"
            if name.endswith(".ganstyle"):
                try:
                    self.stylefile.read_style_info(path)
                except self.stylefile.StyleFileError as exc:
                    raise AssertionError(f"broken style file under its final name: {path}: "
                                         f"{exc}") from None
