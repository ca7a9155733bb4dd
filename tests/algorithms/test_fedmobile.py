"""FedMobile as a strategy: the phone side, the server side, its edge cases, and a tiny run."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from algo_setting import Setting, make_context, strategy_for

from fedmobile_actors.algorithms import generator
from fedmobile_actors.algorithms.aggregation import weighted_average
from fedmobile_actors.algorithms.fedmobile import FedMobile
from fedmobile_actors.algorithms.generator import GEN_PREFIX
from fedmobile_actors.algorithms.strategy import ClientUpdate, GlobalState, Strategy
from fedmobile_actors.scenario.schema import FedMobileConfig
from fedmobile_actors.wire.codec import decode_update, encode_update

FirstRound = tuple[FedMobile, GlobalState, list[ClientUpdate]]
FAST = FedMobileConfig(probe_size=16, generator_steps=4, clusters=3)


def one_round(
    strategy: Strategy, setting: Setting, state: GlobalState, round_index: int = 0
) -> list[ClientUpdate]:
    payload = strategy.payload(state)
    return [
        strategy.local_update(payload, data, phone, state.version, 100 * round_index + phone)
        for phone, data in enumerate(setting.phones)
    ]


@pytest.fixture(scope="module")
def first_round(setting: Setting) -> tuple[FedMobile, GlobalState, list[ClientUpdate]]:
    strategy = strategy_for(setting, "fedmobile", fedmobile=FAST)
    assert isinstance(strategy, FedMobile)
    state = strategy.initial_state()
    return strategy, state, one_round(strategy, setting, state)


def test_update_carries_model_and_generator_and_passes_the_wire(first_round: FirstRound) -> None:
    strategy, state, updates = first_round
    expected = strategy.update_shapes(strategy.payload(state))
    assert any(k.startswith(GEN_PREFIX) for k in expected)
    assert any(not k.startswith(GEN_PREFIX) for k in expected)
    decoded = decode_update(encode_update(updates[0]), expected)
    assert set(decoded.arrays) == set(expected)


def test_phone_reports_its_stats_for_alpha(first_round: FirstRound) -> None:
    _, _, updates = first_round
    m = updates[0].metrics
    assert m["loss_reduction"] == pytest.approx(
        (m["loss_before"] - m["loss_after"]) / m["loss_before"]
    )
    assert 0 <= m["accuracy_before"] <= 1 and 0 <= m["accuracy_after"] <= 1
    assert all(np.isfinite(v) for v in m.values())


def test_phone_is_stateless_a_rerun_task_gives_the_same_bits(
    setting: Setting, first_round: FirstRound
) -> None:
    strategy, state, updates = first_round
    payload = strategy.payload(state)
    strategy.local_update(payload, setting.phones[3], 3, 0, 999)  # something else in between
    again = strategy.local_update(payload, setting.phones[1], 1, 0, 1)
    assert all(again.arrays[k].tobytes() == updates[1].arrays[k].tobytes() for k in again.arrays)
    assert again.metrics == updates[1].metrics


def test_aggregation_is_bit_identical_across_fresh_strategies(
    setting: Setting, first_round: FirstRound
) -> None:
    _, state, updates = first_round
    weights = [1.0, 0.5, 1.0, 1.0, 0.25, 1.0]
    a = strategy_for(setting, "fedmobile", fedmobile=FAST).aggregate(state, updates, weights)
    b = strategy_for(setting, "fedmobile", fedmobile=FAST).aggregate(state, updates, weights)
    assert a.state.version == 1
    assert all(a.state.arrays[k].tobytes() == b.state.arrays[k].tobytes() for k in a.state.arrays)
    assert a.metrics == b.metrics
    assert a.metrics["clusters"] == 3 and sum(a.metrics["cluster_sizes"]) == 6
    assert sum(a.metrics["shapley_weights"]) == pytest.approx(1.0)


def test_no_reports_keeps_the_weights_and_bumps_the_version(first_round: FirstRound) -> None:
    strategy, state, _ = first_round
    result = strategy.aggregate(state, [], [])
    assert result.state.version == state.version + 1
    assert result.state.arrays is state.arrays
    assert result.metrics["clusters"] == 0 and result.metrics["rejected"] == 0


def test_one_report_becomes_the_global_model_with_one_cluster(first_round: FirstRound) -> None:
    strategy, state, updates = first_round
    result = strategy.aggregate(state, updates[:1], [1.0])
    assert result.metrics["clusters"] == 1 and result.metrics["shapley_weights"] == [1.0]
    assert result.metrics["model_weight_max"] == 1.0
    for k, a in updates[0].arrays.items():
        np.testing.assert_allclose(result.state.arrays[k], a, rtol=1e-6, atol=1e-7)


def test_non_finite_update_is_rejected_counted_and_never_aggregated(
    first_round: FirstRound,
) -> None:
    strategy, state, updates = first_round
    key = next(iter(updates[2].arrays))
    bad_arrays = dict(updates[2].arrays)
    bad_arrays[key] = bad_arrays[key].copy()
    bad_arrays[key].flat[0] = np.nan
    inf_gen = {
        k: (np.full_like(a, np.inf) if k.startswith(GEN_PREFIX) else a)
        for k, a in updates[3].arrays.items()
    }
    bad = [
        dataclasses.replace(updates[2], arrays=bad_arrays),
        dataclasses.replace(updates[3], arrays=inf_gen),
    ]
    mixed = strategy.aggregate(state, [updates[0], *bad, updates[1]], [1.0] * 4)
    clean = strategy.aggregate(state, [updates[0], updates[1]], [1.0, 1.0])
    assert mixed.metrics["rejected"] == 2
    assert all(np.isfinite(a).all() for a in mixed.state.arrays.values())
    assert all(
        mixed.state.arrays[k].tobytes() == clean.state.arrays[k].tobytes()
        for k in clean.state.arrays
    )


def test_staleness_factors_multiply_into_the_weights(first_round: FirstRound) -> None:
    strategy, state, updates = first_round
    zeroed = strategy.aggregate(state, updates[:3], [1.0, 0.0, 1.0])
    without = strategy.aggregate(state, [updates[0], updates[2]], [1.0, 1.0])
    assert all(
        zeroed.state.arrays[k].tobytes() == without.state.arrays[k].tobytes()
        for k in without.state.arrays
    )
    halved = strategy.aggregate(state, updates[:3], [1.0, 0.5, 1.0])
    assert not all(
        halved.state.arrays[k].tobytes() == without.state.arrays[k].tobytes()
        for k in without.state.arrays
    )


def test_no_alpha_ablation_weights_the_model_by_sample_counts(
    setting: Setting, first_round: FirstRound
) -> None:
    """fedmobile_no_alpha averages the model by num_samples * staleness, unlike FedMobile."""
    _, state, updates = first_round
    staleness = [1.0, 0.5, 1.0, 1.0, 0.25, 1.0]
    ablation = strategy_for(setting, "fedmobile_no_alpha", fedmobile=FAST)
    a = ablation.aggregate(state, updates, staleness)
    c = strategy_for(setting, "fedmobile", fedmobile=FAST).aggregate(state, updates, staleness)
    counts = [u.num_samples * s for u, s in zip(updates, staleness, strict=True)]
    assert ablation.alpha(updates, np.asarray(staleness)).tolist() == counts
    model_keys = [k for k in a.state.arrays if not k.startswith(GEN_PREFIX)]
    assert any(a.state.arrays[k].tobytes() != c.state.arrays[k].tobytes() for k in model_keys)
    # The row records the largest report's share of the model average, whichever weights made it.
    assert a.metrics["model_weight_max"] == pytest.approx(max(counts) / sum(counts))
    alpha = strategy_for(setting, "fedmobile", fedmobile=FAST).alpha(updates, np.asarray(staleness))
    assert c.metrics["model_weight_max"] == pytest.approx(alpha.max() / alpha.sum())


def test_no_shapley_ablation_makes_the_sample_weighted_mean_generator(
    setting: Setting, first_round: FirstRound
) -> None:
    _, state, updates = first_round
    result = strategy_for(setting, "fedmobile_no_shapley", fedmobile=FAST).aggregate(
        state, updates, [1.0] * 6
    )
    gen_keys = [k for k in state.arrays if k.startswith(GEN_PREFIX)]
    plain = weighted_average(
        [{k: u.arrays[k] for k in gen_keys} for u in updates], [u.num_samples for u in updates]
    )
    assert result.metrics["shapley_values"] == [] and result.metrics["clusters"] == 3
    for k in gen_keys:
        np.testing.assert_allclose(result.state.arrays[k], plain[k], rtol=1e-5, atol=1e-6)


def test_filter_rule_drops_phones_below_last_rounds_accuracy(
    first_round: FirstRound, setting: Setting
) -> None:
    _, state, updates = first_round
    config = FedMobileConfig(**{**FAST.model_dump(), "filter": True})
    strategy = strategy_for(setting, "fedmobile", fedmobile=config)
    accs = [u.metrics["accuracy_after"] * 2 - u.metrics["accuracy_before"] for u in updates]
    bar = float(np.median(accs))
    raised = GlobalState(state.version, state.arrays, {"reference_accuracy": bar})
    result = strategy.aggregate(raised, updates, [1.0] * 6)
    assert result.metrics["filtered"] == sum(a <= bar for a in accs) > 0
    assert 0 <= result.state.info["reference_accuracy"] <= 1


def test_monte_carlo_shapley_runs_above_the_exact_limit(
    setting: Setting, first_round: FirstRound
) -> None:
    _, state, updates = first_round
    config = FedMobileConfig(
        **{**FAST.model_dump(), "shapley_exact_max": 1, "shapley_permutations": 8}
    )
    result = strategy_for(setting, "fedmobile", fedmobile=config).aggregate(
        state, updates, [1.0] * 6
    )
    assert len(result.metrics["shapley_values"]) == 3


def test_without_a_proxy_set_coalitions_are_scored_on_generated_features(setting: Setting) -> None:
    strategy = strategy_for(setting, "fedmobile", fedmobile=FAST, with_proxy=False)
    state = strategy.initial_state()
    result = strategy.aggregate(state, one_round(strategy, setting, state)[:4], [1.0] * 4)
    assert len(result.metrics["shapley_values"]) == result.metrics["clusters"] >= 1
    assert all(np.isfinite(a).all() for a in result.state.arrays.values())


def test_modality_missing_everywhere_warns_zero_fills_and_runs_on(
    setting: Setting, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The warning comes once per process: forget any earlier test's (a run of the bundled
    # modality_absent scenario warns for gyro too), so the order the tests run in cannot matter.
    monkeypatch.setattr(generator, "_warned_unlearnable", set())
    context = make_context(setting, "fedmobile", fedmobile=FAST, learnable=("acc",))
    with pytest.warns(RuntimeWarning, match="gyro are missing on every phone"):
        strategy = FedMobile(context)
    assert strategy.learnable == ("acc",)
    state = strategy.initial_state()
    result = strategy.aggregate(state, one_round(strategy, setting, state)[:3], [1.0] * 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluation = strategy.evaluate(result.state, setting.split.test, setting.missing)
    assert 0 <= evaluation.accuracy <= 1


def test_tiny_federated_run_improves_accuracy(setting: Setting) -> None:
    strategy = strategy_for(setting, "fedmobile", fedmobile=FAST, local_epochs=2)
    state = strategy.initial_state()
    start = [
        strategy.evaluate(state, setting.split.test, p).accuracy
        for p in (setting.full, setting.missing)
    ]
    for r in range(4):
        state = strategy.aggregate(state, one_round(strategy, setting, state, r), [1.0] * 6).state
    end = [
        strategy.evaluate(state, setting.split.test, p).accuracy
        for p in (setting.full, setting.missing)
    ]
    assert state.version == 4
    assert end[0] > start[0] + 0.1 and end[1] > start[1] + 0.1, (start, end)


def test_generator_ema_moves_the_global_generator_part_way(
    setting: Setting, first_round: FirstRound
) -> None:
    _, state, updates = first_round
    plain = strategy_for(setting, "fedmobile", fedmobile=FAST).aggregate(state, updates, [1.0] * 6)
    config = FedMobileConfig(**{**FAST.model_dump(), "generator_ema": 0.75})
    smooth = strategy_for(setting, "fedmobile", fedmobile=config).aggregate(
        state, updates, [1.0] * 6
    )
    for k in (k for k in state.arrays if k.startswith(GEN_PREFIX)):
        expected = 0.75 * state.arrays[k] + 0.25 * plain.state.arrays[k]
        np.testing.assert_allclose(smooth.state.arrays[k], expected, rtol=1e-5, atol=1e-6)


def test_shapley_mass_mix_blends_weights_with_cluster_mass(
    setting: Setting, first_round: FirstRound
) -> None:
    _, state, updates = first_round
    full_mix = FedMobileConfig(**{**FAST.model_dump(), "shapley_mass_mix": 1.0})
    mixed = strategy_for(setting, "fedmobile", fedmobile=full_mix).aggregate(
        state, updates, [1.0] * 6
    )
    sizes = np.array(mixed.metrics["cluster_sizes"], dtype=float)
    # equal shards and staleness: a cluster's mass share is its share of phones
    np.testing.assert_allclose(mixed.metrics["shapley_weights"], sizes / sizes.sum(), atol=0.05)


def test_aggregation_reports_the_fill_error_on_the_proxy(first_round: FirstRound) -> None:
    strategy, state, updates = first_round
    error = strategy.aggregate(state, updates, [1.0] * 6).metrics["fill_error"]
    assert np.isfinite(error) and error > 0
