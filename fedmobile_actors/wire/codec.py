"""The wire format: msgpack with numpy arrays as an extension type. No pickle of client payloads.

An array travels as ext type 1 holding msgpack([dtype string, shape list, raw C-order bytes]).
Only plain numeric dtypes are accepted, so a payload can never carry code. The encoded length is
what the simulated network charges, so byte counts are those of real payloads.

Decoding validates: an update must have exactly the expected array names, dtypes and shapes, and
finite values; anything else raises ``WireError`` and the server counts it as rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack
import numpy as np

from fedmobile_actors.algorithms.strategy import Arrays, ClientUpdate
from fedmobile_actors.errors import WireError

ARRAY_EXT = 1
ALLOWED_DTYPES = frozenset(
    {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"}
)
#: Refuse payloads larger than this before parsing (a simulated phone has no business sending 2 GB).
MAX_PAYLOAD_BYTES = 1 << 31


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.name not in ALLOWED_DTYPES:
            raise TypeError(f"dtype {obj.dtype} cannot travel on the wire")
        body = msgpack.packb(
            [obj.dtype.name, list(obj.shape), np.ascontiguousarray(obj).tobytes()],
            use_bin_type=True,
        )
        return msgpack.ExtType(ARRAY_EXT, body)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> Any:
    if code != ARRAY_EXT:
        raise WireError(f"unknown extension type {code}")
    try:
        dtype, shape, raw = msgpack.unpackb(data, raw=False)
    except Exception as err:  # msgpack raises several unrelated types on garbage
        raise WireError(f"corrupt array extension: {err}") from None
    if dtype not in ALLOWED_DTYPES or not isinstance(shape, list):
        raise WireError(f"array of dtype {dtype!r} is not allowed")
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise WireError(f"array shape {shape!r} is invalid")
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if not isinstance(raw, bytes) or len(raw) != expected:
        raise WireError(f"array of shape {shape} {dtype} carries {len(raw)} bytes, not {expected}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def pack(obj: Any) -> bytes:
    """Encode plain data (dicts, lists, numbers, strings, numpy arrays) to bytes."""
    return msgpack.packb(obj, default=_default, use_bin_type=True)


def unpack(data: bytes) -> Any:
    """Decode bytes made by ``pack``; anything malformed raises ``WireError``."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireError(f"payload is a {type(data).__name__}, not bytes")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise WireError(f"payload of {len(data)} bytes exceeds the limit")
    try:
        return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=True)
    except WireError:
        raise
    except Exception as err:
        raise WireError(f"corrupt payload: {type(err).__name__}: {err}") from None


def encode_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    """A model (or any named arrays) as one payload."""
    return pack(dict(arrays))


def decode_arrays(data: bytes) -> Arrays:
    obj = unpack(data)
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise WireError("payload is not a mapping of names to arrays")
    return obj


def encode_update(update: ClientUpdate) -> bytes:
    """One update. Ids travel as a fixed-width int64 array and metrics as float64, so the encoded
    size depends only on the array shapes and metric names: the server knows it before training."""
    header = np.array([update.phone_id, update.base_version, update.num_samples], dtype=np.int64)
    return pack(
        {
            "header": header,
            "arrays": update.arrays,
            "metrics": {k: np.float64(v).item() for k, v in update.metrics.items()},
        }
    )


def decode_update(
    data: bytes, expected: Mapping[str, tuple[str, tuple[int, ...]]] | None = None
) -> ClientUpdate:
    """Decode and validate one update against ``expected`` {name: (dtype, shape)}."""
    obj = unpack(data)
    if not isinstance(obj, dict) or set(obj) != {"header", "arrays", "metrics"}:
        raise WireError("update does not have the fields header, arrays, metrics")
    header, arrays, metrics = obj["header"], obj["arrays"], obj["metrics"]
    if not isinstance(header, np.ndarray) or header.dtype != np.int64 or header.shape != (3,):
        raise WireError("update header is not three int64 values (phone, base version, samples)")
    phone, base, n = (int(v) for v in header)
    if n < 0:
        raise WireError(f"update claims {n} samples")
    if not isinstance(arrays, dict) or not all(isinstance(a, np.ndarray) for a in arrays.values()):
        raise WireError("update's arrays are not a mapping of names to arrays")
    if not isinstance(metrics, dict) or not all(
        isinstance(v, float | int) for v in metrics.values()
    ):
        raise WireError("update's metrics are not a mapping of names to numbers")
    if expected is not None:
        check_arrays(arrays, expected)
    for name, a in arrays.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise WireError(f"update array {name!r} holds NaN or infinite values")
    return ClientUpdate(
        phone_id=phone, base_version=base, num_samples=n, arrays=arrays, metrics=dict(metrics)
    )


def check_arrays(
    arrays: Mapping[str, np.ndarray], expected: Mapping[str, tuple[str, tuple[int, ...]]]
) -> None:
    """Names, dtypes and shapes must match exactly."""
    if set(arrays) != set(expected):
        missing = sorted(set(expected) - set(arrays))[:3]
        extra = sorted(set(arrays) - set(expected))[:3]
        raise WireError(f"update arrays differ from expected (missing {missing}, extra {extra})")
    for name, (dtype, shape) in expected.items():
        a = arrays[name]
        if a.dtype.name != dtype or tuple(a.shape) != tuple(shape):
            raise WireError(
                f"update array {name!r} is {a.dtype.name}{list(a.shape)}, "
                f"expected {dtype}{list(shape)}"
            )
