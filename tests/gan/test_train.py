"""Training: learns a colour grade within seconds, style file round trip, checkpoints, resume,
cancel, and refusals. Clips are small synthetic MJPG videos made here."""

import json
import os

import cv2
import numpy as np
import pytest
import torch

from gan import models, texture_strength
from gan.device import pick_device
from gan.frames import open_frames
from gan.metrics import gap_closure
from gan.protocol import CancelledError, CancelToken, Reporter, SourceSpec, TrainJob, UserError
from gan.stylefile import load_style, read_style_info
from gan.train import CHECKPOINT_NAME, load_checkpoint, train

SIZE = (80, 64)  # width, height


def footage_frame(i: int, seed: int = 0) -> np.ndarray:
    """RGB: soft colour blobs and a moving disc, different for every (seed, i)."""
    rng = np.random.default_rng(seed * 1000 + i)
    small = rng.integers(20, 236, (4, 5, 3), dtype=np.uint8)
    image = cv2.resize(small, SIZE, interpolation=cv2.INTER_CUBIC)
    cv2.circle(image, (10 + 4 * i, 32), 9, tuple(int(v) for v in rng.integers(0, 256, 3)), -1)
    return image


def grade(rgb: np.ndarray) -> np.ndarray:
    """A strong per-pixel colour grade: warm, contrasty, blue pushed down."""
    x = rgb.astype(np.float32) / 255
    x = x * x * (3 - 2 * x)
    x = x * np.array([1.15, 0.95, 0.6], np.float32) + np.array([0.05, 0.02, 0.1], np.float32)
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)


def write_clip(path, frames) -> str:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return str(path)


class Recorder(Reporter):
    def __init__(self, on_event=None):
        self.events = []
        self.on_event = on_event

    def emit(self, event, **fields):
        self.events.append((event, fields))
        if self.on_event:
            self.on_event(event, fields)

    def named(self, name):
        return [fields for event, fields in self.events if event == name]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    footage = write_clip(folder / "footage.avi", [footage_frame(i, seed=1) for i in range(12)])
    style = write_clip(folder / "graded.avi", [grade(footage_frame(i, seed=2)) for i in range(12)])
    return footage, style


def make_job(clips, out, **settings):
    footage, style = clips
    fields = dict(style=[SourceSpec(style)], content=[SourceSpec(footage, list(range(10)))],
                  out=str(out), steps=6, crop=32, batch=2, seed=0)
    fields.update(settings)
    return TrainJob(**fields)


