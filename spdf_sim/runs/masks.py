"""Loading the bit-packed masks of a run directory, with every failure named.

A mask file ``masks/<key>.npy`` holds ``np.packbits`` of the flattened bool
mask as a 1D uint8 array; ``key`` is the first 16 hex digits of the sha256 of
the mask's shape and packed bits, so a loaded mask is checked against its name.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from spdf_sim.errors import SpdfSimError

# NOTE: only bit-packed masks are read, not per-row and per-column counts. A
# trace without masks records is costed from the nnz of its layers records.
ADVICE = "re-run or resume the training run to rewrite it, or project a copy of the run that has it"


def mask_hash(mask: np.ndarray) -> str:
    """Return the content key of a bool mask: sha256 of its shape and packed bits, 16 hex digits."""
    digest = hashlib.sha256(repr(tuple(mask.shape)).encode())
    digest.update(np.packbits(mask.reshape(-1)).tobytes())
    return digest.hexdigest()[:16]


def load_mask(path: Path, shape: tuple[int, ...], key: str) -> np.ndarray:
    """Load one mask file and unpack it to a bool array of ``shape``, checking it against ``key``."""
    packed = _read_packed(path, math.ceil(math.prod(shape) / 8))
    mask = np.unpackbits(packed, count=math.prod(shape)).astype(bool).reshape(shape)
    if mask_hash(mask) != key:
        raise SpdfSimError(f"mask file {path} is corrupt: its content does not match its key "
                           f"{key} for shape {list(shape)}; {ADVICE}")
    return mask


def _read_packed(path: Path, expected_bytes: int) -> np.ndarray:
    """Read the packed bytes, checking the .npy header before trusting its size."""
    try:
        with open(path, "rb") as file:
            shape, dtype = _read_header(file, path)
            if dtype != np.uint8 or shape != (expected_bytes,):
                raise SpdfSimError(
                    f"mask file {path} holds a {dtype} array of shape {shape}, expected uint8 "
                    f"of shape ({expected_bytes},) for this weight; {ADVICE}")
            data = file.read(expected_bytes)
    except FileNotFoundError:
        raise SpdfSimError(f"mask file {path} is missing; {ADVICE}") from None
    except OSError as error:
        raise SpdfSimError(f"mask file {path} could not be read ({error.strerror}); "
                           f"{ADVICE}") from None
    if len(data) != expected_bytes:
        raise SpdfSimError(f"mask file {path} is truncated: {len(data)} of {expected_bytes} "
                           f"bytes; {ADVICE}")
    return np.frombuffer(data, dtype=np.uint8)


def _read_header(file, path: Path) -> tuple[tuple, np.dtype]:
    try:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(file)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(file)
        else:
            raise ValueError(f"format version {version}, expected 1.0 or 2.0 as np.save writes")
    except Exception as error:  # noqa: BLE001
        # numpy parses the header text as a Python literal and, on damaged text,
        # raises ValueError, SyntaxError or tokenize errors; any of them means a bad file.
        raise SpdfSimError(f"mask file {path} has an invalid .npy header ({error}); "
                           f"{ADVICE}") from None
    return shape, dtype
