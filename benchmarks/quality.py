"""Known-style quality benchmark (docs: /work/shared/DESIGN.md, "Measuring quality").

    .venv/bin/python benchmarks/quality.py                  # 3 filters x 3 ways x 5 minutes
    .venv/bin/python benchmarks/quality.py --minutes 0.2    # a quick smoke run
    .venv/bin/python benchmarks/quality.py --ways keyframes --filters grade,stylization

For each filter f: style clip = f(C), footage = A, where C and A are two disjoint stretches of
the same real clip (vtest.avi from Debian's opencv-doc: C = frames 0-399, A = frames 400-794,
a fixed camera with different people). Train unpaired with gan.train (draft preset, the product's
own algorithm and settings) on A's frames 400-769, stylize A's held-out frames 780-794 and compare
with f(A): gap closure (GC: 0 = identity, 1 = f exactly), PSNR, SSIM, and the temporal warping
error relative to f(A)'s own. Baselines: identity and a Reinhard Lab mean/std colour transfer with
the style clip's statistics. "colour path" is the trained model without its texture path: its
colour path and the stages fitted after training (abstraction, tone curves); what the texture
path adds is the difference. Without the sample clips
(benchmarks/fetch_samples.sh), synthetic clips stand in.

Each filter is learned in up to three ways (--ways), each with the same time budget:
  unpaired     from the style clip f(C), with the temporal term (the product's default)
  no-temporal  the same without the temporal term: what the term costs and buys
  keyframes    from 3 painted keyframes only: f(A) at frames KEYFRAMES of A (few-shot, paired)
The unpaired model is also applied with stabilization (--stabilize, default 0.7: what the
Apply operator's "stabilize" does), so that "with the temporal terms" (training term and
stabilization) can be compared with "without" (no-temporal, not stabilized).
The warp column is the temporal warping error of the output divided by f(A)'s own.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from gan import device as device_mod  # noqa: E402
from gan import models  # noqa: E402
from gan.frames import open_frames  # noqa: E402
from gan.metrics import gap_closure, psnr, ssim, warping_error  # noqa: E402
from gan.protocol import (DEFAULT_TEMPORAL_WEIGHT, CancelToken, KeyframeSpec, Reporter,  # noqa: E402
                          SourceSpec, TrainJob)
from gan.stabilize import Stabilizer  # noqa: E402
from gan.train import train  # noqa: E402
from colour_transfer import LabStats, reinhard_transfer  # noqa: E402

SAMPLE_DIRS = [os.path.join(ROOT, ".cache", "samples"),
               "/tmp/ocvdoc/x/usr/share/doc/opencv-doc/examples/data"]
STYLE_FRAMES = range(0, 400, 4)      # C (every 4th frame: 100 style frames)
CONTENT_FRAMES = range(400, 770)     # A, trained on
HELD_OUT_FRAMES = range(780, 795)    # A, never seen in training; consecutive for warping error
KEYFRAMES = (450, 600, 750)          # A, painted (= f(A)) for the keyframes way
WAYS = ("unpaired", "no-temporal", "keyframes")


# -- the filters (the "known styles") -------------------------------------------------------------

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def colour_grade(rgb: np.ndarray) -> np.ndarray:
    """A strong teal-and-orange grade: S-curve, teal shadows, orange highlights, +50% saturation."""
    x = rgb.astype(np.float32) / 255
    luma = (x @ LUMA)[..., None]
    x = x * x * (3 - 2 * x) * 0.6 + x * 0.4
    x = x + (1 - luma) ** 2 * np.array([-0.10, 0.04, 0.12], np.float32)
    x = x + luma ** 2 * np.array([0.14, 0.03, -0.12], np.float32)
    luma = (x @ LUMA)[..., None]
    x = luma + (x - luma) * 1.5
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)


def _bgr_filter(function):
    def apply(rgb: np.ndarray) -> np.ndarray:
        out = function(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)
    return apply


stylization = _bgr_filter(lambda bgr: cv2.stylization(bgr, sigma_s=60, sigma_r=0.45))
# edge-preserving smoothing, then 4 levels per channel: a flat "poster" look
posterize = _bgr_filter(lambda bgr: cv2.edgePreservingFilter(
    bgr, flags=cv2.RECURS_FILTER, sigma_s=40, sigma_r=0.3) // 64 * 64 + 32)
pencil = _bgr_filter(lambda bgr: cv2.cvtColor(cv2.pencilSketch(
    bgr, sigma_s=60, sigma_r=0.07, shade_factor=0.05)[0], cv2.COLOR_GRAY2BGR))

FILTERS = {"grade": colour_grade, "stylization": stylization, "posterize": posterize,
           "pencil": pencil}


# -- inputs ---------------------------------------------------------------------------------------

def find_samples(explicit: str | None) -> str | None:
    for folder in ([explicit] if explicit else SAMPLE_DIRS):
        if folder and os.path.isfile(os.path.join(folder, "vtest.avi")):
            return os.path.join(folder, "vtest.avi")
    if explicit:
        sys.exit(f"no vtest.avi in {explicit}")
    return None


def synthetic_clip(path: str, count: int = 795, size=(320, 240)) -> str:
    """Stand-in when the samples are missing: textured ground, a slow pan and moving figures."""
    width, height = size
    rng = np.random.default_rng(0)
    ground = cv2.resize(rng.integers(30, 220, (height // 10, width // 5, 3), dtype=np.uint8),
                        (width * 2, height), interpolation=cv2.INTER_CUBIC)
    grain = rng.integers(-20, 21, (height, width * 2, 3), dtype=np.int16)
    ground = np.clip(ground + grain, 0, 255).astype(np.uint8)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    colours = [(200, 60, 60), (60, 200, 60), (60, 60, 200), (220, 200, 40)]
    for i in range(count):
        frame = np.ascontiguousarray(ground[:, i % width:i % width + width])
        for k, colour in enumerate(colours):
            x = (i * (2 + k) + 80 * k) % width
            cv2.rectangle(frame, (x, 60 + 30 * k), (x + 12, 100 + 30 * k), colour, -1)
        writer.write(frame)
    writer.release()
    return path


def footage_clip(samples: str | None, work: str) -> str:
    """vtest.avi from the samples, or a synthetic stand-in written into `work`."""
    clip = find_samples(samples)
    if clip is None:
        print("sample clips not found (benchmarks/fetch_samples.sh): using a synthetic clip",
              file=sys.stderr)
        clip = synthetic_clip(os.path.join(work, "synthetic.avi"))
    return clip


def read_frames(clip: str, indices) -> list[np.ndarray]:
    with open_frames(clip, list(indices)) as source:
        return [frame for _, frame in source]


def write_style_clip(clip: str, function, folder: str) -> list[str]:
    """f(C) as lossless PNG files (a lossy video would add its own artefacts to the style)."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    with open_frames(clip, list(STYLE_FRAMES)) as source:
        for index, frame in source:
            path = os.path.join(folder, f"{index:06d}.png")
            if not os.path.exists(path):
                cv2.imwrite(path, cv2.cvtColor(function(frame), cv2.COLOR_RGB2BGR))
            paths.append(path)
    return paths


