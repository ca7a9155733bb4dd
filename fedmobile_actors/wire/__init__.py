"""Wire layer: msgpack payloads with numpy arrays as an extension type; validated decoding."""

from fedmobile_actors.wire.codec import (
    decode_arrays,
    decode_update,
    encode_arrays,
    encode_update,
    pack,
    unpack,
)

__all__ = ["decode_arrays", "decode_update", "encode_arrays", "encode_update", "pack", "unpack"]
