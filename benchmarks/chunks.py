"""How far chunked stabilized runs (a render farm's tasks) are from one single run.

    .venv/bin/python benchmarks/chunks.py [--footage .cache/samples/vtest.avi] [--frames 80]
        [--chunk 20] [--size 384x288] [--style styles/Starry_Night.ganstyle] [--stabilize 0.5,0.7]

For each strength: one run over all frames, then chunks that start where their run starts
(`run_start`, the farm's pre-roll) and chunks that start cold; prints the largest difference and
the share of differing values against the single run, and the same at each chunk's first frame.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from gan.protocol import CancelToken, Reporter, SourceSpec, StylizeJob  # noqa: E402
from gan.stabilize import preroll_frames  # noqa: E402
from gan.stylize import stylize  # noqa: E402


class Quiet(Reporter):
    def emit(self, event, **fields):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footage", default=os.path.join(ROOT, ".cache/samples/vtest.avi"))
    parser.add_argument("--frames", type=int, default=80)
    parser.add_argument("--chunk", type=int, default=20)
    parser.add_argument("--size", default="384x288")
    parser.add_argument("--style", default=os.path.join(ROOT, "styles/Starry_Night.ganstyle"))
    parser.add_argument("--stabilize", default="0.5,0.7")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    work = tempfile.mkdtemp(prefix="chunks_")
    capture = cv2.VideoCapture(args.footage)
    files = []
    for i in range(args.frames):
        ok, frame = capture.read()
        if not ok:
            break
        files.append(os.path.join(work, f"{i:04d}.png"))
        cv2.imwrite(files[-1], cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA))
    count = len(files)

    def run(output, frames, strength, run_start=None):
        job = StylizeJob(model=args.style, input=SourceSpec(files, frames), output=output,
                         stabilize=strength, device="cpu", run_start=run_start)
        stylize(job, Quiet(), CancelToken())

    for strength in (float(s) for s in args.stabilize.split(",")):
        root = os.path.join(work, f"s{strength}")
        run(os.path.join(root, "single"), None, strength)
        for label, run_start in (("pre-roll", 0), ("cold", None)):
            out = os.path.join(root, label)
            for start in range(0, count, args.chunk):
                run(out, list(range(start, min(count, start + args.chunk))), strength, run_start)
            worst, differing, total, starts = 0, 0, 0, []
            for i in range(count):
                name = f"frame_{i:06d}.png"
                diff = np.abs(cv2.imread(os.path.join(out, name)).astype(int)
                              - cv2.imread(os.path.join(root, "single", name)))
                worst = max(worst, int(diff.max()))
                differing += int((diff > 0).sum())
                total += diff.size
                if i and i % args.chunk == 0:
                    starts.append(f"{int(diff.max())}/{diff.mean():.4f}")
            print(f"stabilize {strength} (pre-roll {preroll_frames(strength)}) {label}: "
                  f"max {worst}, values differing {100 * differing / total:.3f}%, "
                  f"chunk starts max/mean {' '.join(starts)}", flush=True)


if __name__ == "__main__":
    main()
