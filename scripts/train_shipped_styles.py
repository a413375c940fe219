"""Train the styles that ship with the extension (styles/*.ganstyle), reproducibly.

    bash benchmarks/fetch_samples.sh                          # the sample media (once)
    .venv/bin/python scripts/train_shipped_styles.py           # writes styles/<name>.ganstyle
    .venv/bin/python scripts/train_shipped_styles.py --only Sepia --out /tmp/check

Material: starry_night.jpg (Vincent van Gogh, 1889, public domain; the copy Debian's opencv-doc
carries), as it is, or toned to a sepia print by the code here; scripts/paintings/olive_trees.jpg
(Vincent van Gogh, Olive Trees, 1889, Minneapolis Institute of Art, public domain; from Wikimedia
Commons, scaled to 1024 pixels). Paintings are learned through footage frames painted with their
patches (gan.keyframe_painting), as the product does for any still style. Footage (only looked at, never
shipped): vtest.avi and tree.avi from the same package. Each style is the product's own training
(gan.train, draft preset) with a fixed seed, a fixed step count and one CPU thread, so a rerun
on the same torch version gives the same file up to its creation date.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from gan.protocol import CancelToken, HumanReporter, SourceSpec, TrainJob  # noqa: E402
from gan.train import train  # noqa: E402

SAMPLES = os.path.join(ROOT, ".cache", "samples")
# Every frame: the texture strength is fitted on consecutive frames (the flicker of a stronger
# texture is measured where people walk), so vtest.avi must not be thinned.
FOOTAGE = [("vtest.avi", None), ("tree.avi", None)]
STEPS = 600
SEED = 1889


def starry_night(folder: str) -> str:
    return os.path.join(SAMPLES, "starry_night.jpg")


def olive_trees(folder: str) -> str:
    return os.path.join(ROOT, "scripts", "paintings", "olive_trees.jpg")


def sepia_print(folder: str) -> str:
    """starry_night.jpg toned like an old sepia print: grey levels mapped from dark brown to
    cream, contrast lifted."""
    painting = cv2.imread(os.path.join(SAMPLES, "starry_night.jpg"))
    grey = cv2.cvtColor(painting, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255
    grey = np.clip((grey - 0.5) * 1.3 + 0.55, 0, 1)[..., None]
    dark, light = np.array([20, 35, 60], np.float32), np.array([190, 225, 245], np.float32)  # BGR
    path = os.path.join(folder, "starry_night_sepia.png")
    cv2.imwrite(path, (dark + (light - dark) * grey + 0.5).astype(np.uint8))
    return path


STYLES = {  # name -> how its style image is made
    "Starry Night": starry_night,
    "Sepia": sepia_print,
    "Olive Trees": olive_trees,
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "styles"), help="folder to write to")
    parser.add_argument("--only", choices=STYLES, help="train just this style")
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args(argv)
    missing = [name for name in ("starry_night.jpg", *(f for f, _ in FOOTAGE))
               if not os.path.isfile(os.path.join(SAMPLES, name))]
    if missing:
        sys.exit(f"missing {', '.join(missing)} in {SAMPLES}: run bash benchmarks/fetch_samples.sh")
    torch.set_num_threads(1)  # reproducible (and what a 2-core machine does best beside Blender)
    os.makedirs(args.out, exist_ok=True)
    content = [SourceSpec(os.path.join(SAMPLES, name), list(frames) if frames else None)
               for name, frames in FOOTAGE]
    for name, make_style in STYLES.items():
        if args.only and name != args.only:
            continue
        out = os.path.join(args.out, name.replace(" ", "_") + ".ganstyle")
        with tempfile.TemporaryDirectory(prefix="shipped-style-") as work:
            job = TrainJob(style=[SourceSpec(make_style(work))], content=content, out=out,
                           preset="draft", steps=args.steps, seed=SEED, name=name,
                           work_dir=os.path.join(work, "work"), checkpoint_every_s=1e9,
                           preview_every_s=1e9)
            print(f"training {name} -> {out}", flush=True)
            train(job, HumanReporter(sys.stderr), CancelToken())


if __name__ == "__main__":
    main()
