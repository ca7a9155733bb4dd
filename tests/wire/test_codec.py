"""The codec round-trips what it should and rejects, as ``WireError``, everything else.

Each rejection path of wire/codec.py is hit once, with the message that names the fault.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np
import pytest

from fedmobile_actors.algorithms.strategy import ClientUpdate
from fedmobile_actors.errors import WireError
from fedmobile_actors.wire import codec
from fedmobile_actors.wire.codec import (
    ARRAY_EXT,
    decode_arrays,
    decode_update,
    encode_arrays,
    encode_update,
    pack,
    unpack,
)

EXPECTED = {"w": ("float32", (2, 3)), "b": ("float32", (3,))}


def _update(**arrays: np.ndarray) -> ClientUpdate:
    arrays = arrays or {"w": np.ones((2, 3), np.float32), "b": np.zeros(3, np.float32)}
    return ClientUpdate(
        phone_id=7, base_version=2, num_samples=40, arrays=arrays, metrics={"loss": 0.5}
    )


def _array_ext(dtype: Any, shape: Any, raw: Any) -> msgpack.ExtType:
    """An array extension with arbitrary (possibly lying) dtype, shape and bytes."""
    return msgpack.ExtType(ARRAY_EXT, msgpack.packb([dtype, shape, raw], use_bin_type=True))


def _raw(obj: Any) -> bytes:
    """A payload packed by plain msgpack, so it can hold what ``pack`` would never write."""
    return msgpack.packb(obj, use_bin_type=True)


def _header(phone: int = 7, base: int = 2, samples: int = 40) -> msgpack.ExtType:
    raw = np.array([phone, base, samples], np.int64).tobytes()
    return _array_ext("int64", [3], raw)


def test_an_update_round_trips_bit_for_bit() -> None:
    """What a phone encodes is what the server decodes, validated against the expected shapes."""
    update = _update()
    decoded = decode_update(encode_update(update), EXPECTED)
    assert (decoded.phone_id, decoded.base_version, decoded.num_samples) == (7, 2, 40)
    assert decoded.metrics == {"loss": 0.5}
    assert all(decoded.arrays[k].tobytes() == update.arrays[k].tobytes() for k in EXPECTED)


def test_encoding_refuses_a_dtype_that_cannot_travel() -> None:
    """Object arrays could carry code; they are refused when encoding already."""
    with pytest.raises(TypeError, match="cannot travel"):
        pack({"x": np.array([object()], dtype=object)})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_raw(msgpack.ExtType(5, b"")), "unknown extension type 5"),
        (_raw(msgpack.ExtType(ARRAY_EXT, b"\xc1")), "corrupt array extension"),
        (_raw(_array_ext("object", [1], b"x")), "dtype 'object' is not allowed"),
        (_raw(_array_ext("float32", [-1], b"")), r"shape \[-1\] is invalid"),
        (_raw(_array_ext("float32", [2], b"\x00" * 4)), "carries 4 bytes, not 8"),
        (b"\xc1", "corrupt payload"),
    ],
    ids=["unknown-ext", "corrupt-ext", "dtype", "shape", "byte-count", "not-msgpack"],
)
def test_unpack_rejects_malformed_bytes(payload: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message):
        unpack(payload)


def test_unpack_rejects_what_is_not_bytes() -> None:
    with pytest.raises(WireError, match="payload is a str, not bytes"):
        unpack("not bytes")  # type: ignore[arg-type]


def test_unpack_refuses_a_payload_over_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The size check runs before parsing (the real limit is 2 GiB; lowered here)."""
    monkeypatch.setattr(codec, "MAX_PAYLOAD_BYTES", 8)
    with pytest.raises(WireError, match="payload of 9 bytes exceeds the limit"):
        unpack(b"\x00" * 9)


def test_decode_arrays_rejects_what_is_not_named_arrays() -> None:
    assert decode_arrays(encode_arrays({"w": np.ones(2)}))["w"].tolist() == [1.0, 1.0]
    with pytest.raises(WireError, match="not a mapping of names to arrays"):
        decode_arrays(pack({"w": [1.0, 2.0]}))


def _update_payload(**fields: Any) -> bytes:
    """A raw update whose fields can each be replaced by something wrong."""
    arrays = {"w": np.ones((2, 3), np.float32), "b": np.zeros(3, np.float32)}
    body: dict[str, Any] = {
        "header": _header(),
        "arrays": {
            k: _array_ext(a.dtype.name, list(a.shape), a.tobytes()) for k, a in arrays.items()
        },
        "metrics": {"loss": 0.5},
    }
    body.update(fields)
    return _raw({k: v for k, v in body.items() if v is not None})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"metrics": None}, "does not have the fields header, arrays, metrics"),
        ({"header": [7, 2, 40]}, "header is not three int64 values"),
        ({"header": _header(samples=-1)}, "claims -1 samples"),
        ({"arrays": [1, 2]}, "arrays are not a mapping of names to arrays"),
        ({"metrics": {"loss": "low"}}, "metrics are not a mapping of names to numbers"),
    ],
    ids=["fields", "header", "samples", "arrays", "metrics"],
)
def test_decode_update_rejects_a_malformed_update(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(WireError, match=message):
        decode_update(_update_payload(**fields), EXPECTED)


def test_decode_update_rejects_missing_or_extra_arrays() -> None:
    payload = encode_update(_update(w=np.ones((2, 3), np.float32), c=np.zeros(3, np.float32)))
    with pytest.raises(WireError, match=r"missing \['b'\], extra \['c'\]"):
        decode_update(payload, EXPECTED)


def test_decode_update_rejects_a_wrong_shape_or_dtype() -> None:
    payload = encode_update(_update(w=np.ones((3, 2), np.float32), b=np.zeros(3, np.float64)))
    with pytest.raises(WireError, match=r"'w' is float32\[3, 2\], expected float32\[2, 3\]"):
        decode_update(payload, EXPECTED)


def test_decode_update_rejects_non_finite_values() -> None:
    w = np.ones((2, 3), np.float32)
    w[1, 2] = np.nan
    with pytest.raises(WireError, match="'w' holds NaN or infinite values"):
        decode_update(encode_update(_update(w=w, b=np.zeros(3, np.float32))), EXPECTED)
