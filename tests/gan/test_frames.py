"""Frame sources: exact frame selection from videos, folder order, pixel formats, clear errors."""

import os

import cv2
import numpy as np
import pytest

from gan import frames
from gan.frames import FrameSourceError, open_frames, parse_frame_range
from gan.protocol import UserError

CLIP_W, CLIP_H, CLIP_FRAMES, BITS = 96, 64, 80, 8


def index_frame(i: int, width: int = CLIP_W, height: int = CLIP_H) -> np.ndarray:
    """A BGR frame whose vertical bars spell the frame index in binary (survives any codec)."""
    frame = np.zeros((height, width, 3), np.uint8)
    for bit in range(BITS):
        if i >> bit & 1:
            frame[:, bit * width // BITS:(bit + 1) * width // BITS] = 255
    frame[:, :, :2] //= np.array([4, 2], np.uint8)  # B 63, G 127, R 255: channel order shows
    return frame


def frame_index(rgb: np.ndarray) -> int:
    """Read back the index spelled by index_frame (from an RGB frame)."""
    width = rgb.shape[1]
    grey = rgb.astype(np.float32).mean(axis=2)
    return sum(1 << bit for bit in range(BITS)
               if grey[:, bit * width // BITS + 2:(bit + 1) * width // BITS - 2].mean() > 100)


def write_video(path, count=CLIP_FRAMES, fourcc="FFV1", make=index_frame, size=(CLIP_W, CLIP_H)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, size)
    assert writer.isOpened(), f"OpenCV cannot write {fourcc}"
    for i in range(count):
        writer.write(make(i))
    writer.release()
    return str(path)


def write_image(path, image, params=()):
    """cv2.imwrite fails on non-ASCII paths on Windows: encode, then write the bytes."""
    ok, data = cv2.imencode(os.path.splitext(str(path))[1], image, list(params))
    assert ok
    data.tofile(str(path))
    return str(path)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("clip") / "index clip ü.avi")


# -- frame ranges ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("120-124", [120, 121, 122, 123, 124]),
    ("7", [7]),
    ("0-2,20-21", [0, 1, 2, 20, 21]),
    (" 3 - 5 , 9 ", [3, 4, 5, 9]),
    ("5-3", [5, 4, 3]),
    ("2,2,1", [2, 2, 1]),
])
def test_parse_frame_range(text, expected):
    assert parse_frame_range(text) == expected


@pytest.mark.parametrize("text", ["", " ", "a-b", "-3", "1-", "1,,2", "1-2-3", "1.5", "0-9;20"])
def test_parse_frame_range_rejects(text):
    with pytest.raises(UserError) as info:
        parse_frame_range(text)
    message = str(info.value)
    assert "\n" not in message and "A-B" in message


# -- videos ---------------------------------------------------------------------------------------

def _indices(source):
    return [(index, frame_index(rgb)) for index, rgb in source]


def test_video_streams_all_frames_in_order(clip):
    with open_frames(clip) as source:
        assert source.count == CLIP_FRAMES and len(source) == CLIP_FRAMES
        assert source.size == (CLIP_W, CLIP_H)
        for index, rgb in source:
            assert rgb.shape == (CLIP_H, CLIP_W, 3) and rgb.dtype == np.uint8
            assert rgb.flags.c_contiguous
            assert frame_index(rgb) == index
            if index == 1:
                assert np.abs(rgb[0, 0].astype(int) - [255, 127, 63]).max() <= 3  # RGB order


@pytest.mark.parametrize("wanted", [
    list(range(20, 31)),                      # a range from the middle
    [30, 2, 2, 17, 16, 15, 79, 0, 79],        # jumps both ways, repeats, far jump, last frame
    list(range(40, 9, -1)),                   # a reversed strip
    [3, 60, 61],                              # a gap larger than the skip-through limit
])
def test_video_frame_selection_is_exact(clip, wanted):
    with open_frames(clip, wanted) as source:
        assert source.indices == wanted
        got = _indices(source)
    assert got == [(i, i) for i in wanted]


def test_video_reads_sequentially_without_seeking(clip, monkeypatch):
    with open_frames(clip, list(range(10, 30)) + list(range(35, 40))) as source:
        seeks = []
        real_cap = source._cap

        class Spy:
            def __getattr__(self, name):
                return getattr(real_cap, name)

            def set(self, prop, value):
                seeks.append(value)
                return real_cap.set(prop, value)

        source._cap = Spy()
        assert [frame_index(rgb) for _, rgb in source] == source.indices
    assert seeks == []  # a short gap is decoded through: sequential reads beat seeks


def test_video_random_access(clip):
    with open_frames(clip, []) as source:
        assert len(source) == 0
        for i in (50, 3, 3, 79, 0):
            assert frame_index(source.read(i)) == i


def test_video_frame_out_of_range(clip):
    with pytest.raises(FrameSourceError) as info:
        open_frames(clip, [5, CLIP_FRAMES])
    message = str(info.value)
    assert clip in message and str(CLIP_FRAMES) in message and "\n" not in message


