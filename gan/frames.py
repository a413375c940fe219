"""Frame sources: a video, a folder of images, a list of image files, or a single image.

Every source yields RGB uint8 frames (H, W, 3), C-contiguous, whatever the file holds (grey,
alpha, 16-bit). Opened with `native=True` (what stylizing uses), image files keep their alpha
and 16 bits instead: RGB or RGBA, uint8 or uint16 (`gan.images.model_rgb` gives the model's
RGB uint8 view of such a frame, `gan.images.restore_native` carries a stylized result back to
the source's channels and depth). Frames are streamed: a clip is never held in memory. Indices are 0-based source
indices; a still image gives the same picture for any index.

    with open_frames("clip.mp4", parse_frame_range("120-240")) as source:
        for index, rgb in source:
            ...
"""

from __future__ import annotations

import abc
import math
import os
import re
from typing import Iterator, Sequence

import cv2
import numpy as np

from . import images
from .protocol import UserError

# Extensions read as images (cv2.imdecode); any other file is opened as a video.
IMAGE_EXTENSIONS = frozenset((
    ".png", ".jpg", ".jpeg", ".jpe", ".jp2", ".bmp", ".dib", ".tif", ".tiff", ".webp",
    ".pbm", ".pgm", ".ppm", ".pnm", ".pxm", ".sr", ".ras", ".hdr", ".pic", ".exr"))

# Forward gaps up to this many frames are decoded through rather than seeked: OpenCV's seek
# itself re-decodes ~16 frames before the target (and up to a GOP for long-GOP codecs).
MAX_SKIP_FRAMES = 48

MAX_RANGE_FRAMES = 10_000_000


class FrameSourceError(UserError):
    """A frame that cannot be read, or a source that cannot be opened (one-line message)."""


# -- frame ranges ---------------------------------------------------------------------------------

_RANGE_PART = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_frame_range(text: str) -> list[int]:
    """'120-240' (inclusive), '7', '0-9,20-29' -> source indices in that order.

    A descending part ('240-120') counts down, so a reversed range keeps its order.
    """
    if not isinstance(text, str) or not text.strip():
        raise UserError("empty frame range: use A-B (inclusive), A, or a list like 0-9,20-29")
    frames: list[int] = []
    for part in text.split(","):
        match = _RANGE_PART.match(part)
        if not match:
            raise UserError(f"bad frame range {part.strip()!r} in {text.strip()!r}: "
                            "use A-B (inclusive), A, or a list like 0-9,20-29 (frames are >= 0)")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        step = 1 if last >= first else -1
        if len(frames) + abs(last - first) + 1 > MAX_RANGE_FRAMES:
            raise UserError(f"frame range {text.strip()!r} has more than {MAX_RANGE_FRAMES} frames")
        frames.extend(range(first, last + step, step))
    return frames


# -- pixel conversion -----------------------------------------------------------------------------

def to_rgb8(image: np.ndarray | None, where: str) -> np.ndarray:
    """Any image OpenCV decodes (BGR order, grey, BGRA, 8/16-bit, float) -> RGB uint8 (H, W, 3)."""
    _check_decoded(image, where)
    if image.dtype == np.uint16:
        image = images.to_8bit(image)
    elif image.dtype in (np.float32, np.float64):
        image = cv2.convertScaleAbs(np.nan_to_num(image, nan=0.0, posinf=1.0, neginf=0.0),
                                    alpha=255.0)  # float images are linear-ish 0..1
    elif image.dtype != np.uint8:
        raise FrameSourceError(f"{where}: unsupported pixel type {image.dtype}")
    return _rgb_order(image, where, keep_alpha=False)


def to_native(image: np.ndarray | None, where: str) -> np.ndarray:
    """Any image OpenCV decodes -> RGB or RGBA (alpha kept) in uint8 or uint16 (depth kept).
    Float images are refused: their range (above 1, linear light) does not survive the 8-bit
    model, and silently clipping them would lose it."""
    _check_decoded(image, where)
    if image.dtype not in (np.uint8, np.uint16):
        raise FrameSourceError(f"{where}: {image.dtype} pixels (a float image such as EXR) "
                               "cannot be stylized: convert it to 16-bit PNG or TIFF")
    return _rgb_order(image, where, keep_alpha=True)


def _check_decoded(image: np.ndarray | None, where: str) -> None:
    if image is None or image.size == 0:
        raise FrameSourceError(f"{where}: not an image OpenCV can read (or the file is damaged)")


