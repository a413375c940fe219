"""Render-farm job bundles (gan/farm.py): `openjd check` accepts the template, `openjd run` (the
session library of Deadline Cloud's workers) runs it here, and its chunked frames equal one
`python -m gan stylize` run, with and without Stabilize. Bad input is reported per task in one
line, and a re-run redoes only the missing frames."""

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from gan import farm
from gan.stabilize import preroll_frames
from test_video_styles import flickering_style, noisy_pan, read_png  # noqa: F401 (fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPENJD = os.path.join(os.path.dirname(sys.executable), "openjd")
FRAMES = 24
CHUNK = 6
# Stabilize 0.5 starts a chunk 9 frames early (preroll_frames): the chunks 12-17 and 18-23 then
# begin inside the run, not at its start, so the test sees the seam if there is one. What a
# cold start leaves in the stabilizer's (float) state is below half a grey level after the
# pre-roll, so a frame can differ by one level only where the single run's value lies within
# that distance of a rounding boundary (measured: 0.10% of the values here, 0.009% on
# vtest.avi at 0.7; docs/decisions.md). A cold start differs by up to 30-47 levels.
STABILIZE = 0.5
TOLERANCE_MAX = 1
TOLERANCE_SHARE = 0.005


def gan(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "gan", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def openjd(*args, cwd=None):
    return subprocess.run([OPENJD, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def make_bundle(tmp_path, style, source, stabilize=0.0, name="bundle", frames=f"0-{FRAMES - 1}"):
    done = gan("farm-job", "--model", style, "--input", source, "--frames", frames,
               "--output", tmp_path / f"{name}_out", "--bundle", tmp_path / name,
               "--chunk-size", CHUNK, "--stabilize", stabilize, "--device", "cpu",
               "--python", sys.executable)
    assert done.returncode == 0, done.stderr
    return str(tmp_path / name), str(tmp_path / f"{name}_out")


def run_bundle(bundle, *extra):
    """`openjd run` with the bundle's own parameter values (what Deadline Cloud submits)."""
    with open(os.path.join(bundle, "parameter_values.yaml"), encoding="utf-8") as handle:
        values = yaml.safe_load(handle)["parameterValues"]
    params = [arg for v in values for arg in ("-p", f"{v['name']}={v['value']}")]
    return openjd("run", "template.yaml", *params, *extra, cwd=bundle)


def error_lines(result):
    return [line.split("\t", 1)[-1] for line in result.stdout.splitlines()
            if line.split("\t", 1)[-1].startswith("error: ")]


@pytest.fixture(scope="module")
def pan(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pan frames")
    noisy_pan(folder, count=FRAMES)
    return str(folder)


def frame_files(folder):
    return sorted(f for f in os.listdir(folder) if f.startswith("frame_"))


def compare(a_folder, b_folder):
    """(max difference, share of differing pixel values) over all frames of both folders."""
    names = frame_files(a_folder)
    assert names == frame_files(b_folder) == [f"frame_{i:06d}.png" for i in range(FRAMES)]
    worst, differing, total = 0, 0, 0
    for name in names:
        diff = np.abs(read_png(os.path.join(a_folder, name)).astype(int)
                      - read_png(os.path.join(b_folder, name)))
        worst = max(worst, int(diff.max()))
        differing += int((diff > 0).sum())
        total += diff.size
    return worst, differing / total


@pytest.mark.parametrize("stabilize", [0.0, STABILIZE])
def test_the_bundle_runs_in_chunks_like_a_single_run(flickering_style, pan, tmp_path,
                                                     stabilize):
    bundle, out = make_bundle(tmp_path, flickering_style, pan, stabilize)
    assert sorted(os.listdir(bundle)) == ["asset_references.yaml", "engine",
                                          "parameter_values.yaml", "sources", "style",
                                          "template.yaml"]
    checked = openjd("check", os.path.join(bundle, "template.yaml"))
    assert checked.returncode == 0 and "passes validation" in checked.stdout, checked.stdout
    with open(os.path.join(bundle, "asset_references.yaml"), encoding="utf-8") as handle:
        assets = yaml.safe_load(handle)["assetReferences"]
    assert assets["inputs"]["directories"] == [pan] and assets["outputs"]["directories"] == [out]

    result = run_bundle(bundle)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Chunks run: 5" in result.stdout  # 4 chunks of 6 frames, then the check
    assert f"all {FRAMES} frames are in {out}" in result.stdout
    single = gan("stylize", "--model", flickering_style, "--input", pan, "--device", "cpu",
                 "--output", tmp_path / "single", "--stabilize", stabilize)
    assert single.returncode == 0, single.stderr
    worst, share = compare(out, str(tmp_path / "single"))
    if stabilize == 0:
        assert worst == 0  # every frame on its own: bit-identical
    else:
        assert preroll_frames(stabilize) < 2 * CHUNK  # the last chunks really start mid-run
        print(f"chunked vs single run, Stabilize {stabilize}: max {worst}, share {share:.5f}")
        assert worst <= TOLERANCE_MAX and share <= TOLERANCE_SHARE, (worst, share)


def test_a_chunk_without_its_preroll_shows_the_seam(flickering_style, pan, tmp_path):
    """What the pre-roll is for: the chunk 10-19 run cold differs from the single run."""
    full = gan("stylize", "--model", flickering_style, "--input", pan, "--device", "cpu",
               "--output", tmp_path / "single", "--stabilize", STABILIZE, "--frames", "0-19")
    cold = gan("stylize", "--model", flickering_style, "--input", pan, "--device", "cpu",
               "--output", tmp_path / "cold", "--stabilize", STABILIZE, "--frames", "10-19")
    warm = gan("stylize", "--model", flickering_style, "--input", pan, "--device", "cpu",
               "--output", tmp_path / "warm", "--stabilize", STABILIZE, "--frames", "10-19",
               "--run-frames", "0-23")
    assert full.returncode == cold.returncode == warm.returncode == 0
    assert "9 more stylized without writing" in warm.stderr
    name = "frame_000010.png"
    single = read_png(tmp_path / "single" / name).astype(int)
    assert np.abs(read_png(tmp_path / "cold" / name) - single).max() > 4 * TOLERANCE_MAX
    assert np.abs(read_png(tmp_path / "warm" / name) - single).max() <= TOLERANCE_MAX


def test_missing_style_and_media_are_one_line_per_task(flickering_style, pan, tmp_path):
    bundle, _ = make_bundle(tmp_path, flickering_style, pan)
    missing_media = str(tmp_path / "gone" / "clip.mov")
    result = run_bundle(bundle, "-p", f"Input1={missing_media}")
    assert result.returncode != 0
    assert error_lines(result) == [f"error: not found: {missing_media}"]

    style = os.path.join(bundle, "style", os.path.basename(flickering_style))
    os.remove(style)
    result = run_bundle(bundle)
    assert result.returncode != 0
    assert error_lines(result) == [f"error: {style}: style file not found"]


def test_a_failed_chunk_is_reported_and_a_rerun_redoes_only_missing_frames(
        flickering_style, pan, tmp_path):
    import shutil
    media = str(tmp_path / "media")
    shutil.copytree(pan, media)
    broken = os.path.join(media, "0014.png")
    good = open(broken, "rb").read()
    with open(broken, "wb") as handle:
        handle.write(b"not a picture")
    bundle, out = make_bundle(tmp_path, flickering_style, media, STABILIZE)
    result = run_bundle(bundle)
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1 and "0014.png" in lines[0], result.stdout[-2000:]
    finished = frame_files(out)
    assert finished == [f"frame_{i:06d}.png" for i in range(14)]  # what was done is kept

    check = run_bundle(bundle, "--step", "Check 1 media", "--no-run-dependencies")
    assert check.returncode != 0
    assert error_lines(check) == [
        f"error: 10 of {FRAMES} frames are missing in {out}: frame_000014.png, "
        "frame_000015.png, frame_000016.png, frame_000017.png, frame_000018.png and 5 more; "
        "run the job again: only missing frames are stylized"]

    stamps = {name: os.stat(os.path.join(out, name)).st_mtime_ns for name in finished}
    with open(broken, "wb") as handle:
        handle.write(good)
    again = run_bundle(bundle)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "kept 2 finished frames" in again.stdout  # the chunk 12-17
    assert again.stdout.count("all 6 frames exist already") == 2  # the chunks 0-5 and 6-11
    assert {name: os.stat(os.path.join(out, name)).st_mtime_ns for name in finished} == stamps
    single = gan("stylize", "--model", flickering_style, "--input", media, "--device", "cpu",
                 "--output", tmp_path / "single", "--stabilize", STABILIZE)
    assert single.returncode == 0
    worst, share = compare(out, str(tmp_path / "single"))
    assert worst <= TOLERANCE_MAX and share <= TOLERANCE_SHARE


def test_image_lists_and_bad_bundles(flickering_style, pan, tmp_path):
    listing = tmp_path / "names.txt"
    names = sorted(os.listdir(pan))[::-1][:6]  # any order of files in one folder
    listing.write_text("".join(n + "\n" for n in names))
    done = gan("farm-job", "--model", flickering_style, "--input", pan, "--files", listing,
               "--frames", "0-5", "--output", tmp_path / "out", "--bundle", tmp_path / "b",
               "--device", "cpu", "--python", sys.executable, "--chunk-size", 4)
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "b" / "asset_references.yaml", encoding="utf-8") as handle:
        assets = yaml.safe_load(handle)["assetReferences"]
    assert assets["inputs"]["filenames"] == [os.path.join(pan, n) for n in names]
    result = run_bundle(str(tmp_path / "b"))
    assert result.returncode == 0, result.stdout[-3000:]
    single = gan("stylize", "--model", flickering_style, "--input", pan, "--files", listing,
                 "--device", "cpu", "--output", tmp_path / "single")
    assert single.returncode == 0, single.stderr
    assert frame_files(tmp_path / "out") == frame_files(tmp_path / "single")
    for name in frame_files(tmp_path / "out"):
        assert np.array_equal(read_png(tmp_path / "out" / name),
                              read_png(tmp_path / "single" / name))

    again = gan("farm-job", "--model", flickering_style, "--input", pan, "--frames", "0-5",
                "--output", tmp_path / "out2", "--bundle", tmp_path / "b")
    assert again.returncode == 1
    assert again.stderr.strip().endswith("exists already (nothing is overwritten): choose a new "
                                         "folder for the job bundle")
    assert sorted(os.listdir(tmp_path)).count("b") == 1
    for args, message in [
            (["--model", tmp_path / "no.ganstyle", "--frames", "0-5"], "style file not found"),
            (["--model", flickering_style, "--frames", "5-0"], "one ascending range"),
            (["--model", flickering_style, "--frames", "0-5", "--chunk-size", "0"],
             "chunk size must be at least 1")]:
        bad = gan("farm-job", "--input", pan, "--output", tmp_path / "o", "--bundle",
                  tmp_path / "new", *args)
        assert bad.returncode == 1 and message in bad.stderr and bad.stderr.count("\n") == 1
        assert not os.path.exists(tmp_path / "new")
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no staging left


def test_yaml_is_what_it_says():
    document = {"a": ["x", {"b": 1, "c": [], "d": "1.0"}], "e": True, "f": 'say "no": #'}
    assert yaml.safe_load(farm.to_yaml(document)) == document