def test_truncated_video_reports_its_real_end(tmp_path):
    path = write_video(tmp_path / "cut.avi", count=30, fourcc="MJPG")
    data = open(path, "rb").read()
    with open(path, "wb") as handle:
        handle.write(data[:len(data) * 6 // 10])  # header still claims 30 frames
    with open_frames(path) as source:
        assert source.count == 30
        with pytest.raises(FrameSourceError) as info:
            for _ in source:
                pass
    message = str(info.value)
    assert path in message and "frame " in message and "ends" in message


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 100])
def test_corrupt_or_empty_video(tmp_path, content):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(FrameSourceError, match="cannot open .*broken.mp4"):
        open_frames(str(path))


def test_missing_path(tmp_path):
    with pytest.raises(FrameSourceError, match="not found: .*nothing.mov"):
        open_frames(str(tmp_path / "nothing.mov"))


# -- images ---------------------------------------------------------------------------------------

def test_folder_is_sorted_naturally(tmp_path):
    folder = tmp_path / "shot 01 é"
    folder.mkdir()
    for i in (10, 2, 1, 100, 9):
        write_image(folder / f"frame_{i}.png", index_frame(i))
    write_image(folder / ".hidden.png", index_frame(3))
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub.png").mkdir()
    with open_frames(str(folder)) as source:
        assert [os.path.basename(f) for f in source.files] == [
            "frame_1.png", "frame_2.png", "frame_9.png", "frame_10.png", "frame_100.png"]
        assert [frame_index(rgb) for _, rgb in source] == [1, 2, 9, 10, 100]
    with open_frames(str(folder), [4, 0, 4]) as source:
        assert [frame_index(rgb) for _, rgb in source] == [100, 1, 100]


def test_image_list_and_missing_file(tmp_path):
    files = [write_image(tmp_path / f"{name}.png", index_frame(i))
             for i, name in enumerate(["c", "a", "b"])]
    with open_frames(files) as source:  # an explicit list keeps its order
        assert [frame_index(rgb) for _, rgb in source] == [0, 1, 2]
    missing = str(tmp_path / "gone.png")
    with pytest.raises(FrameSourceError) as info:
        open_frames(files + [missing], [0, 3])
    assert "frame 3" in str(info.value) and missing in str(info.value)
    with pytest.raises(FrameSourceError, match="frame 5 does not exist"):
        open_frames(files, [5])


def test_unreadable_image_names_frame_and_path(tmp_path):
    good = write_image(tmp_path / "a.png", index_frame(1))
    bad = tmp_path / "b.png"
    bad.write_bytes(b"\x89PNG broken")
    with open_frames([good, str(bad)]) as source:
        with pytest.raises(FrameSourceError) as info:
            list(source)
    assert "frame 1" in str(info.value) and str(bad) in str(info.value)


def test_still_image_serves_any_index(tmp_path):
    path = write_image(tmp_path / "still ☃.jpg", index_frame(5), [cv2.IMWRITE_JPEG_QUALITY, 100])
    with open_frames(path, [0, 7, 7, 100]) as source:
        assert source.size == (CLIP_W, CLIP_H)
        assert [(i, frame_index(rgb)) for i, rgb in source] == [(0, 5), (7, 5), (7, 5), (100, 5)]
    with open_frames(path) as source:
        assert source.indices == [0]


def test_pixel_formats_become_rgb8(tmp_path):
    height, width = 17, 33  # odd, not a multiple of 4
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (height, width), dtype=np.uint8)
    bgra = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    deep = rng.integers(0, 65536, (height, width, 3), dtype=np.uint16)
    deep[0, :3] = np.array([[0], [257], [65535]])  # pixels that are exactly 0, 1, 255 in 8 bits

    rgb = frames.read_image(write_image(tmp_path / "grey.png", grey))
    assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8
    assert all(np.array_equal(rgb[..., c], grey) for c in range(3))

    rgb = frames.read_image(write_image(tmp_path / "alpha.png", bgra))
    assert np.array_equal(rgb, bgra[..., 2::-1])

    for ext in (".png", ".tif"):
        rgb = frames.read_image(write_image(tmp_path / f"deep{ext}", deep))
        expected = np.round(deep[..., ::-1].astype(np.float64) * 255 / 65535).astype(np.uint8)
        assert np.abs(rgb.astype(int) - expected).max() <= 1
        assert list(rgb[0, 0]) == [0] * 3 and list(rgb[0, 1]) == [1] * 3
        assert list(rgb[0, 2]) == [255] * 3

    with open_frames(write_image(tmp_path / "odd.bmp", bgra[..., :3])) as source:
        assert source.size == (width, height)
        assert np.array_equal(source.read(0), bgra[..., 2::-1])


def test_empty_folder(tmp_path):
    with pytest.raises(FrameSourceError, match="no image files"):
        open_frames(str(tmp_path))