# -- running the model --------------------------------------------------------------------------

class Quiet(Reporter):
    """Keeps the last progress event; prints a line every ~30 s so a long run shows life."""

    def __init__(self, label: str):
        self.label = label
        self.last: dict = {}
        self._printed = 0.0

    def emit(self, event: str, **fields) -> None:
        if event == "progress":
            self.last = fields
            if time.monotonic() - self._printed > 30:
                self._printed = time.monotonic()
                print(f"  {self.label}: step {fields['done']} ({fields['rate']:.2f}/s) "
                      f"losses {fields.get('losses')}", file=sys.stderr, flush=True)


def run_generator(module, frames: list[np.ndarray], device, dtype) -> list[np.ndarray]:
    outputs = []
    with torch.no_grad():
        for frame in frames:
            x = torch.from_numpy(frame).to(device).permute(2, 0, 1)[None].to(dtype) / 255
            y = module(x.contiguous(memory_format=torch.channels_last)).float().clamp(0, 1)
            outputs.append((y[0].permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8))
    return outputs


class ColourPathOnly(torch.nn.Module):
    def __init__(self, gen):
        super().__init__()
        self.gen = gen

    def forward(self, x):
        return self.gen.fitted_stages(self.gen.colour(x).clamp(0, 1))


# -- the benchmark ----------------------------------------------------------------------------------

