"""Hostile style files: damaged, truncated, foreign, newer, crafted to run code or to write
outside their folder, or carrying hostile metadata. Nothing runs, nothing is written, the only
error is one UserError line, and `python -m gan info` prints a sanitized single-line name.

The fuzz tests mutate a valid style file with hypothesis (byte flips, truncation, insertions;
header JSON mutations of dtypes, shapes, offsets, metadata and architecture values) and feed
it to gan.stylefile.read_style_info, gan.stylefile.load_style and gan.models.load_generator.
Only gan.protocol.UserError (StyleFileError is one) may come out. Each example runs under an
address-space limit (a header that makes the loader allocate a huge tensor fails the test
instead of exhausting the machine) and a time limit (a hang fails the test).

They run GAN_FUZZ_EXAMPLES examples per property (default 2000, a few seconds each). For a
long run:  GAN_FUZZ_EXAMPLES=100000 .venv/bin/python -m pytest tests/gan/test_style_files.py -k fuzz
"""

import contextlib
import io
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import tarfile
import zipfile

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from gan import models, stylefile
from gan.protocol import SourceSpec, TrainJob, UserError
from gan.stylefile import StyleFileError, load_style, read_style_info
from test_inputs import (ROOT, TINY_ARCH, assert_failed_cleanly, assert_one_line, memory_limit,
                         run_worker, write_clip)

FUZZ_EXAMPLES = int(os.environ.get("GAN_FUZZ_EXAMPLES", "2000"))
CPU = torch.device("cpu")


# -- helpers ----------------------------------------------------------------------------------

def split(data: bytes):
    """(header dict, tensor data) of a style file."""
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + size]), data[8 + size:]


def join(header, data=b"") -> bytes:
    body = json.dumps(header).encode()
    return struct.pack("<Q", len(body)) + body + data


def metadata(arch=None, meta=None, **fields):
    out = {"format": "ganstyle", "format_version": "1",
           "arch": json.dumps(TINY_ARCH if arch is None else arch),
           "meta": json.dumps({"name": "ok"} if meta is None else meta)}
    out.update(fields)
    return out


def load_everything(path):
    """Every way a style file is opened; returns the first UserError, or None if all load."""
    try:
        info = read_style_info(path)
        assert "\n" not in info.name and info.name.isprintable() and len(info.name) <= 203
        load_style(path)
        models.load_generator(path, CPU, torch.float32)
    except UserError as exc:
        assert_one_line(str(exc))
        return exc
    return None


