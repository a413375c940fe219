"""Speed benchmark: 1080p stylizing throughput, training steps/s, and memory vs clip length.

    .venv/bin/python benchmarks/speed.py                 # ~10 minutes on a 2-core CPU
    .venv/bin/python benchmarks/speed.py --frames 4 --rounds 1 --presets draft   # a quick look

For each preset, with a randomly initialised generator saved as a style file (speed does not
depend on the weights), in one run and interleaved round by round so that other load on the
machine hits every contender alike:
- model alone: the inference stage of gan.stylize on frames already in memory;
- end to end: gan.stylize.stylize() on a 1080p MJPG clip (decode + model + PNG encode);
- stabilized: the same with stabilize=STABILIZE (flow-guided blending with the previous frame);
- naive: a per-frame fp32 loop without channels_last, writing PNGs at OpenCV's defaults
  (in a fresh process, so it does not profit from the allocator tuning of gan.stylize).
Then training steps/s of gan.train's Trainer.train_step, and the peak RSS of stylize() in a child
process for a clip and one 4x as long (it must not grow with the clip).
Targets: end-to-end / model-alone >= 0.85 and end-to-end / naive >= 3.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from gan import frames, models, stylefile  # noqa: E402
from gan.device import pick_device  # noqa: E402
from gan.protocol import (CancelToken, Reporter, SourceSpec, StylizeJob,  # noqa: E402
                          TrainJob)
from gan.stylize import FrameStylizer, stylize  # noqa: E402

TARGET_MODEL_RATIO = 0.85
TARGET_NAIVE_RATIO = 3.0
STABILIZE = 0.7


# -- inputs ---------------------------------------------------------------------------------------

def make_clip(path: str, count: int, size: tuple[int, int], seed: int = 0) -> str:
    """Textured, moving content (flat frames would flatter the PNG encoder)."""
    width, height = size
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (height // 24, width // 24, 3), dtype=np.uint8),
                      (width, height), interpolation=cv2.INTER_CUBIC)
    grain = rng.integers(-12, 13, (height, width, 3), dtype=np.int16)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write MJPG here")
    for i in range(count):
        frame = np.roll(base, 9 * i, axis=1)
        frame = np.clip(frame + np.roll(grain, i, axis=0), 0, 255).astype(np.uint8)
        cv2.circle(frame, ((120 + 40 * i) % width, height // 2), height // 6, (240, 240, 240), -1)
        cv2.putText(frame, f"frame {i}", (40, height - 60), cv2.FONT_HERSHEY_SIMPLEX,
                    height / 400, (20, 20, 20), max(1, height // 200))
        writer.write(frame)
    writer.release()
    return path


def make_style(folder: str, preset: str) -> str:
    torch.manual_seed(0)
    arch = models.generator_arch(preset)
    generator = models.build_generator(arch)
    path = os.path.join(folder, f"{preset}.ganstyle")
    stylefile.save_style(path, arch=arch, state_dict=generator.state_dict(),
                         meta={"name": f"random {preset}", "preset": preset})
    return path


class StartClock(Reporter):
    """Times from the "start" event (model loaded, source open) to the end of the job."""

    def __init__(self) -> None:
        self.started: float | None = None

    def emit(self, event: str, **fields) -> None:
        if event == "start" and self.started is None:
            self.started = time.perf_counter()


# -- contenders -----------------------------------------------------------------------------------

def model_alone(stylizer: FrameStylizer, images: list[np.ndarray]) -> float:
    """Seconds for the inference stage over frames already in memory, batched as stylize does."""
    batch = stylizer.plan(*images[0].shape[:2]).batch
    began = time.perf_counter()
    for i in range(0, len(images), batch):
        stylizer(images[i:i + batch])
    return time.perf_counter() - began


def end_to_end(style: str, clip: str, output: str, stabilize: float = 0.0,
               device: str = "auto") -> float:
    clock = StartClock()
    stylize(StylizeJob(model=style, input=SourceSpec(clip), output=output, stabilize=stabilize,
                       device=device), clock, CancelToken())
    return time.perf_counter() - clock.started


def naive(style: str, clip: str, output: str, device: str) -> float:
    """Seconds for the naive loop, in a fresh process (this one has tuned its allocator)."""
    return _child(["--child-naive", style, clip, output, "--device", device])["seconds"]


def _naive_loop(style: str, clip: str, output: str, device_name: str) -> float:
    """What a first attempt looks like: fp32, NCHW, one frame at a time, nothing overlapped
    (on the same device as ours)."""
    device = pick_device(device_name)
    info, tensors = stylefile.load_style(style)
    generator = models.build_generator(info.arch)
    generator.load_state_dict({k: v.float() for k, v in tensors.items()})
    generator.to(device).eval()
    os.makedirs(output)
    capture = cv2.VideoCapture(clip)
    began = time.perf_counter()
    index = 0
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        x = torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)[None]
        with torch.no_grad():
            y = generator(x.to(device).float() / 255.0)
        rgb = (y[0].permute(1, 2, 0) * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).cpu().numpy()
        cv2.imwrite(os.path.join(output, f"frame_{index:06d}.png"),
                    cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        index += 1
    capture.release()
    return time.perf_counter() - began


def training_rate(preset: str, steps: int, folder: str, device: str) -> float | None:
    """Steady-state steps/s of gan.train's Trainer.train_step (after one warm-up step; the
    colour fit, previews and checkpoints of a real run are left out)."""
    try:
        from gan.train import Trainer
    except ImportError as exc:
        print(f"  training: skipped ({exc})")
        return None
    content = make_clip(os.path.join(folder, f"content-{preset}.avi"), 24, (640, 360), seed=1)
    style = make_clip(os.path.join(folder, f"style-{preset}.avi"), 24, (640, 360), seed=2)
    job = TrainJob(style=[SourceSpec(style)], content=[SourceSpec(content)],
                   out=os.path.join(folder, f"trained-{preset}.ganstyle"), preset=preset,
                   steps=steps + 1, seed=0, device=device)
    trainer = Trainer(job, StartClock(), CancelToken())
    try:
        trainer.build(trainer.check_paths())
        trainer.started = time.monotonic()
        for step in range(steps + 1):
            if step == 1:
                began = time.perf_counter()
            trainer.train_step()
            trainer.step += 1
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        return steps / (time.perf_counter() - began)
    finally:
        trainer.close()


def peak_rss_mb(style: str, clip: str, output: str, device: str) -> float:
    """Peak resident memory of a fresh process that stylizes the clip."""
    return _child(["--child-rss", style, clip, output, "--device", device])["peak_rss_mb"]


def _child(args: list[str]) -> dict:
    result = subprocess.run([sys.executable, os.path.abspath(__file__), *args],
                            capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"benchmark child {args[0]} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _peak_rss_mb() -> float:
    """This process's peak RSS. /proc's VmHWM, because ru_maxrss of a child started with vfork
    (Python's subprocess does) includes the parent's peak."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, else KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


# -- the run --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=6, help="1080p frames per round (6)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (2)")
    parser.add_argument("--naive-frames", type=int, default=2, help="frames per naive round (2)")
    parser.add_argument("--presets", default="draft,standard")
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--train-steps", type=int, default=10, help="0 skips training")
    parser.add_argument("--train-presets", default="draft")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--memory-frames", type=int, default=6,
                        help="short clip for the memory check; the long one is 4x (0 skips)")
    for child in ("--child-rss", "--child-naive"):
        parser.add_argument(child, nargs=3, metavar=("STYLE", "CLIP", "OUT"),
                            help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_rss:
        end_to_end(*args.child_rss, device=args.device)
        print(json.dumps({"peak_rss_mb": round(_peak_rss_mb(), 1)}))
        return 0
    if args.child_naive:
        print(json.dumps({"seconds": _naive_loop(*args.child_naive, args.device)}))
        return 0

    size = tuple(int(v) for v in args.size.lower().split("x"))
    presets = [p for p in args.presets.split(",") if p]
    rows = []
    with tempfile.TemporaryDirectory(prefix="gan-speed-") as tmp:
        clip = make_clip(os.path.join(tmp, "clip.avi"), args.frames, size)
        naive_clip = make_clip(os.path.join(tmp, "naive.avi"), args.naive_frames, size)
        with frames.open_frames(clip) as source:
            images = [rgb for _, rgb in source]
        for preset in presets:
            style = make_style(tmp, preset)
            stylizer = FrameStylizer.from_job(StylizeJob(model=style, input=SourceSpec(clip),
                                                         output=tmp, device=args.device))
            stylizer(images[:1])  # warm-up: first-call allocations are not throughput
            timing = {"model": [], "e2e": [], "stabilized": [], "naive": []}
            for round_ in range(args.rounds):
                timing["model"].append(args.frames / model_alone(stylizer, images))
                timing["e2e"].append(args.frames / end_to_end(
                    style, clip, os.path.join(tmp, f"e2e-{preset}-{round_}"), device=args.device))
                timing["stabilized"].append(args.frames / end_to_end(
                    style, clip, os.path.join(tmp, f"stab-{preset}-{round_}"), STABILIZE,
                    args.device))
                timing["naive"].append(args.naive_frames / naive(
                    style, naive_clip, os.path.join(tmp, f"naive-{preset}-{round_}"), args.device))
                print(f"  {preset} round {round_ + 1}: " + ", ".join(
                    f"{k} {v[-1]:.3f} fps" for k, v in timing.items()), flush=True)
            fps = {k: statistics.median(v) for k, v in timing.items()}
            ratios = [e / m for e, m in zip(timing["e2e"], timing["model"])]
            rows.append((preset, fps, statistics.median(ratios), fps["e2e"] / fps["naive"]))
            device, dtype = stylizer.device, str(stylizer.dtype).replace("torch.", "")
            del stylizer

        train_rates = {}
        if args.train_steps:
            for preset in (p for p in args.train_presets.split(",") if p):
                train_rates[preset] = training_rate(preset, args.train_steps, tmp, args.device)

        memory = None
        if args.memory_frames:
            style = os.path.join(tmp, f"{presets[0]}.ganstyle")
            short = make_clip(os.path.join(tmp, "short.avi"), args.memory_frames, size)
            long = make_clip(os.path.join(tmp, "long.avi"), 4 * args.memory_frames, size)
            memory = (peak_rss_mb(style, short, os.path.join(tmp, "rss-short"), args.device),
                      peak_rss_mb(style, long, os.path.join(tmp, "rss-long"), args.device))

    print()
    print(f"Stylize {size[0]}x{size[1]}, frames/s (median of {args.rounds} interleaved rounds; "
          f"{args.frames} frames, naive {args.naive_frames}; {device}, {dtype}, "
          f"torch threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} CPUs)")
    print(f"{'preset':<10}{'model alone':>12}{'end to end':>12}{'stabilized':>12}{'naive':>10}"
          f"{'e2e/model':>11}{'e2e/naive':>11}{'stab/e2e':>10}")
    for preset, fps, model_ratio, naive_ratio in rows:
        print(f"{preset:<10}{fps['model']:>12.3f}{fps['e2e']:>12.3f}{fps['stabilized']:>12.3f}"
              f"{fps['naive']:>10.3f}{model_ratio:>11.2f}{naive_ratio:>10.1f}x"
              f"{fps['stabilized'] / fps['e2e']:>10.2f}")
    print(f"stabilized: end to end with stabilize={STABILIZE}")
    print(f"targets: e2e/model >= {TARGET_MODEL_RATIO}, e2e/naive >= {TARGET_NAIVE_RATIO:.0f}x")
    for preset, rate in train_rates.items():
        if rate is not None:
            print(f"training {preset}: {rate:.2f} steps/s (gan.train.Trainer.train_step, "
                  f"{args.train_steps} steps)")
    if memory:
        print(f"peak RSS stylize {presets[0]}: {args.memory_frames} frames {memory[0]:.0f} MB, "
              f"{4 * args.memory_frames} frames {memory[1]:.0f} MB "
              f"(x{memory[1] / memory[0]:.2f}; must not grow with clip length)")
    failed = [p for p, _, m, n in rows if m < TARGET_MODEL_RATIO or n < TARGET_NAIVE_RATIO]
    if failed:
        print(f"below target: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