@pytest.fixture(scope="module")
def trained(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "graded.ganstyle"
    reporter = Recorder()
    path = train(make_job(clips, out, steps=12), reporter, CancelToken())
    return path, reporter


def test_training_learns_a_colour_grade(trained, clips):
    path, _ = trained
    gen, _ = models.load_generator(path, torch.device("cpu"), torch.float32)
    held_out = np.stack([footage_frame(i, seed=1) for i in (10, 11)])  # not trained on
    with torch.no_grad():
        x = torch.from_numpy(held_out).permute(0, 3, 1, 2).float() / 255
        out = (gen(x).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
    target = np.stack([grade(f) for f in held_out])
    assert gap_closure(out, target, held_out) > 0.4  # identity scores 0


def test_style_file_round_trip(trained):
    path, _ = trained
    info = read_style_info(path)
    assert info.meta["name"] == "graded" and info.meta["preset"] == "draft"
    assert info.meta["steps"] == 12 and info.meta["sources"] == ["graded.avi"]
    assert info.meta["created"][:2] == "20" and info.thumbnail_png.startswith(b"\x89PNG")
    state = load_checkpoint(os.path.join(path + ".work", CHECKPOINT_NAME))
    assert state["step"] == 12
    in_training = models.build_generator(json.loads(state["arch"]))  # the weights' average
    in_training.load_state_dict({k[len("module."):]: v for k, v in state["ema"].items()
                                 if k.startswith("module.")})
    # learned from a clip without keyframes: the style file adds tone curves to the output
    assert info.arch["tone_curves"] and info.arch["version"] == 5
    loaded, _ = models.load_generator(path, torch.device("cpu"), torch.float32)
    x = torch.rand(1, 3, 48, 72)
    with torch.no_grad():
        assert torch.allclose(loaded(x), loaded.tone(in_training.eval()(x)), atol=1e-5)


def test_events_previews_and_loss_plot(trained):
    path, reporter = trained
    start = reporter.named("start")[0]
    assert start["kind"] == "train" and start["total"] == 12
    assert start["device"] == pick_device("auto").type
    assert start["threads"] == torch.get_num_threads()
    progress = reporter.named("progress")
    assert progress[-1]["done"] == 12 and progress[-1]["fraction"] == 1.0
    assert {"gan", "nce", "colour", "d"} <= set(progress[-1]["losses"])
    previews = reporter.named("preview")
    assert previews and all(os.path.isfile(p["path"]) for p in previews)
    preview = cv2.imread(previews[-1]["path"])
    assert preview.shape[1] == 2 * 256  # input | output
    assert cv2.imread(os.path.join(path + ".work", "loss.png")) is not None
    assert reporter.named("checkpoint")[-1]["step"] == 12


def test_checkpoint_holds_plain_data_only(trained):
    path, _ = trained
    state = torch.load(os.path.join(path + ".work", CHECKPOINT_NAME), weights_only=True)
    assert state["step"] == 12 and state["opt_g"]["state"]


def test_style_file_holds_the_moving_average_of_the_weights(trained):
    """The style is the average of the last steps' weights, not the last step's own."""
    path, _ = trained
    state = load_checkpoint(os.path.join(path + ".work", CHECKPOINT_NAME))  # tensors on the CPU
    assert int(state["ema"]["n_averaged"]) == 12
    averaged = {k[len("module."):]: v for k, v in state["ema"].items() if k.startswith("module.")}
    weights = load_style(path)[1]
    assert weights.keys() == {*state["generator"].keys(), "tone.values"}  # + the fitted curves
    last_layer = "decoder.4.weight"  # the texture path's output layer, which starts at zero
    assert torch.equal(weights[last_layer], averaged[last_layer])
    assert not torch.equal(weights[last_layer], state["generator"][last_layer])


def test_cancel_saves_a_checkpoint_and_resume_continues(clips, tmp_path):
    out = tmp_path / "resumed.ganstyle"
    cancel = CancelToken()
    # cancel as soon as the first step has reported progress
    reporter = Recorder(lambda event, _: cancel.request() if event == "progress" else None)
    with pytest.raises(CancelledError):
        train(make_job(clips, out, steps=5), reporter, cancel)
    assert not out.exists()
    checkpoint = load_checkpoint(str(tmp_path / "resumed.ganstyle.work" / CHECKPOINT_NAME))
    assert checkpoint["step"] == 1
    assert reporter.named("checkpoint")[-1]["step"] == 1

    reporter = Recorder()
    path = train(make_job(clips, out, steps=5, resume=True), reporter, CancelToken())
    assert reporter.named("start")[0]["step"] == 1
    assert [p["done"] for p in reporter.named("progress")][0] == 2
    assert read_style_info(path).meta["steps"] == 5
    state = load_checkpoint(str(tmp_path / "resumed.ganstyle.work" / CHECKPOINT_NAME))
    assert state["step"] == 5
    assert int(state["opt_g"]["state"][0]["step"]) == 5  # optimizer state carried over
    assert int(state["ema"]["n_averaged"]) == 5  # and the weights' average


def test_still_image_style(clips, tmp_path):
    painting = tmp_path / "painting.png"
    cv2.imwrite(str(painting), cv2.cvtColor(grade(footage_frame(0, seed=5)), cv2.COLOR_RGB2BGR))
    path = train(make_job(clips, tmp_path / "still.ganstyle", style=[SourceSpec(str(painting))],
                          steps=2), Recorder(), CancelToken())
    assert read_style_info(path).meta["sources"] == ["painting.png"]


def test_refusals_happen_before_training(clips, tmp_path):
    footage, _ = clips
    existing = tmp_path / "taken.ganstyle"
    existing.write_bytes(b"not mine")
    with pytest.raises(UserError, match="already exists"):
        train(make_job(clips, existing), Recorder(), CancelToken())
    assert existing.read_bytes() == b"not mine"
    assert not (tmp_path / "taken.ganstyle.work").exists()

    with pytest.raises(UserError, match="nothing to resume"):
        train(make_job(clips, tmp_path / "new.ganstyle", resume=True), Recorder(), CancelToken())

    missing = make_job(clips, tmp_path / "a.ganstyle", style=[SourceSpec(str(tmp_path / "no.avi"))])
    with pytest.raises(UserError):
        train(missing, Recorder(), CancelToken())

    missing_gpu = f"cuda:{torch.cuda.device_count()}"  # one more GPU than there is, anywhere
    with pytest.raises(UserError, match=missing_gpu):
        train(make_job(clips, tmp_path / "b.ganstyle", device=missing_gpu), Recorder(),
              CancelToken())
    assert not (tmp_path / "b.ganstyle.work").exists()

    work = tmp_path / "c.ganstyle.work"
    work.mkdir()
    (work / CHECKPOINT_NAME).write_bytes(b"old run")
    with pytest.raises(UserError, match="checkpoint"):
        train(make_job(clips, tmp_path / "c.ganstyle"), Recorder(), CancelToken())
    with pytest.raises(UserError, match="not a usable checkpoint") as caught:
        train(make_job(clips, tmp_path / "c.ganstyle", resume=True), Recorder(), CancelToken())
    assert "\n" not in str(caught.value)  # torch's multi-line advice is cut to its first line


def stripes_painting(path, period=6, size=96) -> str:
    """A 'painting' of bold diagonal strokes in two colours."""
    ys, xs = np.mgrid[0:size, 0:size]
    strokes = ((xs + ys) // (period // 2)) % 2 == 0
    image = np.where(strokes[..., None], np.array([200, 60, 30], np.uint8),
                     np.array([30, 40, 160], np.uint8))
    cv2.imwrite(str(path), cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2BGR))
    return str(path)


def test_auto_keyframes_are_painted_learned_and_reused_on_resume(clips, tmp_path):
    """Footage frames are painted with the style's patches into the work folder, the model is
    the keyframe (full-band) kind, and a resumed training reads those frames instead of
    painting them again."""
    painting = stripes_painting(tmp_path / "strokes.png")
    out = tmp_path / "auto.ganstyle"
    cancel = CancelToken()
    reporter = Recorder(lambda event, _: cancel.request() if event == "progress" else None)
    job = make_job(clips, out, style=[SourceSpec(painting)], auto_keyframes=2, steps=4)
    with pytest.raises(CancelledError):
        train(job, reporter, cancel)
    folder = tmp_path / "auto.ganstyle.work" / "auto_keyframes"
    painted = sorted(os.listdir(folder))
    assert len(painted) == 2
    logs = [f["message"] for f in reporter.named("log")]
    assert sum("painting keyframe" in m for m in logs) == 2
    footage, _ = clips
    first = cv2.cvtColor(cv2.imread(str(folder / painted[0])), cv2.COLOR_BGR2RGB)
    with open_frames(footage, [0]) as source:
        frame = source.read(0)
    assert first.shape == frame.shape
    # painted with the strokes' two colours: far from the footage, and striped
    assert np.abs(first.astype(int) - frame.astype(int)).mean() > 20
    assert np.abs(np.diff(first.astype(int), axis=1)).mean() > \
        2 * np.abs(np.diff(frame.astype(int), axis=1)).mean()

    stamps = [os.stat(folder / name).st_mtime_ns for name in painted]
    reporter = Recorder()
    path = train(make_job(clips, out, style=[SourceSpec(painting)], auto_keyframes=2, steps=4,
                          resume=True), reporter, CancelToken())
    assert not any("painting keyframe" in f["message"] for f in reporter.named("log"))
    assert [os.stat(folder / name).st_mtime_ns for name in painted] == stamps
    arch = read_style_info(path).arch
    assert arch["full_band"] and arch["detail_gain"]
    assert "keyframe" in reporter.named("progress")[-1]["losses"]


def test_a_still_style_gets_auto_keyframes_and_a_clip_does_not(clips, trained, tmp_path):
    """By default a painting (a still) is learned through painted footage frames; a clip's
    frames teach its look unpaired, as before."""
    painting = stripes_painting(tmp_path / "strokes.png")
    reporter = Recorder()
    path = train(make_job(clips, tmp_path / "still.ganstyle", style=[SourceSpec(painting)],
                          steps=2), reporter, CancelToken())
    logs = [f["message"] for f in reporter.named("log")]
    assert sum("painting keyframe" in m for m in logs) == 3
    info = read_style_info(path)
    assert info.arch.get("full_band") is True
    # the painted frames hold the layout; the strokes are asked of the painting itself
    assert info.meta["settings"]["patch_against_style"] is True
    assert info.meta["settings"]["patch_weight"] > 0
    assert "patch" in reporter.named("progress")[-1]["losses"]
    # the texture strength is fitted to the painting's: the strokes' gain folded into the last
    # layer, their grain's in the model's description. The style file holds the checkpoint's
    # averaged weights, that layer times the strokes' gain.
    gains = info.meta["texture_gains"]
    coarse, fine = gains["coarse"], gains["fine"]
    for gain in (coarse, fine):  # on the fit's grid
        assert min(texture_strength.GAINS) <= gain <= max(texture_strength.GAINS)
        assert (gain / texture_strength.STEP).is_integer()
    assert f"texture strength fitted to the style: strokes x{coarse:g}, their grain x{fine:g}" \
        in logs
    assert info.arch.get("fine_gain", 1.0) == pytest.approx(fine / coarse)
    _, tensors = load_style(path)
    averaged = {k.removeprefix("module."): v for k, v in
                load_checkpoint(str(tmp_path / "still.ganstyle.work" / CHECKPOINT_NAME))["ema"].items()}
    last = max((k for k in tensors if k.startswith("decoder.") and k.endswith("weight")),
               key=lambda k: int(k.split(".")[1]))
    for name, value in tensors.items():
        if name in averaged:
            expected = averaged[name] * coarse if name.startswith(last.rsplit(".", 1)[0]) \
                else averaged[name]
            assert torch.allclose(value.float(), expected.float(), atol=1e-7), name

    clip_style, clip_reporter = trained
    assert not any("painting keyframe" in f["message"] for f in clip_reporter.named("log"))
    assert not read_style_info(clip_style).arch.get("full_band")
    # no patch term, nothing fitted
    assert read_style_info(clip_style).meta["texture_gains"] == {"coarse": 1.0, "fine": 1.0}
    assert not any("texture strength" in f["message"] for f in clip_reporter.named("log"))
