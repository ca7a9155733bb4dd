"""fedmobile_authors: the authors' public FedMobile, with its selection kept off the test set."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from algo_setting import Setting, make_context, plain_weighted_average

from fedmobile_actors.algorithms import fedmobile_authors
from fedmobile_actors.algorithms.fedmobile_authors import GEN_PREFIX, FedMobileAuthors
from fedmobile_actors.algorithms.registry import make_strategy
from fedmobile_actors.algorithms.strategy import ClientUpdate
from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.scenario.schema import FedMobileAuthorsConfig, ModelConfig

HIDDEN = 32


def authors(setting: Setting, with_proxy: bool = True, **config: Any) -> FedMobileAuthors:
    context = make_context(
        setting,
        "fedmobile_authors",
        with_proxy=with_proxy,
        optimizer="adam",
        weight_decay=0.0001,
        fedmobile_authors=FedMobileAuthorsConfig(generator_hidden=HIDDEN, **config),
    )
    context = dataclasses.replace(
        context,
        algorithm=context.algorithm.model_copy(update={"lr": 0.001}),
        model=ModelConfig(kind="authors_conv2d"),
        leaky_test=setting.split.test if config.get("selection_split") == "test_leaky" else None,
    )
    strategy = make_strategy(context)
    assert isinstance(strategy, FedMobileAuthors)
    return strategy


def round_of(strategy: FedMobileAuthors, setting: Setting, version: int = 0) -> list[ClientUpdate]:
    state = strategy.initial_state()
    payload = strategy.payload(state)
    return [
        strategy.local_update(payload, data, phone, version, task_id=phone)
        for phone, data in enumerate(setting.phones)
    ]


def test_generator_goes_down_but_never_up(setting: Setting) -> None:
    """The payload holds the generator (hidden width as configured); an update holds the model's
    parameters and the phone's BatchNorm statistics, never the generator (it is not stepped)."""
    strategy = authors(setting)
    payload = strategy.payload(strategy.initial_state())
    gen = {k: a for k, a in payload.items() if k.startswith(GEN_PREFIX)}
    assert gen[f"{GEN_PREFIX}body.0.weight"].shape == (HIDDEN, 12 + 4)
    update = round_of(strategy, setting)[0]
    assert not any(k.startswith(GEN_PREFIX) for k in update.arrays)
    assert set(strategy.local_keys) <= set(update.arrays)
    assert set(update.arrays) == set(strategy.update_shapes(payload))


def test_adam_moments_persist_on_the_phone(setting: Setting) -> None:
    """The phone's Adam step count continues from its previous task instead of restarting."""
    strategy = authors(setting)
    payload = strategy.payload(strategy.initial_state())
    data = setting.phones[0]
    first = strategy.local_update(payload, data, 0, 0, task_id=0)
    assert first.phone_state is not None
    steps = [int(a[0]) for k, a in first.phone_state.items() if k.endswith(".step")]
    second = strategy.local_update(payload, data, 0, 1, task_id=1, phone_state=first.phone_state)
    assert second.phone_state is not None
    again = [int(a[0]) for k, a in second.phone_state.items() if k.endswith(".step")]
    assert steps and again == [2 * s for s in steps]


def test_a_task_is_a_function_of_its_inputs(setting: Setting) -> None:
    strategy = authors(setting)
    payload = strategy.payload(strategy.initial_state())
    a = strategy.local_update(payload, setting.phones[1], 1, 0, task_id=5)
    b = strategy.local_update(payload, setting.phones[1], 1, 0, task_id=5)
    assert all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)


def test_validation_selection_needs_a_validation_set(setting: Setting) -> None:
    with pytest.raises(ScenarioError, match="proxy_fraction"):
        authors(setting, with_proxy=False)


def test_leaky_option_scores_on_the_test_set(setting: Setting) -> None:
    assert authors(setting).selection is setting.split.proxy
    assert authors(setting, selection_split="test_leaky").selection is setting.split.test


def test_a_round_aggregates_models_and_generators(setting: Setting) -> None:
    strategy = authors(setting)
    state = strategy.initial_state()
    updates = round_of(strategy, setting)
    result = strategy.aggregate(state, updates, [1.0] * len(updates))
    assert result.state.version == 1
    assert 1 <= result.metrics["clusters"] <= 3
    assert sum(result.metrics["shapley_weights"]) == pytest.approx(1.0)
    assert 0.0 <= result.state.info["last_accuracy"] <= 1.0
    # The metrics row's "filtered" says how many models the selection left out.
    assert result.metrics["filtered"] == len(updates) - result.metrics["kept"]
    # Before the first aggregation every phone holds its own random generator: the new global
    # one is their Shapley-weighted combination, not version 0's.
    key = f"{GEN_PREFIX}body.3.weight"
    assert not np.array_equal(result.state.arrays[key], state.arrays[key])
    assert not any(k in result.state.arrays for k in strategy.local_keys)


