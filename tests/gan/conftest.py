"""Fixtures shared by the engine's test modules."""

import pytest
import torch

from gan import models


@pytest.fixture(scope="module")
def flickering_style(tmp_path_factory):
    """A style whose texture path adds a pattern that depends on the frame's exact pixels: on a
    noisy pan it flickers, which is what stabilization must calm down."""
    folder = tmp_path_factory.mktemp("model")
    arch = models.generator_arch("draft")
    gen = models.build_generator(arch)
    torch.manual_seed(3)
    with torch.no_grad():
        for parameter in gen.decoder.parameters():
            parameter.normal_(0, 0.3)
    from gan.stylefile import save_style
    path = str(folder / "flicker.ganstyle")
    save_style(path, arch=arch, state_dict=gen.state_dict(), meta={"name": "flicker"},
               thumbnail_rgb=None)
    return path
