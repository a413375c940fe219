"""The styles that ship in styles/: each loads, is small, says how it was made, and applies."""

import glob
import importlib.util
import os

import numpy as np
import pytest
import torch

from gan import models
from gan.stylefile import read_style_info

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = sorted(glob.glob(os.path.join(ROOT, "styles", "*.ganstyle")))


def training_script():
    spec = importlib.util.spec_from_file_location(
        "train_shipped_styles", os.path.join(ROOT, "scripts", "train_shipped_styles.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_at_least_two_styles_ship_each_from_the_training_script():
    script = training_script()
    assert len(SHIPPED) >= 2
    names = {read_style_info(path).name for path in SHIPPED}
    assert names == set(script.STYLES)
    for path in SHIPPED:
        assert os.path.basename(path) == read_style_info(path).name.replace(" ", "_") + ".ganstyle"


@pytest.mark.parametrize("path", SHIPPED, ids=os.path.basename)
def test_shipped_style_is_light_documented_and_applies(path):
    assert os.path.getsize(path) < 3_000_000  # keeps the extension zip light
    info = read_style_info(path)
    script = training_script()
    assert info.meta["preset"] == "draft" and info.meta["steps"] == script.STEPS
    assert info.meta["settings"]["seed"] == script.SEED
    assert info.thumbnail_png.startswith(b"\x89PNG")
    gen, _ = models.load_generator(path, torch.device("cpu"), torch.float32)
    rng = np.random.default_rng(0)
    frame = torch.from_numpy(rng.random((1, 3, 90, 130), dtype=np.float32))
    with torch.no_grad():
        out = gen(frame)
    assert out.shape == frame.shape and torch.isfinite(out).all()
    assert (out - frame).abs().mean() > 0.02  # it does change the picture
