"""What training looks at: random crops and pixels of footage and style frames, painted keyframe
pairs, and consecutive footage frames with their optical flow.

Everything is sampled with random access from small bounded sets of decoded frames, so that
training never holds a whole clip in memory and a seek + decode is paid only now and then.
Images here are uint8 NHWC numpy arrays; train.py turns them into tensors.
"""

from __future__ import annotations

import concurrent.futures
import math
import threading

import cv2
import numpy as np

from .flow import trusted_flow, warp
from .frames import FrameSourceError, open_frames
from .protocol import KeyframeSpec, Reporter, SourceSpec, UserError

CONTENT_SCALE = (0.8, 1.0)  # footage crops: close to the scale the style will be applied at
FEW_FRAMES = 8  # a style with fewer frames than this (a painting) is sampled at more scales
# The colour path learns the colours of regions: the pixels along a frame's strongest edges
# (this share of each frame) hold outlines, halos and blur, which are the texture path's and the
# abstraction's to draw; in its colour match they drag whole regions dark (docs/decisions.md,
# "Abstraction").
EDGE_SHARE = 0.1


class FramePool:
    """A bounded random sample of decoded frames from several sources, slowly renewed.

    Reading a random frame of a video means a seek and a decode; keeping a few dozen decoded
    frames and replacing one every few steps makes that cost small while every frame of the
    sources still gets its turn. The frame the next refresh takes is decoded ahead on a
    background thread, which gains where torch leaves a core free (beside an interactive
    Blender, or while a GPU trains): seeks took 13% of the training time from 3 keyframes of
    vtest.avi, and cost more on footage with long keyframe intervals. Frames that turn out
    unreadable (a video whose reported frame count is too high) are dropped with a log line,
    not fatal.
    """

    def __init__(self, specs: list[SourceSpec], rng: np.random.Generator, reporter: Reporter,
                 role: str, capacity: int = 32, max_bytes: int = 384 << 20):
        self.rng = rng
        self.reporter = reporter
        self.role = role
        self._lock = threading.Lock()  # the sources are read by the trainer and the prefetcher
        self._prefetcher: concurrent.futures.ThreadPoolExecutor | None = None
        self._prefetched: tuple[tuple[int, int], concurrent.futures.Future] | None = None
        self.sources = []
        try:
            for spec in specs:
                self.sources.append(open_frames(spec.path, spec.frames))
        except BaseException:
            self.close()
            raise
        self.entries = [(s, i) for s, source in enumerate(self.sources)
                        for i in dict.fromkeys(source.indices)]
        if not self.entries:
            raise UserError(f"the {role} sources have no frames")
        width, height = self.sources[0].size
        frame_bytes = max(width * height * 3, 1)
        self.capacity = max(1, min(capacity, len(self.entries), max_bytes // frame_bytes))
        self.frames: list[np.ndarray] = []
        self._regions: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id -> (frame, positions)
        self._order = np.empty(0, np.int64)  # a shuffled pass over the entries
        self._cursor = 0
        self._warned = False
        while len(self.frames) < self.capacity:
            frame = self._next_frame()
            if frame is None:
                break
            self.frames.append(frame)
        if not self.frames:
            raise UserError(f"none of the {role} frames could be read")
        self._prefetch()

    def read(self, source: int, index: int) -> np.ndarray:
        """Frame `index` of source number `source`."""
        with self._lock:
            return self.sources[source].read(index)

    def _prefetch(self) -> None:
        """Start decoding the frame that the next refresh will take, where the shuffled pass
        already says which: the random draws stay those of reading it then."""
        self._prefetched = None
        if len(self.entries) <= len(self.frames) or self._cursor >= len(self._order):
            return
        if self._prefetcher is None:
            self._prefetcher = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix=f"gan-{self.role}-frames")
        entry = self.entries[self._order[self._cursor]]
        self._prefetched = (entry, self._prefetcher.submit(self.read, *entry))

    def _take(self, source: int, index: int) -> np.ndarray:
        """The frame, from the prefetcher when it decoded this one."""
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None and prefetched[0] == (source, index):
            return prefetched[1].result()
        return self.read(source, index)

    def _next_frame(self) -> np.ndarray | None:
        """The next readable frame of a shuffled pass over all entries (then a new pass)."""
        while self.entries:
            if self._cursor >= len(self._order):
                self._order = self.rng.permutation(len(self.entries))
                self._cursor = 0
            position = self._order[self._cursor]
            self._cursor += 1
            source, index = self.entries[position]
            try:
                return self._take(source, index)
            except FrameSourceError as exc:
                if not self._warned:  # once: a short video may have hundreds of such indices
                    self._warned = True
                    self.reporter.emit("log", message=f"skipping unreadable {self.role} frames: {exc}")
                self.entries.pop(position)
                self._cursor = len(self._order)  # positions moved: start a new pass
        return None

    def refresh(self) -> None:
        """Replace one pooled frame by a new one (no-op when the pool holds every frame)."""
        if len(self.entries) <= len(self.frames):
            return
        frame = self._next_frame()
        if frame is not None:
            self.frames[self.rng.integers(len(self.frames))] = frame
        self._prefetch()

    def crops(self, count: int, size: int, scale: tuple[float, float]) -> np.ndarray:
        """`count` random size x size crops (uint8 NHWC), each taken from a window of
        size / s pixels with s log-uniform in `scale` (multi-scale), randomly mirrored."""
        out = np.empty((count, size, size, 3), np.uint8)
        for n in range(count):
            frame = self.frames[self.rng.integers(len(self.frames))]
            out[n], = aligned_crops(self.rng, (frame,), size, scale)
        return out

    def pixels(self, count: int) -> np.ndarray:
        """`count` random pixel colours (uint8, (count, 3)) from the pooled frames."""
        return aligned_pixels(self.rng, [(frame,) for frame in self.frames], count)[0]

    def region_pixels(self, count: int) -> np.ndarray:
        """`count` random pixel colours (uint8, (count, 3)) from the pooled frames, away from
        their strongest edges (region_positions): the colours of regions."""
        out = np.empty((count, 3), np.uint8)
        picks = self.rng.integers(len(self.frames), size=count)
        for g in np.unique(picks):
            where = picks == g
            frame = self.frames[g]
            positions = self._region_positions(frame)
            out[where] = frame.reshape(-1, 3)[positions[self.rng.integers(len(positions),
                                                                          size=int(where.sum()))]]
        return out

    def _region_positions(self, frame: np.ndarray) -> np.ndarray:
        cached = self._regions.get(id(frame))
        if cached is None or cached[0] is not frame:
            if len(self._regions) > 2 * self.capacity:  # frames replaced by refresh()
                self._regions = {}
            cached = self._regions[id(frame)] = (frame, region_positions(frame))
        return cached[1]

    def close(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.shutdown(wait=True, cancel_futures=True)
        for source in self.sources:
            source.close()


def random_window(rng: np.random.Generator, height: int, width: int, size: int,
                  scale: tuple[float, float]) -> tuple[int, int, int]:
    """(y, x, side) of a square window that will be resized to `size` pixels, its scale s
    log-uniform in `scale` (side = size / s, at most the frame)."""
    s = math.exp(rng.uniform(math.log(scale[0]), math.log(scale[1])))
    side = int(round(min(size / s, height, width)))
    return int(rng.integers(height - side + 1)), int(rng.integers(width - side + 1)), side


def aligned_crops(rng: np.random.Generator, images: tuple[np.ndarray, ...], size: int,
                  scale: tuple[float, float]) -> list[np.ndarray]:
    """The same random window of each of `images` (same size), resized to size x size and
    mirrored alike: a crop of a frame, or of a frame and its painted version."""
    y, x, side = random_window(rng, *images[0].shape[:2], size, scale)
    flip = rng.random() < 0.5
    crops = [resized(image[y:y + side, x:x + side], size) for image in images]
    return [crop[:, ::-1] if flip else crop for crop in crops]


def region_positions(frame: np.ndarray) -> np.ndarray:
    """The flat positions of the pixels of `frame` (H x W x 3) away from its strongest edges:
    all but the EDGE_SHARE whose Sobel gradient, summed over the channels, is largest."""
    magnitude = np.zeros(frame.shape[:2], np.float32)
    for channel in cv2.split(frame.astype(np.float32)):
        magnitude += cv2.magnitude(cv2.Sobel(channel, cv2.CV_32F, 1, 0),
                                   cv2.Sobel(channel, cv2.CV_32F, 0, 1))
    return np.flatnonzero(magnitude <= np.quantile(magnitude, 1 - EDGE_SHARE))


def aligned_pixels(rng: np.random.Generator, groups: list[tuple[np.ndarray, ...]], count: int
                   ) -> list[np.ndarray]:
    """`count` random pixel positions, each in a random group of same-size images: the colours
    there in every image of the group (a list of uint8 (count, 3) arrays, one per image)."""
    picks = rng.integers(len(groups), size=count)
    outs = [np.empty((count, 3), np.uint8) for _ in groups[0]]
    for g in np.unique(picks):
        where = picks == g
        height, width = groups[g][0].shape[:2]
        ys = rng.integers(height, size=int(where.sum()))
        xs = rng.integers(width, size=int(where.sum()))
        for out, image in zip(outs, groups[g]):
            out[where] = image[ys, xs]
    return outs


def resized(crop: np.ndarray, size: int) -> np.ndarray:
    if crop.shape[0] == size:
        return crop
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if crop.shape[0] > size
                      else cv2.INTER_LINEAR)


def style_scale_range(style: FramePool, content_size: tuple[int, int], stroke_scale: float = 1.0
                      ) -> tuple[float, float]:
    """Style crops are seen at the footage's scale (short sides matched) times `stroke_scale`,
    so brush strokes keep their size relative to the picture (or the size the user chose), with
    the footage's jitter. A style of a few frames (a single painting) is sampled over a wide
    range of scales, from half to one and a half times that: one image then offers thousands of
    different patches, and strokes of every size."""
    base = min(content_size) / max(min(style.sources[0].size), 1)
    base = min(max(base, 0.25), 4.0) * stroke_scale
    if len(style.entries) < FEW_FRAMES:
        return (base * 0.5, base * 1.5)
    return (base * CONTENT_SCALE[0], base * CONTENT_SCALE[1])


class KeyframePairs:
    """Painted keyframes in memory: each footage frame with its painted version, same size."""

    def __init__(self, specs: list[KeyframeSpec], rng: np.random.Generator):
        self.rng = rng
        self.inputs: list[np.ndarray] = []
        self.targets: list[np.ndarray] = []
        self._regions: list[np.ndarray] = []  # per pair, the positions region_pixels draws
        for spec in specs:
            try:
                with open_frames(spec.footage, [spec.frame]) as source:
                    frame = source.read(spec.frame)
                with open_frames(spec.painted) as source:
                    painted = source.read(source.indices[0])
            except UserError as exc:
                raise UserError(f"keyframe {spec.painted}: {exc}") from None
            self.inputs.append(frame)
            self.targets.append(self._fit(painted, frame, spec))

    @staticmethod
    def _fit(painted: np.ndarray, frame: np.ndarray, spec: KeyframeSpec) -> np.ndarray:
        """The painted image at the footage frame's size; a different shape is refused (the
        pixels would not line up)."""
        height, width = frame.shape[:2]
        p_height, p_width = painted.shape[:2]
        if (p_height, p_width) == (height, width):
            return painted
        if abs(p_width / p_height - width / height) > 0.01:
            raise UserError(f"keyframe {spec.painted} is {p_width}x{p_height} but frame "
                            f"{spec.frame} of its footage is {width}x{height}: paint over the "
                            "exported frame without cropping it")
        return cv2.resize(painted, (width, height),
                          interpolation=cv2.INTER_AREA if p_width > width else cv2.INTER_CUBIC)

    def crops(self, count: int, size: int, scale: tuple[float, float]
              ) -> tuple[np.ndarray, np.ndarray]:
        """`count` aligned (footage, painted) crop pairs, same window and mirroring."""
        inputs = np.empty((count, size, size, 3), np.uint8)
        targets = np.empty_like(inputs)
        for n in range(count):
            k = self.rng.integers(len(self.inputs))
            inputs[n], targets[n] = aligned_crops(self.rng, (self.inputs[k], self.targets[k]),
                                                  size, scale)
        return inputs, targets

    def pixels(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """`count` random pixel positions: footage colours and the painted colours there."""
        inputs, targets = aligned_pixels(self.rng, list(zip(self.inputs, self.targets)), count)
        return inputs, targets

    def region_pixels(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """As pixels, at positions away from the painted frames' strongest edges
        (region_positions): the colours of regions, without the outlines."""
        if len(self._regions) != len(self.targets):
            self._regions = [region_positions(target) for target in self.targets]
        inputs, targets = np.empty((count, 3), np.uint8), np.empty((count, 3), np.uint8)
        picks = self.rng.integers(len(self.targets), size=count)
        for k in np.unique(picks):
            where = picks == k
            positions = self._regions[k][self.rng.integers(len(self._regions[k]),
                                                           size=int(where.sum()))]
            inputs[where] = self.inputs[k].reshape(-1, 3)[positions]
            targets[where] = self.targets[k].reshape(-1, 3)[positions]
        return inputs, targets


def stays_inside(flow: np.ndarray) -> np.ndarray:
    """1.0 where p + flow(p) lies inside the (H, W) picture, else 0.0 (float32, (H, W))."""
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32),
                                 np.arange(height, dtype=np.float32))
    target_x, target_y = grid_x + flow[..., 0], grid_y + flow[..., 1]
    return ((target_x >= 0) & (target_x <= width - 1) & (target_y >= 0)
            & (target_y <= height - 1)).astype(np.float32)


class MotionPairs:
    """Consecutive footage frames (t-1, t) with the flow from t to t-1 and its occlusion mask:
    what the temporal term needs. A few pairs are held and one is renewed now and then (the
    flow of a pair costs ~0.1 s at SD size)."""

    def __init__(self, pool: FramePool, rng: np.random.Generator, capacity: int = 4):
        self.pool = pool
        self.rng = rng
        self.candidates = []  # (source, index) whose previous frame is in the same source
        for s, source in enumerate(pool.sources):
            present = set(source.indices)
            self.candidates += [(s, i) for i in dict.fromkeys(source.indices) if i - 1 in present]
        self.pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for _ in range(min(capacity, len(self.candidates))):
            pair = self._load()
            if pair is None:
                break
            self.pairs.append(pair)

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def _load(self):
        while self.candidates:
            position = int(self.rng.integers(len(self.candidates)))
            source, index = self.candidates[position]
            try:
                frame = self.pool.read(source, index)
                previous = self.pool.read(source, index - 1)
            except FrameSourceError:
                self.candidates.pop(position)
                continue
            if frame.shape != previous.shape:
                self.candidates.pop(position)
                continue
            flow, mask = trusted_flow(frame, previous)
            return frame, previous, flow, mask
        return None

    def refresh(self) -> None:
        pair = self._load()
        if pair is not None:
            self.pairs[self.rng.integers(len(self.pairs))] = pair

    def crops(self, count: int, size: int, scale: tuple[float, float] = CONTENT_SCALE):
        """`count` aligned crops: frames t and t-1 (uint8 NHWC), flow t -> t-1 in crop pixels
        (N, size, size, 2) and the mask (N, size, size) of pixels whose flow is trusted and
        stays inside the crop."""
        frames = np.empty((count, size, size, 3), np.uint8)
        previous = np.empty_like(frames)
        flows = np.empty((count, size, size, 2), np.float32)
        masks = np.empty((count, size, size), np.float32)
        for n in range(count):
            frame, prev, flow, mask = self.pairs[self.rng.integers(len(self.pairs))]
            y, x, side = random_window(self.rng, *frame.shape[:2], size, scale)
            window = np.s_[y:y + side, x:x + side]
            frames[n] = resized(frame[window], size)
            previous[n] = resized(prev[window], size)
            flows[n] = cv2.resize(flow[window], (size, size)) * (size / side)
            masks[n] = resized(mask[window], size) * stays_inside(flows[n])
        return frames, previous, flows, masks


class FakeMotion:
    """Made-up motion for footage without consecutive frames (stills; ReReVST, Wang et al.
    2020): a footage crop and the same crop moved by a random smooth flow, with a little noise,
    as if it were the next frame. The temporal term then asks the output of the moved crop to
    be the moved output of the crop, which steadies a style that never saw video. Same
    interface as MotionPairs.crops."""

    SIGMA = 8.0  # pixels: the size of the local motion
    SHIFT = 10.0  # pixels: the largest global shift
    NOISE = 2.0  # grey levels of noise on the moved crop (sensor noise differs between frames)

    def __init__(self, pool: FramePool, rng: np.random.Generator):
        self.pool = pool
        self.rng = rng

    def __bool__(self) -> bool:
        return True

    def refresh(self) -> None:
        """Nothing to renew: every crop gets a fresh flow."""

    def flow(self, size: int) -> np.ndarray:
        """A random smooth flow (size, size, 2) in pixels: coarse random motion, blurred,
        plus a global shift."""
        coarse = self.rng.normal(0.0, self.SIGMA, (max(2, size // 16), max(2, size // 16), 2))
        flow = cv2.resize(coarse.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
        flow = cv2.blur(flow, (max(3, size // 8),) * 2)
        return flow + self.rng.uniform(-self.SHIFT, self.SHIFT, 2).astype(np.float32)

    def crops(self, count: int, size: int, scale: tuple[float, float] = CONTENT_SCALE):
        """`count` (moved crop, crop, flow moved -> crop, mask of pixels whose flow stays
        inside the crop), as MotionPairs.crops gives them."""
        previous = self.pool.crops(count, size, scale)
        frames = np.empty_like(previous)
        flows = np.empty((count, size, size, 2), np.float32)
        masks = np.empty((count, size, size), np.float32)
        for n in range(count):
            flows[n] = self.flow(size)
            moved = warp(previous[n], flows[n]).astype(np.float32)
            moved += self.rng.normal(0.0, self.NOISE, moved.shape).astype(np.float32)
            frames[n] = np.clip(moved + 0.5, 0, 255).astype(np.uint8)
            masks[n] = stays_inside(flows[n])
        return frames, previous, flows, masks
