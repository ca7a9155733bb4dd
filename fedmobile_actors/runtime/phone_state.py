"""The server's authoritative store of per-phone state for stateful strategies.

Why on the server, in a simulator where the state "stays on the phone": hosts are disposable (Ray
restarts a killed host and re-runs its lost tasks), so a host must be able to re-run a task from
exactly the state the lost run started from; and a checkpoint must hold every phone's state for
``resume`` to be exact. The store therefore travels beside tasks (input state out, new state back)
but never through the simulated network: no byte count includes it.

Memory: one encoded blob per phone that has trained, nothing for the others.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from fedmobile_actors.algorithms.strategy import Arrays
from fedmobile_actors.errors import WireError
from fedmobile_actors.wire import decode_arrays


class PhoneStateStore:
    """phone_id -> encoded arrays (the wire's array encoding), only for phones that trained."""

    def __init__(self, blobs: Mapping[int, bytes] | None = None) -> None:
        self._blobs: dict[int, bytes] = dict(blobs or {})

    def get(self, phone_id: int) -> bytes | None:
        """The phone's state after its last trained task; None before its first."""
        return self._blobs.get(phone_id)

    def arrays(self, phone_id: int) -> Arrays | None:
        """The phone's state decoded (e.g. to evaluate the global model with its own BatchNorm
        statistics: ``strategy.evaluate(state, test, present, store.arrays(phone))``)."""
        blob = self._blobs.get(phone_id)
        return decode_arrays(blob) if blob is not None else None

    def put(self, phone_id: int, blob: bytes | None) -> None:
        """Replace the phone's state (None leaves it unchanged: the task kept no state)."""
        if blob is not None:
            self._blobs[phone_id] = blob

    def __len__(self) -> int:
        return len(self._blobs)

    def __contains__(self, phone_id: object) -> bool:
        return phone_id in self._blobs

    def phones(self) -> list[int]:
        return sorted(self._blobs)

    def decoded(self) -> Iterator[Arrays]:
        """Every stored state, decoded, in phone order (for the pooled evaluation)."""
        for phone in self.phones():
            yield decode_arrays(self._blobs[phone])

    def nbytes(self) -> int:
        return sum(len(b) for b in self._blobs.values())

    def to_checkpoint(self) -> dict[str, bytes]:
        return {str(p): self._blobs[p] for p in self.phones()}

    @staticmethod
    def from_checkpoint(data: object) -> PhoneStateStore:
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and k.isascii() and k.isdigit() and isinstance(v, bytes)
            for k, v in data.items()
        ):
            raise WireError("checkpoint's phone state is not a mapping of phone ids to bytes")
        return PhoneStateStore({int(k): v for k, v in data.items()})
