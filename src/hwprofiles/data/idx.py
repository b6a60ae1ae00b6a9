"""Read IDX files, the format of MNIST and Fashion-MNIST, with numpy alone.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian ``uint32`` per dimension, then the values in C order.
Reading it here rather than through torchvision keeps the common path free of
that import and takes well under a second for the 60000 Fashion-MNIST images.

    >>> from hwprofiles.data.idx import read_idx
    >>> path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
    >>> images = read_idx(path)  # doctest: +SKIP
    >>> images.shape, images.dtype  # doctest: +SKIP
    ((10000, 28, 28), dtype('uint8'))
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from hwprofiles.errors import DataNotFoundError

# type code -> big-endian dtype, as the format defines them
_IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def _corrupt(path: Path, why: str) -> DataNotFoundError:
    return DataNotFoundError(
        f"{path} is not a valid IDX file: {why}.\n"
        "Delete it and fetch the dataset again (--download when online), or point "
        "--data-root at a good copy."
    )


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file, gzip-compressed (``.gz``) or plain.

    Args:
        path: the file; a name ending in ``.gz`` is decompressed.

    Returns:
        The array with the shape and type the header declares, in native byte order.

    Raises:
        DataNotFoundError: the file is missing, is not gzip when named ``.gz``, has a
            bad magic number, or is shorter or longer than its header says. The
            message names the file.

    >>> read_idx("t10k-labels-idx1-ubyte.gz").shape  # doctest: +SKIP
    (10000,)
    """
    path = Path(path)
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataNotFoundError(f"{path} does not exist.") from exc
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise _corrupt(path, f"it cannot be decompressed ({exc})") from exc

    if len(raw) < 4:
        raise _corrupt(path, f"it is {len(raw)} bytes long, too short for a header")
    zero1, zero2, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero1 != 0 or zero2 != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise _corrupt(path, f"bad magic number 0x{raw[:4].hex()}")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise _corrupt(path, f"the header declares {ndim} dimensions but the file ends first")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header_len
    if actual != expected:
        state = "truncated" if actual < expected else "longer than its header says"
        raise _corrupt(
            path,
            f"it is {state} (shape {shape} needs {expected} bytes of data, it has {actual})",
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    # frombuffer over bytes is read-only and big-endian: hand back a writable native copy
    return data.astype(dtype.newbyteorder("="))