def scores(outputs, targets, inputs) -> dict[str, float]:
    out, target, inp = np.stack(outputs), np.stack(targets), np.stack(inputs)
    return {"gc": gap_closure(out, target, inp), "psnr": psnr(out, target), "ssim": ssim(out, target),
            "warp": warping_error(outputs, inputs)}


def keyframe_specs(clip: str, function, folder: str) -> list[KeyframeSpec]:
    """f(A) at KEYFRAMES, as PNG files: what an artist would have painted."""
    os.makedirs(folder, exist_ok=True)
    specs = []
    for index, frame in zip(KEYFRAMES, read_frames(clip, KEYFRAMES)):
        path = os.path.join(folder, f"painted_{index:06d}.png")
        if not os.path.exists(path):
            cv2.imwrite(path, cv2.cvtColor(function(frame), cv2.COLOR_RGB2BGR))
        specs.append(KeyframeSpec(clip, index, path))
    return specs


METHOD_NAMES = {"unpaired": "ours (draft)", "no-temporal": "ours, no temporal term",
                "keyframes": "ours from 3 keyframes"}


def stabilized_name(args) -> str:
    return f"ours + stabilize {args.stabilize:g}"


def train_way(way: str, name: str, clip: str, style_paths: list[str], work: str, args):
    """Train the draft preset one way; returns (style file, steps, seconds)."""
    content = [SourceSpec(clip, list(CONTENT_FRAMES))]
    if way == "keyframes":
        style = []
        keyframes = keyframe_specs(clip, FILTERS[name], os.path.join(work, f"keyframes-{name}"))
    else:
        style, keyframes = [SourceSpec(style_paths)], []
    out = os.path.join(work, f"{name}-{way}-{int(time.time())}.ganstyle")
    job = TrainJob(style=style, content=content, keyframes=keyframes, out=out, preset="draft",
                   minutes=args.minutes, steps=args.steps, device=args.device, seed=args.seed,
                   temporal_weight=0.0 if way == "no-temporal" else DEFAULT_TEMPORAL_WEIGHT,
                   checkpoint_every_s=1e9, preview_every_s=1e9)
    reporter = Quiet(f"{name}/{way}")
    began = time.monotonic()
    train(job, reporter, CancelToken())
    return out, reporter.last.get("done", 0), time.monotonic() - began


def benchmark_filter(name: str, clip: str, work: str, args) -> list[dict]:
    function = FILTERS[name]
    style_paths = write_style_clip(clip, function, os.path.join(work, f"style-{name}"))
    held_out = read_frames(clip, HELD_OUT_FRAMES)
    targets = [function(frame) for frame in held_out]
    target_warp = warping_error(targets, held_out)
    device = device_mod.pick_device(args.device)
    dtype = device_mod.pick_dtype(device)

    style_stats = LabStats.of(read_frames(style_paths, range(len(style_paths))))
    footage_stats = LabStats.of(read_frames(clip, CONTENT_FRAMES[::10]))
    candidates = {
        "identity": (held_out, {}),
        "colour transfer (Reinhard)": (
            [reinhard_transfer(f, footage_stats, style_stats) for f in held_out], {}),
    }
    for way in args.ways:
        out, steps, train_s = train_way(way, name, clip, style_paths, work, args)
        gen, _ = models.load_stylizer(out, device, dtype)
        training = {"steps": steps, "train_s": train_s}
        outputs = run_generator(gen, held_out, device, dtype)
        candidates[METHOD_NAMES[way]] = (outputs, training)
        if way == "unpaired":
            candidates["ours: colour path only"] = (
                run_generator(ColourPathOnly(getattr(gen, "generator", gen)), held_out, device,
                              dtype), {})
            if args.stabilize:
                stabilizer = Stabilizer(args.stabilize)
                candidates[stabilized_name(args)] = (
                    [stabilizer(frame, out) for frame, out in zip(held_out, outputs)], {})
        if args.save_images:
            sample = np.hstack([held_out[-1], outputs[-1], targets[-1]])
            cv2.imwrite(os.path.join(work, f"{name}-{way}.png"),
                        cv2.cvtColor(sample, cv2.COLOR_RGB2BGR))
    rows = []
    for method, (outputs, training) in candidates.items():
        row = {"filter": name, "method": method, **scores(outputs, targets, held_out), **training}
        row["warp"] /= target_warp
        rows.append(row)
    return rows


