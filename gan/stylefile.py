"""The portable style file (.ganstyle): weights, architecture, settings, provenance, thumbnail.

Layout (the safetensors layout, so standard tools can read it too):
    8 bytes   little-endian unsigned header size N
    N bytes   JSON header: {tensor name: {"dtype", "shape", "data_offsets": [begin, end]},
                            "__metadata__": {str: str}}
    rest      raw little-endian tensor bytes, offsets relative to the start of this block

Nothing in the file is code: loading parses JSON and copies bytes. Style files are traded
between artists, so every field is checked and any defect is one StyleFileError line.
Metadata and thumbnail are read with the standard library alone (Blender's process has no torch).
"""

from __future__ import annotations

import io
import json
import math
import os
import stat
import struct
from dataclasses import dataclass
from typing import Any, Mapping

from .fileio import atomic_write
from .protocol import UserError

EXTENSION = ".ganstyle"
FORMAT_NAME = "ganstyle"
FORMAT_VERSION = 1
THUMBNAIL_KEY = "__thumbnail_png__"

MAX_HEADER_BYTES = 4 << 20
MAX_METADATA_FIELD = 1 << 20
MAX_METADATA_DEPTH = 32
MAX_TENSORS = 4096
MAX_THUMBNAIL_BYTES = 4 << 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# safetensors dtype name -> (bytes per element, numpy dtype name or None where numpy lacks it)
DTYPES = {"F32": (4, "<f4"), "F16": (2, "<f2"), "BF16": (2, None), "U8": (1, "u1"),
          "I64": (8, "<i8"), "I32": (4, "<i4")}


class StyleFileError(UserError):
    """A style file that cannot be used; the message is one line naming the file."""


@dataclass
class TensorEntry:
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass
class StyleInfo:
    path: str
    arch: dict[str, Any]
    meta: dict[str, Any]
    thumbnail_png: bytes | None
    format_version: int
    tensors: dict[str, TensorEntry]
    data_offset: int

    @property
    def name(self) -> str:
        """The style's name for display: one line of printable text, at most 200 characters
        (style files come from strangers: no terminal escapes, no bidi overrides)."""
        name = self.meta.get("name")
        if not isinstance(name, str) or not name.strip():
            name = os.path.splitext(os.path.basename(self.path))[0]
        return printable(name)


def printable(value: Any, limit: int = 200) -> str:
    """One line of printable text: control, format (bidi, zero-width) and separator characters
    other than the space become '?'; longer text is cut to `limit` characters + '...'."""
    text = value if isinstance(value, str) else str(value)
    text = "".join(c if c.isprintable() else "?" for c in text[:limit + 1])
    return text if len(text) <= limit else text[:limit] + "..."


# -- writing ------------------------------------------------------------------------------------

def save_style(path: str, *, arch: Mapping[str, Any], state_dict: Mapping[str, Any],
               meta: Mapping[str, Any], thumbnail_rgb: Any = None) -> None:
    """Write a style file atomically. Refuses to overwrite: raises StyleFileError if it exists."""
    import numpy as np

    arrays: dict[str, tuple[str, np.ndarray]] = {}
    for name, value in state_dict.items():
        if name.startswith("__"):
            raise ValueError(f"tensor name {name!r} is reserved")
        array = _to_numpy(value)
        arrays[name] = ("F32", np.ascontiguousarray(array, dtype="<f4"))
    if thumbnail_rgb is not None:
        arrays[THUMBNAIL_KEY] = ("U8", np.frombuffer(_encode_png(thumbnail_rgb), dtype=np.uint8))

    header: dict[str, Any] = {"__metadata__": {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "arch": json.dumps(dict(arch), sort_keys=True),
        "meta": json.dumps(dict(meta), sort_keys=True, default=str),
    }}
    offset = 0
    for name, (dtype, array) in arrays.items():
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)  # keep tensor data aligned

    def write(handle: io.BufferedIOBase) -> None:
        handle.write(struct.pack("<Q", len(header_bytes)))
        handle.write(header_bytes)
        for _, array in arrays.values():
            handle.write(array.tobytes())

    try:
        atomic_write(path, write, overwrite=False)
    except FileExistsError:
        raise StyleFileError(f"{path}: a file of that name exists already; choose another name") from None
    except OSError as exc:
        raise StyleFileError(f"{path}: cannot write the style file ({exc.strerror or exc})") from None


def _to_numpy(value: Any):
    import numpy as np
    if hasattr(value, "detach"):  # torch tensor; bf16 has no numpy twin, so go through fp32
        value = value.detach().to("cpu").float().numpy()
    return np.asarray(value)


def _encode_png(rgb: Any) -> bytes:
    import numpy as np
    from .images import encode  # OpenCV: only saving needs it, never reading metadata
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError("thumbnail must be an RGB uint8 image")
    try:
        return encode(rgb)
    except ValueError:
        raise ValueError("could not encode the thumbnail") from None


# -- reading ------------------------------------------------------------------------------------

