"""Every random draw in a run comes from (seed, phone, round, purpose).

Why: results must not depend on how many hosts or machines run a scenario, on the order in which
results arrive, or on whether a host died and a task was re-run. A stream keyed by what the draw
is *for* gives the same numbers wherever and whenever it is drawn. ``numpy.random.SeedSequence``
mixes the key words into independent, well-spread states.
"""

from __future__ import annotations

import zlib

import numpy as np

#: The phone id used for draws that belong to no phone (server-side selection, probe batches).
SERVER = -1


def _purpose_code(purpose: str) -> int:
    return zlib.crc32(purpose.encode("utf-8"))


def seed_sequence(seed: int, phone: int, round_index: int, purpose: str) -> np.random.SeedSequence:
    """The seed sequence of one named stream; negative ids are shifted to stay non-negative."""
    words = [int(seed) & 0xFFFFFFFF, int(phone) + 2, int(round_index) + 2, _purpose_code(purpose)]
    return np.random.SeedSequence(words)


def rng(seed: int, phone: int, round_index: int, purpose: str) -> np.random.Generator:
    """A numpy generator for one (seed, phone, round, purpose) stream."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, phone, round_index, purpose)))


def int_seed(seed: int, phone: int, round_index: int, purpose: str) -> int:
    """A 63-bit integer seed for libraries that take one (torch.Generator, scikit-learn)."""
    state = seed_sequence(seed, phone, round_index, purpose).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & 0x7FFFFFFFFFFFFFFF