def print_table(rows: list[dict], args, clip: str) -> None:
    print(f"\nKnown-style benchmark: draft preset, {args.minutes if args.steps is None else args.steps}"
          f" {'minutes' if args.steps is None else 'steps'} per filter, footage "
          f"{os.path.basename(clip)}, {len(HELD_OUT_FRAMES)} held-out frames, torch threads "
          f"{torch.get_num_threads()}\n")
    print("| filter | method | GC | PSNR dB | SSIM | warp err / f(A) | steps |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        steps = f"{row['steps']} in {row['train_s']:.0f} s" if "steps" in row else ""
        print(f"| {row['filter']} | {row['method']} | {row['gc']:.3f} | {row['psnr']:.2f} | "
              f"{row['ssim']:.3f} | {row['warp']:.2f} | {steps} |")
    print()
    by = {(r["filter"], r["method"]): r for r in rows}
    for name in args.filters:
        transfer = by[(name, "colour transfer (Reinhard)")]["gc"]
        for way in args.ways:
            ours = by[(name, METHOD_NAMES[way])]
            verdict = "beats" if ours["gc"] > transfer else "does NOT beat"
            print(f"{name}, {way}: GC {ours['gc']:.3f} {verdict} colour transfer {transfer:.3f}; "
                  f"warp ratio {ours['warp']:.2f}")
        if {"unpaired", "no-temporal"} <= set(args.ways):
            without = by[(name, METHOD_NAMES["no-temporal"])]
            withs = [("the temporal term", by[(name, METHOD_NAMES["unpaired"])])]
            if args.stabilize:
                withs.append((f"the term and stabilize {args.stabilize:g}",
                              by[(name, stabilized_name(args))]))
            for what, with_terms in withs:
                print(f"{name}: {what} changes the warp ratio {without['warp']:.2f} -> "
                      f"{with_terms['warp']:.2f} ({with_terms['warp'] / without['warp'] - 1:+.0%})"
                      f" and GC by {with_terms['gc'] - without['gc']:+.3f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=5.0, help="training time per filter")
    budget.add_argument("--steps", type=int, help="train a fixed number of steps instead")
    parser.add_argument("--filters", default="grade,stylization,posterize",
                        help=f"comma list from {', '.join(FILTERS)}")
    parser.add_argument("--ways", default=",".join(WAYS),
                        help=f"how the style is learned, comma list from {', '.join(WAYS)}")
    parser.add_argument("--stabilize", type=float, default=0.7,
                        help="stabilization strength for the extra stabilized row (0: no row)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--samples", help="folder with vtest.avi (default: .cache/samples)")
    parser.add_argument("--work", help="folder for style clips and models (default: a temp folder)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-images", action="store_true",
                        help="write input | ours | target images to the work folder")
    args = parser.parse_args(argv)
    if args.steps is not None:
        args.minutes = None
    args.filters = [f.strip() for f in args.filters.split(",") if f.strip()]
    unknown = set(args.filters) - set(FILTERS)
    if unknown:
        parser.error(f"unknown filter(s): {', '.join(sorted(unknown))}")
    args.ways = [w.strip() for w in args.ways.split(",") if w.strip()]
    if set(args.ways) - set(WAYS):
        parser.error(f"unknown way(s): {', '.join(sorted(set(args.ways) - set(WAYS)))}")
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="gan-quality-") as tmp:
        work = args.work or tmp
        os.makedirs(work, exist_ok=True)
        clip = footage_clip(args.samples, work)
        rows = []
        for name in args.filters:
            rows += benchmark_filter(name, clip, work, args)
        print_table(rows, args, clip)


if __name__ == "__main__":
    main()
