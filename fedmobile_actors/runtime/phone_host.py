"""A phone host: one process that hosts many light phones and trains them one at a time.

A Ray actor is a process with its own torch runtime, so phones are not actors: a host keeps its
phones' shards resident (sticky placement), decodes each global model version once, keeps one
working model (inside the strategy) and runs tasks sequentially with ``torch_threads`` threads.
This class is plain Python; ``ray_backend`` wraps it late with ``ray.remote``.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import replace

import torch

from fedmobile_actors.algorithms.device import CPU, resolve_device
from fedmobile_actors.algorithms.registry import make_strategy, strategy_class
from fedmobile_actors.algorithms.strategy import Arrays, Strategy
from fedmobile_actors.data import LocalData
from fedmobile_actors.runtime.world import SharedData, World
from fedmobile_actors.scenario.schema import Scenario
from fedmobile_actors.wire import decode_arrays, encode_arrays, encode_update

#: Decoded model versions a host keeps (async tasks may train on a few older versions).
PAYLOAD_CACHE = 8


def local_data_bytes(data: LocalData) -> int:
    """What one phone's data holds in memory: windows, labels, subjects and presence masks."""
    arrays = [*data.dataset.modalities.values(), data.dataset.labels, data.dataset.subjects]
    return sum(a.nbytes for a in arrays) + sum(m.nbytes for m in data.present.values())


class PhoneHost:
    """Trains the phones placed on it; every result is a function of (scenario, task) alone."""

    def __init__(self, scenario: Scenario, shared: SharedData | None = None) -> None:
        torch.set_num_threads(scenario.runtime.torch_threads)
        self.scenario = scenario
        self.world = World.build(scenario, shared)
        name = scenario.algorithm.name
        on_gpu = strategy_class(name).trains_on_gpu
        #: "cuda" when this host trains on its GPU (runtime.device), else "cpu".
        self.device = resolve_device(scenario.runtime, on_gpu, name)
        if self.device == CPU and not on_gpu and scenario.runtime.gpus_per_host > 0:
            warnings.warn(
                f"algorithm {name!r} trains on the CPU only; the GPU reserved for this host "
                "(runtime.gpus_per_host) is left idle",
                stacklevel=2,
            )
        context = replace(self.world.context(), device=self.device)
        self.strategy: Strategy = make_strategy(context)
        self._phones: OrderedDict[int, LocalData] = OrderedDict()
        self._phone_bytes: dict[int, int] = {}
        self.cached_bytes = 0  # of on-demand shards held now (0 with dealt data)
        #: On-demand shards are kept within this budget; dealt shards are views of the shared
        #: data (no copy), so they are all kept.
        self.cache_bytes = (
            scenario.runtime.shard_cache_mb * 2**20 if self.world.on_demand is not None else None
        )
        self._payloads: OrderedDict[int, Arrays] = OrderedDict()

    def ready(self) -> bool:
        """Called once after start-up so the driver knows the host has built its world."""
        return True

    def phone(self, phone_id: int) -> LocalData:
        """Phone ``phone_id``'s data, made on first use and kept (least recently used first out
        when on-demand shards pass ``runtime.shard_cache_mb``; a dropped phone's shard is remade
        bit for bit from its key when it is dispatched again)."""
        data = self._phones.get(phone_id)
        if data is not None:
            self._phones.move_to_end(phone_id)
            return data
        data = self.world.local_data(phone_id)
        self._phones[phone_id] = data
        if self.cache_bytes is not None:
            self._phone_bytes[phone_id] = local_data_bytes(data)
            self.cached_bytes += self._phone_bytes[phone_id]
            while len(self._phones) > 1 and self.cached_bytes > self.cache_bytes:
                oldest, _ = self._phones.popitem(last=False)
                self.cached_bytes -= self._phone_bytes.pop(oldest)
        return data

    def payload(self, version: int, payload: bytes) -> Arrays:
        """The decoded global payload of ``version`` (decoded once per host)."""
        if version in self._payloads:
            self._payloads.move_to_end(version)
            return self._payloads[version]
        arrays = decode_arrays(payload)
        self._payloads[version] = arrays
        while len(self._payloads) > PAYLOAD_CACHE:
            self._payloads.popitem(last=False)
        return arrays

    def has_payload(self, version: int) -> bool:
        return version in self._payloads

    def _arrays(self, base_version: int, payload: bytes | None) -> Arrays:
        if payload is None and base_version not in self._payloads:
            raise RuntimeError(f"host has no payload for version {base_version}")
        return (
            self.payload(base_version, payload)
            if payload is not None
            else self._payloads[base_version]
        )

    def train(self, task_id: int, phone_id: int, base_version: int, payload: bytes | None) -> bytes:
        """Run one task and return the encoded update (what the phone would upload)."""
        arrays = self._arrays(base_version, payload)
        update = self.strategy.local_update(
            arrays, self.phone(phone_id), phone_id, base_version, task_id
        )
        return encode_update(update)

    def train_with_state(
        self,
        task_id: int,
        phone_id: int,
        base_version: int,
        payload: bytes | None,
        phone_state: bytes | None,
    ) -> tuple[bytes, bytes | None]:
        """Run one task of a stateful strategy from the phone's state: the encoded update and,
        apart from it (never charged as uploaded bytes), the phone's new encoded state. The host
        keeps no state of its own, so a restarted host re-runs the task identically."""
        arrays = self._arrays(base_version, payload)
        state = decode_arrays(phone_state) if phone_state is not None else None
        update = self.strategy.local_update(
            arrays, self.phone(phone_id), phone_id, base_version, task_id, state
        )
        out = encode_arrays(update.phone_state) if update.phone_state is not None else None
        return encode_update(update), out
