"""Per-phone state size of each model kind on USC-HAD shapes (acc, gyro: 3 x 200; 12 classes).

Prints, per model kind, the encoded size of an update, of the local BatchNorm state a FedAvg-family
strategy keeps per phone, and of the momentum buffers ``fedavg_local_momentum`` keeps per phone.
Run: ``python -m benchmarks.bench_phone_state``.
"""

from __future__ import annotations

from fedmobile_actors.algorithms.models.base import get_arrays
from fedmobile_actors.algorithms.models.registry import MODEL_KINDS, build_model
from fedmobile_actors.scenario.schema import ModelConfig
from fedmobile_actors.wire import encode_arrays

SHAPES = {"acc": (3, 200), "gyro": (3, 200)}


def main() -> None:
    for kind in MODEL_KINDS:
        model = build_model(kind, SHAPES, 12, ModelConfig(kind=kind), 0)
        arrays = get_arrays(model)
        local_keys = set(model.local_keys())
        local = {k: a for k, a in arrays.items() if k in local_keys}
        shared = {k: a for k, a in arrays.items() if k not in local_keys}
        params = {n: p.detach().numpy() for n, p in model.named_parameters()}
        bn = len(encode_arrays(local)) if local else 0
        print(
            f"{kind}: update {len(encode_arrays(shared))} B, BatchNorm state {bn} B, "
            f"momentum state {len(encode_arrays(params))} B"
        )


if __name__ == "__main__":
    main()