def test_few_kept_models_means_all_are_averaged(setting: Setting, monkeypatch: Any) -> None:
    """Phone k is kept when local accuracy + prefix gain beats last round's accuracy; when three
    or fewer pass, every model is averaged (the public code's rule)."""
    strategy = authors(setting)
    models = [u.arrays for u in round_of(strategy, setting)]
    scores = iter([0.9, 0.9, 0.9, 0.9, 0.1, 0.1] + [0.5] * 6)
    monkeypatch.setattr(strategy, "_scores", lambda candidates: [next(scores) for _ in candidates])
    assert strategy._select(models, last=0.5) == [0, 1, 2, 3]
    scores = iter([0.9, 0.9, 0.9, 0.1, 0.1, 0.1] + [0.5] * 6)
    assert strategy._select(models, last=0.5) == list(range(6))


def test_clipped_shapley_and_its_cache_defect(setting: Setting, monkeypatch: Any) -> None:
    """With v(S) the same for every coalition, the clipped marginals give the first cluster of
    each ordering everything: equal values. The reproduced defect (a sum on first use, a mean
    from the cache) skews them."""
    means = [{"w": np.zeros(1, dtype=np.float32)}] * 3
    fixed = authors(setting)
    monkeypatch.setattr(fixed, "_generated_accuracy", lambda members, labels, rng: 0.5)
    assert fixed._clipped_shapley(means, models=10, version=1) == pytest.approx([1 / 6] * 3)
    defect = authors(setting, reproduce_defects=True)
    monkeypatch.setattr(defect, "_generated_accuracy", lambda members, labels, rng: 0.5)
    skewed = defect._clipped_shapley(means, models=10, version=1)
    assert skewed != pytest.approx([1 / 6] * 3)
    assert max(skewed) > 0.5


def test_fedavg_under_the_same_protocol_keeps_adam_on_the_phone(setting: Setting) -> None:
    """``algorithm.optimizer: adam`` makes FedAvg stateful: the moments go to the phone's state,
    never into the update."""
    fedavg = make_strategy(make_context(setting, "fedavg", optimizer="adam", weight_decay=1e-4))
    assert fedavg.is_stateful()
    payload = fedavg.payload(fedavg.initial_state())
    update = fedavg.local_update(payload, setting.phones[0], 0, 0, task_id=0)
    assert update.phone_state is not None
    assert any(k.startswith("adam.") for k in update.phone_state)
    assert not any(k.startswith("adam.") for k in update.arrays)


@pytest.mark.parametrize(("width", "rows"), [(HIDDEN, 16), (6336, 16), (6336, 5)])
def test_generator_pair_gives_each_batch_the_bits_of_its_own_pass(width: int, rows: int) -> None:
    """The local loss's two generator passes (teacher, random labels) share one product of the
    output layer: each half equals its own ``forward`` bit for bit, the same noise draws in the
    same order and each batch's own BatchNorm statistics. At the authors' width (fused feature
    6336) too, and for a short last batch; the grid's cells run before this change and after it
    are therefore the same computation."""
    import torch

    from fedmobile_actors.algorithms.fedmobile_authors import AuthorsGenerator

    torch.manual_seed(0)
    generator = AuthorsGenerator(noise_dim=12, num_classes=12, hidden=width, out_dim=width)
    first, second = torch.arange(rows) % 12, (torch.arange(rows) * 5 + 3) % 12
    with torch.no_grad():
        one = torch.Generator().manual_seed(7)
        expected = (generator(first, one), generator(second, one))
        paired = generator.pair(first, second, torch.Generator().manual_seed(7))
    assert all(torch.equal(a, b) for a, b in zip(paired, expected, strict=True))


def test_scoring_side_by_side_gives_the_serial_bits(setting: Setting) -> None:
    """The server's whole-model scorings run on torch's inter-op threads: one round's
    aggregate (selection, Shapley, new state) is the same, bit for bit, with one thread and
    with three, at the authors' model on this setting, leaky and on validation."""
    for split in ("validation", "test_leaky"):
        results = []
        for threads in (1, 3):
            strategy = authors(setting, selection_split=split)
            strategy._scorer.threads = threads
            state = strategy.initial_state()
            updates = round_of(strategy, setting)
            results.append(strategy.aggregate(state, updates, [1.0] * len(updates)))
        serial, parallel = results
        assert serial.metrics == parallel.metrics
        assert serial.state.info == parallel.state.info
        assert serial.state.arrays.keys() == parallel.state.arrays.keys()
        for k, a in serial.state.arrays.items():
            assert a.tobytes() == parallel.state.arrays[k].tobytes(), k


def test_reused_output_buffers_change_no_bits(setting: Setting, monkeypatch: Any) -> None:
    """The server writes its generator averages into arrays kept from round to round; two
    aggregations in a row give the bits of fresh arrays from the plain whole-array formula."""

    def two_rounds(strategy: FedMobileAuthors) -> list[Any]:
        state, out = strategy.initial_state(), []
        for _ in range(2):
            updates = round_of(strategy, setting)
            result = strategy.aggregate(state, updates, [1.0] * len(updates))
            state = result.state
            out.append((result.metrics, {k: a.tobytes() for k, a in state.arrays.items()}))
        return out

    reused = two_rounds(authors(setting))
    monkeypatch.setattr(fedmobile_authors, "weighted_average", plain_weighted_average)
    assert two_rounds(authors(setting)) == reused
