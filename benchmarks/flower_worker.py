"""Child process: the same workload on Flower's Ray-based simulation (flwr 1.42, Message API).

Written the way Flower's own PyTorch quickstart is: a ``ClientApp`` whose ``train`` builds the
model, loads the received ``ArrayRecord``, trains one epoch and replies with the new arrays and
``num-examples``; a ``ServerApp`` running the ``FedAvg`` strategy with every node every round and
federated evaluation off (``fraction_evaluate=0``); ``run_simulation`` on the Ray backend with
1 CPU per client (2 clients train at once on 2 cores) and one torch thread per client.

Data: each Ray worker process builds the workload's split once (module-level cache, as Flower
examples do with ``FederatedDataset``) from the project's own functions, so both frameworks
train the identical shards. Round times come from a ``FedAvg`` subclass that notes when each
round is configured and when its aggregation ends.
"""

from __future__ import annotations

import time

STARTED_AT = time.time()  # before the heavy imports: they are part of start-up

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from collections.abc import Iterable  # noqa: E402
from functools import lru_cache  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.serverapp import Grid, ServerApp  # noqa: E402
from flwr.serverapp.strategy import FedAvg  # noqa: E402
from flwr.simulation import run_simulation  # noqa: E402

from benchmarks.common import SEED, workload_data, workload_scenario  # noqa: E402
from benchmarks.plain_loop import plain_train  # noqa: E402
from fedmobile_actors.algorithms.model import MultimodalNet, build_model  # noqa: E402
from fedmobile_actors.scenario.schema import ModelConfig  # noqa: E402

#: Set by main() before the simulation starts; Ray workers read it from the environment.
PHONES_ENV = "BENCH_FLOWER_PHONES"


@lru_cache(maxsize=1)
def _data(phones: int) -> tuple[Any, list[Any]]:
    return workload_data(phones)


@lru_cache(maxsize=1)
def _model_config(phones: int) -> ModelConfig:
    return workload_scenario(phones, phones, 2).model


def _model(phones: int) -> MultimodalNet:
    """A fresh model per call, as Flower's quickstart builds ``Net()`` in each ``train``."""
    split, _ = _data(phones)
    return build_model(split.train.shapes, split.train.num_classes, _model_config(phones), SEED)


client_app = ClientApp()


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    """One phone's local epoch: Flower's quickstart pattern with the workload's model."""
    torch.set_num_threads(1)
    phones = int(os.environ[PHONES_ENV])
    phone = int(context.node_config["partition-id"])
    split, shards = _data(phones)
    shard = split.train.subset(shards[phone])
    model = _model(phones)
    arrays = msg.content["arrays"]
    assert isinstance(arrays, ArrayRecord)
    model.load_state_dict(arrays.to_torch_state_dict())
    inputs = {n: torch.from_numpy(a) for n, a in shard.modalities.items()}
    rng = torch.Generator().manual_seed(phone)
    loss = plain_train(model, inputs, torch.from_numpy(shard.labels), rng)
    content = RecordDict(
        {
            "arrays": ArrayRecord(model.state_dict()),
            "metrics": MetricRecord({"train_loss": loss, "num-examples": len(shard)}),
        }
    )
    return Message(content=content, reply_to=msg)


class TimedFedAvg(FedAvg):
    """FedAvg that notes wall-clock times: round configured, round aggregated."""

    configured: list[float] = []  # noqa: RUF012 - one strategy per process
    aggregated: list[float] = []  # noqa: RUF012
    replies: list[int] = []  # noqa: RUF012

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        TimedFedAvg.configured.append(time.time())
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        out = super().aggregate_train(server_round, replies)
        TimedFedAvg.aggregated.append(time.time())
        TimedFedAvg.replies.append(sum(1 for r in replies if not r.has_error()))
        return out


def make_server_app(phones: int, rounds: int) -> ServerApp:
    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        strategy = TimedFedAvg(
            fraction_train=1.0,
            fraction_evaluate=0.0,
            min_train_nodes=phones,
            min_available_nodes=phones,
        )
        initial = ArrayRecord(_model(phones).state_dict())
        strategy.start(grid=grid, initial_arrays=initial, num_rounds=rounds)

    return server_app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--phones", type=int, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    os.environ[PHONES_ENV] = str(args.phones)
    imported_at = time.time()
    backend_config: Any = {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {"num_cpus": os.cpu_count(), "include_dashboard": False},
    }
    # The apps are taken from the module by its importable name, not from ``__main__``, so Ray
    # pickles them by reference and each worker imports the module (and its data cache) once.
    from benchmarks import flower_worker as apps

    run_simulation(
        server_app=apps.make_server_app(args.phones, args.rounds),
        client_app=apps.client_app,
        num_supernodes=args.phones,
        backend_name="ray",
        backend_config=backend_config,
    )
    done_at = time.time()
    ends = apps.TimedFedAvg.aggregated
    starts = apps.TimedFedAvg.configured
    result = {
        "started_at": STARTED_AT,
        "imported_at": imported_at,
        "first_dispatch_at": starts[0] if starts else None,
        "round_s": [e - s for s, e in zip(starts, ends, strict=False)],
        "reported": apps.TimedFedAvg.replies,
        "done_at": ends[-1] if ends else done_at,
        "exited_at": done_at,
        "pid": os.getpid(),
    }
    with open(args.result, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
