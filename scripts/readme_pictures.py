"""Make the README's pictures of the shipped styles and of a keyframe-trained style.

    .venv/bin/python scripts/readme_pictures.py
    .venv/bin/python scripts/readme_pictures.py --keyframes-from WORK   # after
        .venv/bin/python benchmarks/quality.py --ways keyframes --save-images --work WORK

docs/images/shipped_styles.jpg: a frame of vtest.avi and tree.avi (benchmarks/fetch_samples.sh),
as is and with each style of styles/, through the product's own stylizer.
docs/images/keyframes.jpg: the benchmark's held-out frame, its stylization by a style trained from
3 keyframes, and the filter's true result, for each filter the benchmark saved.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from gan.protocol import CancelToken, Reporter, SourceSpec, StylizeJob  # noqa: E402
from gan.stylefile import read_style_info  # noqa: E402
from gan.stylize import stylize  # noqa: E402

SAMPLES = os.path.join(ROOT, ".cache", "samples")
IMAGES = os.path.join(ROOT, "docs", "images")
FRAMES = [("vtest.avi", 120), ("tree.avi", 40)]
TILE_WIDTH = 384


def label(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 22), (0, 0, 0), -1)
    cv2.putText(out, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def fit(image: np.ndarray) -> np.ndarray:
    height = round(image.shape[0] * TILE_WIDTH / image.shape[1])
    return cv2.resize(image, (TILE_WIDTH, height), interpolation=cv2.INTER_AREA)


def stylized(style: str, clip: str, index: int, work: str) -> np.ndarray:
    out = tempfile.mkdtemp(dir=work)
    [path] = stylize(StylizeJob(model=style, input=SourceSpec(clip, [index]), output=out),
                     Reporter(), CancelToken())
    return cv2.imread(path)


def shipped_styles() -> str:
    styles = sorted(glob.glob(os.path.join(ROOT, "styles", "*.ganstyle")))
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for clip_name, index in FRAMES:
            clip = os.path.join(SAMPLES, clip_name)
            capture = cv2.VideoCapture(clip)
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, original = capture.read()
            capture.release()
            if not ok:
                sys.exit(f"cannot read frame {index} of {clip}: run bash benchmarks/fetch_samples.sh")
            tiles = [label(fit(original), "original")]
            for style in styles:
                name = read_style_info(style).name
                tiles.append(label(fit(stylized(style, clip, index, work)), name))
            rows.append(np.hstack(tiles))
    return write("shipped_styles.jpg", np.vstack(rows))


def keyframe_picture(work: str) -> str:
    rows = []
    for path in sorted(glob.glob(os.path.join(work, "*-keyframes.png"))):
        name = os.path.basename(path).rsplit("-", 1)[0]
        strip = cv2.imread(path)
        third = strip.shape[1] // 3
        tiles = [strip[:, i * third:(i + 1) * third] for i in range(3)]
        captions = ["held-out frame", f"ours, from 3 keyframes ({name})", f"true {name}"]
        rows.append(np.hstack([label(fit(t), c) for t, c in zip(tiles, captions)]))
    if not rows:
        sys.exit(f"no *-keyframes.png in {work}: run the benchmark with --save-images")
    return write("keyframes.jpg", np.vstack(rows))


def write(name: str, image: np.ndarray) -> str:
    os.makedirs(IMAGES, exist_ok=True)
    path = os.path.join(IMAGES, name)
    cv2.imwrite(path, image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keyframes-from", metavar="WORK",
                        help="the quality benchmark's work folder (keyframes way, --save-images)")
    args = parser.parse_args(argv)
    print(shipped_styles())
    if args.keyframes_from:
        print(keyframe_picture(args.keyframes_from))


if __name__ == "__main__":
    main()
