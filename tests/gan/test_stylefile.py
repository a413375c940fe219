"""The style file: round trip, atomic non-overwriting save, and refusal of anything else."""

import json
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from gan import stylefile
from gan.stylefile import StyleFileError, load_style, read_style_info, save_style

ARCH = {"type": "test-net", "channels": 4}


def _save(path, **overrides):
    args = dict(arch=ARCH, state_dict={"conv.weight": torch.arange(24.0).reshape(2, 3, 2, 2),
                                       "conv.bias": np.array([0.5, -1.5], np.float32)},
                meta={"name": "Test style", "preset": "draft", "steps": 12},
                thumbnail_rgb=np.full((16, 24, 3), (10, 200, 30), np.uint8))
    args.update(overrides)
    save_style(str(path), **args)
    return path


def _raw_file(path, header, data=b""):
    body = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body + data)
    return path


def test_round_trip_keeps_weights_metadata_and_thumbnail(tmp_path):
    path = _save(tmp_path / "a.ganstyle")
    info, tensors = load_style(str(path))
    assert info.arch == ARCH
    assert info.meta["steps"] == 12 and info.name == "Test style"
    assert torch.equal(tensors["conv.weight"], torch.arange(24.0).reshape(2, 3, 2, 2))
    assert tensors["conv.bias"].tolist() == [0.5, -1.5]
    import cv2
    thumb = cv2.imdecode(np.frombuffer(info.thumbnail_png, np.uint8), cv2.IMREAD_COLOR)
    assert thumb.shape == (16, 24, 3) and tuple(thumb[0, 0]) == (30, 200, 10)  # BGR on disk


def test_metadata_reads_without_torch(tmp_path):
    """Blender's process has no torch: read_style_info must not need it."""
    path = _save(tmp_path / "a.ganstyle")
    code = ("import sys; sys.modules['torch'] = None; sys.modules['cv2'] = None; "
            "from gan.stylefile import read_style_info; "
            f"print(read_style_info({str(path)!r}).meta['name'])")
    import subprocess, sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Test style"


def test_save_never_overwrites_and_leaves_no_temp_files(tmp_path):
    path = _save(tmp_path / "a.ganstyle")
    before = path.read_bytes()
    with pytest.raises(StyleFileError, match="exists already"):
        _save(path, meta={"name": "other"})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["a.ganstyle"]


def test_save_failure_leaves_nothing_under_final_name(tmp_path):
    with pytest.raises(ValueError):
        _save(tmp_path / "b.ganstyle", thumbnail_rgb=np.zeros((4, 4), np.float32))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_bytes(b"\x05\x00"), "truncated"),
    (lambda p: p.write_bytes(struct.pack("<Q", 1 << 40) + b"{}"), "bad header size"),
    (lambda p: p.write_bytes(struct.pack("<Q", 500) + b"{}"), "truncated"),
    (lambda p: p.write_bytes(struct.pack("<Q", 4) + b"\xff\xfe{}"), "not JSON"),
    (lambda p: _raw_file(p, {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
                         b"\0" * 4), "no metadata"),
    (lambda p: _raw_file(p, {"__metadata__": {"format": "pt"}}), "another kind"),
    (lambda p: _raw_file(p, {"__metadata__": {"format": "ganstyle", "format_version": "99",
                                              "arch": "{}", "meta": "{}"}}), "newer version"),
    (lambda p: _raw_file(p, {"__metadata__": {"format": "ganstyle", "format_version": "1",
                                              "arch": "[1, 2", "meta": "{}"}}), "not valid JSON"),
    (lambda p: _raw_file(p, {"__metadata__": {"format": "ganstyle", "format_version": "1",
                                              "arch": '{"type": "x"}', "meta": "{}"},
                             "w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
                         b"\0" * 8), "truncated"),
    (lambda p: _raw_file(p, {"__metadata__": {"format": "ganstyle", "format_version": "1",
                                              "arch": '{"type": "x"}', "meta": "{}"},
                             "w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}},
                         b"\0" * 16), "does not match"),
    (lambda p: _raw_file(p, {"__metadata__": {"format": "ganstyle", "format_version": "1",
                                              "arch": '{"type": "x"}', "meta": "{}"},
                             "w": {"dtype": "PICKLE", "shape": [1], "data_offsets": [0, 1]}},
                         b"\0"), "unsupported type"),
])
def test_defective_files_give_one_line_errors(tmp_path, make, message):
    path = tmp_path / "bad.ganstyle"
    make(path)
    with pytest.raises(StyleFileError, match=message) as info:
        read_style_info(str(path))
    assert "\n" not in str(info.value) and "bad.ganstyle" in str(info.value)


def test_truncated_copy_of_a_real_file_is_refused(tmp_path):
    data = _save(tmp_path / "a.ganstyle").read_bytes()
    for cut in (len(data) - 1, len(data) // 2, 9, 8):
        path = tmp_path / f"cut{cut}.ganstyle"
        path.write_bytes(data[:cut])
        with pytest.raises(StyleFileError):
            load_style(str(path))


class _Payload:
    """Unpickling this would create a marker file: the style loader must never unpickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_pickle_is_refused_without_running_its_payload(tmp_path):
    marker = tmp_path / "pwned"
    pickled = tmp_path / "evil.ganstyle"
    pickled.write_bytes(pickle.dumps({"weights": _Payload(str(marker))}))
    zipped = tmp_path / "evil_zip.ganstyle"
    torch.save({"weights": _Payload(str(marker))}, str(zipped))  # torch's zip+pickle format
    for path in (pickled, zipped):
        with pytest.raises(StyleFileError):
            load_style(str(path))
    assert not marker.exists()


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(StyleFileError, match="not found"):
        read_style_info(str(tmp_path / "nope.ganstyle"))
    with pytest.raises(StyleFileError):
        read_style_info(str(tmp_path))


def test_bad_thumbnail_does_not_make_the_style_unusable(tmp_path):
    path = tmp_path / "t.ganstyle"
    header = {"__metadata__": {"format": "ganstyle", "format_version": "1",
                               "arch": '{"type": "x"}', "meta": '{"name": "\\u001b[31mred"}'},
              stylefile.THUMBNAIL_KEY: {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}
    _raw_file(path, header, b"GIF8")
    info = read_style_info(str(path))
    assert info.thumbnail_png is None and info.name.endswith("red")