def gan_info(path, *args):
    return subprocess.run([sys.executable, "-m", "gan", "info", str(path), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def tree(folder):
    return sorted(os.path.join(d, n) for d, _, names in os.walk(folder) for n in names)


class Payload:
    """Unpickling this creates a marker file: nothing may ever unpickle it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class Hang(BaseException):
    pass


@contextlib.contextmanager
def time_limit(seconds):
    def alarm(*_):
        raise Hang(f"still running after {seconds} s")
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Valid(tuple):
    def __repr__(self):  # hypothesis prints the fixtures of a failing example: keep it short
        return f"Valid({self[0]!r}, <{len(self[1])} bytes>)"


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """A valid tiny style file with a thumbnail: (path, bytes)."""
    folder = tmp_path_factory.mktemp("valid style")
    torch.manual_seed(1)
    generator = models.build_generator(TINY_ARCH)
    path = str(folder / "valid ü.ganstyle")
    stylefile.save_style(path, arch=TINY_ARCH, state_dict=generator.state_dict(),
                         meta={"name": "Valid", "preset": "draft", "steps": 3},
                         thumbnail_rgb=np.full((8, 8, 3), 77, np.uint8))
    assert load_everything(path) is None
    with open(path, "rb") as handle:
        return Valid((path, handle.read()))


# -- damaged, truncated, empty, foreign, newer -----------------------------------------------

def test_truncated_at_every_offset(valid, tmp_path):
    _, data = valid
    header_end = 8 + struct.unpack("<Q", data[:8])[0]
    path = str(tmp_path / "cut.ganstyle")
    # The metadata reader: every offset around the size prefix and the end of the header,
    # and through the rest in steps.
    for cut in sorted({*range(17), *range(header_end - 8, header_end + 64),
                       *range(0, len(data), 37)}):
        with open(path, "wb") as handle:
            handle.write(data[:cut])
        try:
            read_style_info(path)
        except StyleFileError as exc:
            assert "\n" not in str(exc) and "cut.ganstyle" in str(exc)
        else:
            raise AssertionError(f"a file cut at {cut} of {len(data)} bytes was accepted")
    for cut in (0, 1, 7, 8, 9, header_end - 1, header_end, header_end + 1,
                (header_end + len(data)) // 2, len(data) - 1):  # interesting offsets: all loaders
        with open(path, "wb") as handle:
            handle.write(data[:cut])
        assert isinstance(load_everything(path), StyleFileError), cut


def test_flipped_bytes_in_header_and_data(valid, tmp_path):
    _, data = valid
    header_end = 8 + struct.unpack("<Q", data[:8])[0]
    rng = np.random.default_rng(3)
    path = str(tmp_path / "flipped.ganstyle")
    outcomes = set()
    for region in ((0, 8), (8, header_end), (header_end, len(data))):
        for _ in range(40):
            damaged = bytearray(data)
            for position in rng.integers(*region, size=rng.integers(1, 4)):
                damaged[position] ^= 1 << int(rng.integers(8))
            with open(path, "wb") as handle:
                handle.write(damaged)
            outcomes.add(type(load_everything(path)).__name__)
    assert "StyleFileError" in outcomes  # header damage is refused; data damage is just weights


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_bytes(cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes()),
     "not a style file"),
    (lambda p: torch.save({"conv.weight": torch.zeros(3)}, str(p)), "not a style file"),
    (lambda p: p.write_bytes(join({"__metadata__": {"format": "pt"},
                                   "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
                                  bytes(8))), "another kind"),
    (lambda p: p.write_bytes(join({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
                                  bytes(8))), "no metadata"),
    (lambda p: p.write_bytes(join({"__metadata__": metadata(format_version="2")})), "newer"),
    (lambda p: p.write_bytes(join({"__metadata__": metadata(
        arch=dict(TINY_ARCH, version=models.ARCH_VERSION + 1))})), "newer version"),
    (lambda p: p.write_bytes(join({"__metadata__": metadata(arch={"type": "other"})})),
     "unsupported model type"),
], ids=["empty", "png", "torch-save", "foreign-safetensors", "no-metadata", "newer-format",
        "newer-model", "other-model"])
def test_foreign_empty_and_newer_files(tmp_path, make, expected):
    path = tmp_path / "style.ganstyle"
    make(path)
    error = load_everything(str(path))
    assert error is not None and expected in str(error)
    result = gan_info(path)
    if expected in ("newer version", "unsupported model type"):  # metadata itself is fine
        assert result.returncode == 0 and "name:       ok" in result.stdout
    else:
        assert result.returncode == 1 and result.stdout == ""
        assert_one_line(result.stderr.strip(), "style.ganstyle")


def test_tensor_claiming_1e12_elements_is_refused_before_allocation(tmp_path):
    path = str(tmp_path / "huge.ganstyle")
    claims = [
        {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 4 * 10**12]},
        {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 16]},
        {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 16]},
        {"dtype": "F32", "shape": [4], "data_offsets": [0, 2**62]},
        {"dtype": "U8", "shape": [-1], "data_offsets": [0, 16]},
        {"dtype": "F32", "shape": [2**31, 2**39, 0], "data_offsets": [0, 0]},  # found by fuzzing
    ]
    with memory_limit(1 << 30):
        for claim in claims:
            with open(path, "wb") as handle:
                handle.write(join({"__metadata__": metadata(), "w": claim}, bytes(16)))
            assert isinstance(load_everything(path), StyleFileError), claim


# -- files crafted to run code or write outside their folder ---------------------------------

def test_crafted_pickles_and_archives_run_nothing_and_write_nothing(tmp_path):
    box = tmp_path / "box" / "inner"
    box.mkdir(parents=True)
    marker = tmp_path / "pwned"
    files = {}
    files["pickle"] = box / "pickle.ganstyle"
    files["pickle"].write_bytes(pickle.dumps({"w": Payload(marker)}))
    files["torch-zip"] = box / "torchzip.ganstyle"
    torch.save({"w": Payload(marker)}, str(files["torch-zip"]))
    files["zip-slip"] = box / "zipslip.ganstyle"
    with zipfile.ZipFile(files["zip-slip"], "w") as archive:
        archive.writestr("../../evil.txt", "evil")
        archive.writestr("/tmp/evil_absolute.txt", "evil")
        archive.writestr("data.pkl", pickle.dumps(Payload(marker)))
    files["tar-slip"] = box / "tarslip.ganstyle"
    with tarfile.open(files["tar-slip"], "w") as archive:
        for name in ("../../evil_tar.txt", "link"):
            entry = tarfile.TarInfo(name)
            if name == "link":
                entry.type, entry.linkname = tarfile.SYMTYPE, "../../../"
            else:
                entry.size = 4
            archive.addfile(entry, io.BytesIO(b"evil") if entry.size else None)
    # The safetensors layout with a pickle where the tensor bytes go.
    payload = pickle.dumps(Payload(marker))
    files["pickle-in-data"] = box / "pickledata.ganstyle"
    files["pickle-in-data"].write_bytes(join({"__metadata__": metadata(), "w": {
        "dtype": "U8", "shape": [len(payload)], "data_offsets": [0, len(payload)]}}, payload))
    # A checkpoint crafted the same way, resumed by a training job.
    work = tmp_path / "work"
    work.mkdir()
    torch.save({"format": "ganstyle-checkpoint", "w": Payload(marker)}, str(work / "checkpoint.pt"))
    before = tree(tmp_path)

    for name, path in files.items():
        error = load_everything(str(path))
        assert error is not None, name
        result = gan_info(path)
        # info reads the header alone: only the file with a valid one (and a pickle where the
        # tensor bytes go) shows its metadata; the others are refused in one line
        expected = 0 if name == "pickle-in-data" else 1
        assert result.returncode == expected and "Traceback" not in result.stderr, (name, result)
    rc, events, err = run_worker({"kind": "stylize", "model": str(files["torch-zip"]),
                                  "input": str(box), "output": str(tmp_path / "out")}, tmp_path)
    assert_failed_cleanly(rc, events, err, "torchzip.ganstyle")
    clip = write_clip(tmp_path / "clip.avi", 2)
    job = TrainJob(style=[SourceSpec(clip)], content=[SourceSpec(clip)],
                   out=str(tmp_path / "o.ganstyle"), steps=1, resume=True, work_dir=str(work))
    assert_failed_cleanly(*run_worker(job, tmp_path), "checkpoint.pt")

    assert not marker.exists()
    after = [p for p in tree(tmp_path) if not p.endswith(("job.json", "clip.avi"))]
    assert after == before  # nothing extracted, nothing written anywhere
    for evil in ("evil.txt", "evil_tar.txt"):
        assert not (tmp_path / evil).exists() and not (tmp_path.parent / evil).exists()
    assert not os.path.exists("/tmp/evil_absolute.txt")


# -- hostile metadata ---------------------------------------------------------------------------

HOSTILE_NAMES = {
    "escapes": "\x1b]0;owned\x07\x1b[2J\x1b[31mred\x1b[0m\rover\nnext line",
    "rtl-nul": "abc\u202edcba\u2066x\u2069\x00nul\u200bzero\u2028sep",
    "megabyte": "N" * 1_000_000,
    "surrogate": "\ud800lone",
}


@pytest.mark.parametrize("key", list(HOSTILE_NAMES))
def test_hostile_names_print_as_one_sanitized_line(tmp_path, key):
    path = tmp_path / "hostile.ganstyle"
    name = HOSTILE_NAMES[key]
    meta = {"name": name, "preset": name[:300], "sources": [name[:50]] * 3, "steps": name[:20]}
    path.write_bytes(join({"__metadata__": metadata(meta=meta)}))
    info = read_style_info(str(path))
    assert "\n" not in info.name and info.name.isprintable() and len(info.name) <= 203
    assert info.meta["name"] == name  # the raw value stays available to code
    result = gan_info(path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 7 and lines[0].startswith("name:       ")  # + 6 fixed fields
    assert all(line.isprintable() and len(line) <= 220 for line in lines), lines
    assert "\x1b" not in result.stdout and "\x00" not in result.stdout
    as_json = gan_info(path, "--json")
    assert as_json.returncode == 0 and as_json.stdout.isascii()
    assert json.loads(as_json.stdout)["name"] == info.name


# Short ids: the test's id goes into the child process's environment (PYTEST_CURRENT_TEST), and a
# megabyte of it fails the exec (E2BIG).
@pytest.mark.parametrize("field, text, expected", [
    ("meta", "[" * 100 + "]" * 100, "must be an object"),
    ("meta", '{"a":' * 100 + "1" + "}" * 100, "nested too deeply"),
    ("meta", '{"a":' * 100_000 + "1" + "}" * 100_000, "not valid JSON"),
    ("arch", '{"type": "colour-resnet", "x":' + "[" * 50 + "]" * 50 + "}", "nested too deeply"),
    ("meta", '{"name": "' + "x" * (2 << 20) + '"}', "too large"),
    ("meta", '{"steps": 1' + "0" * 5000 + "}", "not valid JSON"),
], ids=["list", "deep", "very-deep", "deep-arch", "huge-name", "huge-number"])
def test_deep_or_huge_metadata_is_refused_in_one_line(tmp_path, field, text, expected):
    path = tmp_path / "deep.ganstyle"
    fields = metadata()
    fields[field] = text
    path.write_bytes(join({"__metadata__": fields}))
    error = load_everything(str(path))
    assert isinstance(error, StyleFileError) and expected in str(error)
    result = gan_info(path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert_one_line(result.stderr.strip(), expected)


def test_nested_header_values_are_refused(tmp_path):
    path = tmp_path / "nested.ganstyle"
    for entry in ({"dtype": [[["F32"]]], "shape": [1], "data_offsets": [0, 4]},
                  {"dtype": {"F32": 1}, "shape": [1], "data_offsets": [0, 4]},
                  {"dtype": "F32", "shape": [[1]], "data_offsets": [[0], 4]},
                  [1, 2, 3], "F32"):
        path.write_bytes(join({"__metadata__": metadata(), "w": entry}, bytes(4)))
        assert isinstance(load_everything(str(path)), StyleFileError), entry


# -- fuzzing --------------------------------------------------------------------------------------

FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

HOSTILE_NUMBERS = st.sampled_from([0, 1, -1, 3, 2**31, 2**32 + 4, 2**40, 2**63, 2**64 + 1,
                                   10**12, 4 * 10**12, 10**400, 1.5, -0.0, 1e308, float("inf"),
                                   float("nan")])
HOSTILE_JSON = st.recursive(
    st.none() | st.booleans() | HOSTILE_NUMBERS | st.integers() | st.floats()
    | st.text(max_size=12) | st.sampled_from(["F32", "U8", "BF16", "I64", "ganstyle", "1", "2",
                                             "colour-resnet", "\x1b[2J", "\u202e", "\x00"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12)


def _fuzz_file(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fuzz") / "fuzzed.ganstyle")


@pytest.fixture(scope="module")
def fuzz_path(tmp_path_factory):
    return _fuzz_file(tmp_path_factory)


def _check(path, data):
    with open(path, "wb") as handle:
        handle.write(data)
    with memory_limit(), time_limit(20):
        load_everything(path)


@FUZZ
@given(data=st.data())
def test_fuzz_bytes_only_user_errors(valid, fuzz_path, data):
    """Byte flips (mostly where the parser looks: size prefix and header), truncation and
    inserted garbage."""
    _, original = valid
    header_end = 8 + struct.unpack("<Q", original[:8])[0]
    damaged = bytearray(original)
    where = st.one_of(st.integers(0, header_end - 1), st.integers(0, len(original) - 1))
    for position, value in data.draw(st.lists(st.tuples(where, st.integers(0, 255)), max_size=6)):
        damaged[position] = value
    insert = data.draw(st.none() | st.tuples(where, st.binary(min_size=1, max_size=16)))
    if insert:
        damaged[insert[0]:insert[0]] = insert[1]
    cut = data.draw(st.none() | st.integers(0, len(damaged)))
    _check(fuzz_path, bytes(damaged[:cut]))


# Every architecture field models.build_generator validates (the description is checked against
# the file's tensors on the meta device before anything is allocated).
ARCH_FIELDS = ["type", "version", "ngf", "blocks", "downsamplings", "colour_hidden",
               "detail_sigma", "detail_gain", "preset", "extra"]


@FUZZ
@given(data=st.data())
def test_fuzz_header_only_user_errors(valid, fuzz_path, data):
    """One mutation of the header JSON: a tensor's dtype/shape/offsets, a metadata field, an
    architecture or meta value, a removed or an added entry; the size prefix is kept right so
    the parser goes on to the next check."""
    _, original = valid
    header, block = split(original)
    tensors = sorted(k for k in header if k != "__metadata__")
    kind = data.draw(st.sampled_from(["tensor", "metadata", "arch", "meta", "remove", "add"]))
    value = data.draw(HOSTILE_JSON)
    if kind == "tensor":
        name = data.draw(st.sampled_from(tensors))
        field = data.draw(st.sampled_from(["dtype", "shape", "data_offsets", "extra"]))
        entry = header[name]
        if field == "shape" and data.draw(st.booleans()):  # a plausible claim, then a huge one
            value = data.draw(st.lists(st.sampled_from([0, 1, 3, 10**6, 2**31, 2**39]),
                                       max_size=4))
            begin = entry["data_offsets"][0]
            size = 4 * int(np.prod(value, dtype=object)) if value else 4
            entry["data_offsets"] = [begin, begin + size]
        entry[field] = value
    elif kind == "metadata":
        key = data.draw(st.sampled_from(["format", "format_version", "arch", "meta", "extra"]))
        header["__metadata__"][key] = value if data.draw(st.booleans()) else json.dumps(value)
    elif kind in ("arch", "meta"):
        parsed = json.loads(header["__metadata__"][kind])
        key = data.draw(st.sampled_from(ARCH_FIELDS if kind == "arch" else
                                        ["name", "preset", "steps", "sources", "settings"]))
        parsed[key] = value
        header["__metadata__"][kind] = json.dumps(parsed)
    elif kind == "remove":
        del header[data.draw(st.sampled_from(sorted(header)))]
    else:
        header[data.draw(st.text(max_size=8))] = value
    _check(fuzz_path, join(header, block))


def test_a_huge_described_model_is_refused_before_it_is_built(valid, tmp_path):
    """ngf, blocks and downsamplings at their maxima describe a ~60 GB model: refused by the
    shape check, within a 1 GB address-space limit."""
    _, original = valid
    header, block = split(original)
    arch = json.loads(header["__metadata__"]["arch"])
    arch.update(ngf=256, blocks=32, downsamplings=4, colour_hidden=256, detail_sigma=32)
    header["__metadata__"]["arch"] = json.dumps(arch)
    path = tmp_path / "huge_arch.ganstyle"
    path.write_bytes(join(header, block))
    with memory_limit(1 << 30), time_limit(20):
        with pytest.raises(StyleFileError) as caught:
            models.load_generator(str(path), torch.device("cpu"), torch.float32)
    assert_one_line(str(caught.value))