def _rgb_order(image: np.ndarray, where: str, keep_alpha: bool) -> np.ndarray:
    try:
        return images.from_opencv(image, keep_alpha)
    except ValueError as exc:  # a channel count that is not grey, BGR or BGRA
        raise FrameSourceError(f"{where}: {exc}") from None


def read_image(path: str, native: bool = False) -> np.ndarray:
    """Read an image file as RGB uint8 (`native`: see `to_native`). np.fromfile + imdecode:
    cv2.imread fails on non-ASCII paths on Windows."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise FrameSourceError(f"image not found: {path}") from None
    except OSError as exc:
        raise FrameSourceError(f"cannot read image {path}: {exc.strerror or exc}") from None
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error:  # e.g. OpenEXR, which OpenCV ships disabled
        raise FrameSourceError(f"{path}: OpenCV cannot decode this kind of image (EXR and other "
                               "float images are not supported: convert it to 16-bit PNG or "
                               "TIFF)") from None
    return to_native(image, path) if native else to_rgb8(image, path)


def natural_key(name: str) -> tuple:
    """Sort key so that frame_2 comes before frame_10 (digits compare as numbers)."""
    parts = re.split(r"(\d+)", name.lower())
    parts[1::2] = [int(p) for p in parts[1::2]]
    return tuple(parts), name


def list_images(folder: str) -> list[str]:
    """The image files of a folder, naturally sorted; hidden files are skipped."""
    try:
        names = os.listdir(folder)
    except OSError as exc:
        raise FrameSourceError(f"cannot list folder {folder}: {exc.strerror or exc}") from None
    names = [n for n in names if not n.startswith(".")
             and os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS
             and os.path.isfile(os.path.join(folder, n))]
    return [os.path.join(folder, n) for n in sorted(names, key=natural_key)]


def is_image_file(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


# -- sources --------------------------------------------------------------------------------------

class FrameSource(abc.ABC):
    """Frames `indices` of one source, streamed in that order.

    `count`: frames in the source (for a video, OpenCV's figure; -1 when it gives none);
    `size`: (width, height) of the first frame; `read(index)`: one frame, random access.
    Frames are new arrays, except that a repeated index gets a copy of the frame just read.
    """

    def __init__(self, path: str, count: int, frames: Sequence[int] | None):
        self.path = path
        self.count = count
        if frames is None:  # a range, not a list: a long clip costs no memory here
            self.indices: Sequence[int] = range(max(count, 0))
        else:
            self.indices = [int(i) for i in frames]
            for i in self.indices:
                self._check_index(i)
        self.size = (0, 0)
        self._last: tuple[int, np.ndarray] | None = None

    def read(self, index: int) -> np.ndarray:
        self._check_index(index)
        if self._last is not None and self._last[0] == index:
            return self._last[1].copy()  # a repeated frame (held, or a reversed strip's turn)
        frame = self._load(index)
        self._last = (index, frame)
        return frame

    def _check_index(self, index: int) -> None:
        if index < 0 or (self.count >= 0 and index >= self.count):
            raise FrameSourceError(
                f"{self.path}: frame {index} does not exist (the source has {self.count} frames, "
                f"numbered 0-{self.count - 1})")

    @abc.abstractmethod
    def _load(self, index: int) -> np.ndarray:
        """Decode frame `index` (already checked to exist) as RGB uint8."""

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        for index in self.indices:
            yield index, self.read(index)

    def close(self) -> None:
        pass

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageFilesSource(FrameSource):
    """Frame i is the i-th file of an image folder (natural order) or an explicit file list."""

    def __init__(self, path: str, files: list[str], frames: Sequence[int] | None,
                 native: bool = False):
        self.files = files
        self.native = native
        super().__init__(path, len(files), frames)
        if not self.indices:
            return
        missing = [i for i in dict.fromkeys(self.indices) if not os.path.isfile(files[i])]
        if missing:  # fail before any work is done, not halfway through a long job
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise FrameSourceError(f"frame {missing[0]}: image not found: {files[missing[0]]}{more}")
        height, width = self.read(self.indices[0]).shape[:2]
        self.size = (width, height)

    def _load(self, index: int) -> np.ndarray:
        try:
            return read_image(self.files[index], self.native)
        except FrameSourceError as exc:
            raise FrameSourceError(f"frame {index}: {exc}") from None


class StillImageSource(FrameSource):
    """One picture that stands for every frame index (a still strip of any length)."""

    def __init__(self, path: str, frames: Sequence[int] | None, native: bool = False):
        self._image = read_image(path, native)
        super().__init__(path, 1, frames if frames is not None else [0])
        height, width = self._image.shape[:2]
        self.size = (width, height)

    def _check_index(self, index: int) -> None:
        if index < 0:
            raise FrameSourceError(f"{self.path}: frame {index} does not exist (frames are >= 0)")

    def _load(self, index: int) -> np.ndarray:
        return self._image.copy()


class VideoSource(FrameSource):
    """A video file decoded with OpenCV (FFmpeg), read sequentially; seeks only when it must."""

    def __init__(self, path: str, frames: Sequence[int] | None):
        self.path = path
        self._cap = _open_capture(path)
        try:
            reported = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
            reported = int(reported) if math.isfinite(reported) else -1
            self._reported = reported
            # A damaged or crafted header can claim billions of frames; a real frame takes
            # more than a byte of the file, so such a count is ignored (treated as unknown).
            implausible = reported > _file_size(path)
            # No usable count (some streams): allow any index, fail clearly at the real end.
            count = reported if 0 < reported and not implausible else -1
            self._next = 0  # index the next decoded frame will have
            try:
                first = self._load(0)  # proves the file decodes and gives the true frame size
            except FrameSourceError:
                if reported <= 0:
                    raise FrameSourceError(f"{path}: the video has no frames (it is empty or "
                                           "damaged)") from None
                raise
            if frames is None and count < 0:
                claim = (f"claims {reported} frames, more than the file can hold (damaged?)"
                         if implausible else "does not tell its frame count")
                raise FrameSourceError(f"{path}: the video {claim}; give an explicit frame "
                                       "range")
            super().__init__(path, count, frames)
            self.size = (first.shape[1], first.shape[0])
            self._last = (0, first)
        except BaseException:
            self._cap.release()
            raise

    def _load(self, index: int) -> np.ndarray:
        gap = index - self._next
        if gap < 0 or gap > MAX_SKIP_FRAMES:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        else:
            for _ in range(gap):  # grab() skips the colour conversion: cheaper than read()
                if not self._cap.grab():
                    self._ended_before(index)
        ok, bgr = self._cap.read()
        if not ok:
            self._ended_before(index)
        self._next = index + 1
        return to_rgb8(bgr, f"{self.path}: frame {index}")

    def _ended_before(self, index: int) -> None:
        self._next = -1  # position unknown: seek next time
        known = (f" although OpenCV reported {self._reported} frames"
                 if 0 < self._reported <= _file_size(self.path) else "")
        raise FrameSourceError(
            f"{self.path}: frame {index} could not be read: the video ends earlier{known} "
            "(the file may be truncated or damaged, or its frame count wrong)")

    def close(self) -> None:
        self._cap.release()


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _open_capture(path: str) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not cap.isOpened() and os.name == "nt":
        # FFmpeg on Windows cannot open non-ASCII paths; the 8.3 short name is plain ASCII.
        cap = cv2.VideoCapture(_windows_short_path(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap = cv2.VideoCapture(path)  # any other backend OpenCV has
    if not cap.isOpened():
        raise FrameSourceError(f"cannot open {path}: not a video or image OpenCV can read "
                               "(or the file is damaged)")
    return cap


def _windows_short_path(path: str) -> str:
    import ctypes
    buffer = ctypes.create_unicode_buffer(32768)
    length = ctypes.windll.kernel32.GetShortPathNameW(path, buffer, len(buffer))
    return buffer.value if 0 < length < len(buffer) else path


def open_frames(path: str | list[str], frames: Sequence[int] | None = None,
                native: bool = False) -> FrameSource:
    """Open a video, image folder, list of image files or single image.

    `frames`: source indices to yield, in order (repeats and descending order allowed);
    None = every frame. `native`: image files keep alpha and 16 bits (see `to_native`).
    Raises FrameSourceError naming the path (and frame) on any problem.
    """
    if isinstance(path, (list, tuple)):
        files = [os.fspath(p) for p in path]
        if not files:
            raise FrameSourceError("the list of image files is empty")
        return ImageFilesSource(f"{files[0]} (+{len(files) - 1} files)" if len(files) > 1
                                else files[0], files, frames, native)
    path = os.fspath(path)
    if os.path.isdir(path):
        files = list_images(path)
        if not files:
            raise FrameSourceError(f"no image files in folder {path}")
        return ImageFilesSource(path, files, frames, native)
    if not os.path.exists(path):
        raise FrameSourceError(f"not found: {path}")
    if is_image_file(path):
        return StillImageSource(path, frames, native)
    return VideoSource(path, frames)