def read_style_info(path: str) -> StyleInfo:
    """Metadata, architecture and thumbnail, checked; standard library only."""
    label = os.path.basename(path) or path

    def fail(reason: str) -> StyleFileError:
        return StyleFileError(f"{label}: {reason}")

    try:
        status = os.stat(path)
        if stat.S_ISDIR(status.st_mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(status.st_mode):  # a pipe or device: open() or read() could block
            raise fail("not a regular file")
        size = status.st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if size == 0:
                raise fail("the file is empty")
            if len(prefix) < 8:
                raise fail("the file is truncated (no header)")
            (header_size,) = struct.unpack("<Q", prefix)
            if header_size > MAX_HEADER_BYTES or header_size < 2:
                raise fail("not a style file (bad header size)")
            if 8 + header_size > size:
                raise fail("the file is truncated (header cut short)")
            header_bytes = handle.read(header_size)
            header = _parse_header(header_bytes, fail)
            meta_fields = header.pop("__metadata__")
            tensors = _parse_tensors(header, size - 8 - header_size, fail)
            thumbnail = None
            entry = tensors.pop(THUMBNAIL_KEY, None)
            if entry is not None:
                if entry.dtype != "U8" or entry.end - entry.begin > MAX_THUMBNAIL_BYTES:
                    raise fail("the thumbnail entry is malformed")
                handle.seek(8 + header_size + entry.begin)
                thumbnail = handle.read(entry.end - entry.begin)
                if not thumbnail.startswith(PNG_SIGNATURE):
                    thumbnail = None  # a bad picture must not make the style unusable
    except FileNotFoundError:
        raise StyleFileError(f"{path}: style file not found") from None
    except IsADirectoryError:
        raise StyleFileError(f"{path}: is a folder, not a style file") from None
    except PermissionError:
        raise StyleFileError(f"{path}: permission denied") from None
    except OSError as exc:
        raise StyleFileError(f"{path}: cannot read ({exc.strerror or exc})") from None

    version = _parse_version(meta_fields, fail)
    arch = _json_field(meta_fields, "arch", fail)
    meta = _json_field(meta_fields, "meta", fail)
    if not isinstance(arch.get("type"), str):
        raise fail("the architecture description is missing its type")
    return StyleInfo(path=path, arch=arch, meta=meta, thumbnail_png=thumbnail,
                     format_version=version, tensors=tensors, data_offset=8 + header_size)


def _parse_header(header_bytes: bytes, fail) -> dict[str, Any]:
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise fail("not a style file (header is not JSON)") from None
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__"), dict):
        raise fail("not a style file (no metadata)")
    meta = header["__metadata__"]
    if meta.get("format") != FORMAT_NAME:
        raise fail("not a style file (a safetensors file of another kind)")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise fail("not a style file (metadata values must be text)")
    return header


def _parse_version(meta_fields: dict[str, str], fail) -> int:
    try:
        version = int(meta_fields.get("format_version", ""))
    except ValueError:
        raise fail("not a style file (no format version)") from None
    if version > FORMAT_VERSION:
        raise fail(f"made by a newer version of the add-on (format {version}, this one reads "
                   f"up to {FORMAT_VERSION}); update the add-on")
    if version < 1:
        raise fail(f"unknown format version {version}")
    return version


def _json_field(meta_fields: dict[str, str], key: str, fail) -> dict[str, Any]:
    text = meta_fields.get(key)
    if not isinstance(text, str) or len(text) > MAX_METADATA_FIELD:
        raise fail(f"the '{key}' metadata is missing or too large")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise fail(f"the '{key}' metadata is not valid JSON") from None
    if not isinstance(value, dict):
        raise fail(f"the '{key}' metadata must be an object")
    if _depth(value) > MAX_METADATA_DEPTH:  # printing or walking it could hit the recursion limit
        raise fail(f"the '{key}' metadata is nested too deeply")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _parse_tensors(header: dict[str, Any], data_size: int, fail) -> dict[str, TensorEntry]:
    if len(header) > MAX_TENSORS:
        raise fail("too many tensors")
    tensors: dict[str, TensorEntry] = {}
    spans = []
    for name, entry in header.items():
        if not isinstance(entry, dict):
            raise fail(f"tensor {name[:40]!r} is malformed")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPES:  # (a list is not even hashable)
            shown = dtype[:16] if isinstance(dtype, str) else type(dtype).__name__
            raise fail(f"tensor {name[:40]!r} has an unsupported type {shown!r}")
        if (not isinstance(shape, list) or len(shape) > 8
                or not all(_natural(d) for d in shape)
                or math.prod(max(d, 1) for d in shape) >= 1 << 48):  # (an empty tensor too:
            raise fail(f"tensor {name[:40]!r} has a bad shape")      # torch overflows on it)
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(_natural(o) for o in offsets) or offsets[0] > offsets[1]):
            raise fail(f"tensor {name[:40]!r} has bad offsets")
        begin, end = offsets
        if end > data_size:
            raise fail("the file is truncated (tensor data cut short)")
        if end - begin != math.prod(shape) * DTYPES[dtype][0]:
            raise fail(f"tensor {name[:40]!r} size does not match its shape")
        tensors[name] = TensorEntry(dtype, tuple(shape), begin, end)
        spans.append((begin, end))
    spans.sort()
    for (_, end_a), (begin_b, _) in zip(spans, spans[1:]):
        if begin_b < end_a:
            raise fail("tensors overlap")
    return tensors


def _natural(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 40


def load_style(path: str):
    """(StyleInfo, {name: torch.Tensor}) - weights copied from bytes, no code executed."""
    import torch

    info = read_style_info(path)
    torch_dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                    "U8": torch.uint8, "I64": torch.int64, "I32": torch.int32}
    tensors = {}
    try:
        with open(path, "rb") as handle:
            for name, entry in info.tensors.items():
                handle.seek(info.data_offset + entry.begin)
                raw = bytearray(handle.read(entry.end - entry.begin))
                if len(raw) != entry.end - entry.begin:
                    raise StyleFileError(f"{os.path.basename(path)}: the file is truncated")
                flat = (torch.frombuffer(raw, dtype=torch_dtypes[entry.dtype]) if raw
                        else torch.empty(0, dtype=torch_dtypes[entry.dtype]))
                tensors[name] = flat.reshape(entry.shape)
    except OSError as exc:
        raise StyleFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return info, tensors
