"""The assembled, deterministic world of one run: data split, fleet, shards and modality masks.

Both the server and every phone host build the same ``World`` from the scenario alone (it is a
pure function of scenario and seed), so nothing but the model ever crosses between them: a host
holds its phones' shards resident, and a restarted host rebuilds exactly what it lost.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from fedmobile_actors.algorithms.registry import strategy_class
from fedmobile_actors.algorithms.strategy import AlgorithmContext
from fedmobile_actors.data import (
    DatasetSplit,
    LocalData,
    MultimodalDataset,
    load_split,
    partition,
    phone_test_windows,
    presence,
)
from fedmobile_actors.data.per_phone import PhoneWindows, load_per_phone
from fedmobile_actors.fleet import Fleet, build_fleet
from fedmobile_actors.scenario.schema import Scenario, SubjectPartition, SyntheticSource
from fedmobile_actors.seeding import SERVER


@dataclass(frozen=True)
class SharedData:
    """The data every process of a run reads: the split, its training windows ordered phone by
    phone, and where each phone's shard starts (``offsets``, length phones + 1).

    Why ordered: a shard is then a slice, a zero-copy view of the one copy in Ray's object store,
    instead of a private copy in every host. A shard keeps its windows' order, so training is
    bit-identical to indexing the unordered split.

    With on-demand data (``data.source.per_phone``) ``on_demand`` makes each phone's shard, the
    split's training set is empty and ``offsets`` is unused: the shared data is then a few
    megabytes (test and proxy sets, class waveforms, normalisation) whatever the fleet size.
    """

    split: DatasetSplit
    offsets: np.ndarray
    on_demand: PhoneWindows | None = None


@dataclass(frozen=True)
class World:
    scenario: Scenario
    data: SharedData
    fleet: Fleet

    @staticmethod
    def build(scenario: Scenario, shared: SharedData | None = None) -> World:
        """The world of ``scenario``; ``shared`` skips loading and dealing when another process
        already did (the Ray server shares its data through the object store)."""
        if shared is None:
            shared = _load_shared(scenario)
        names = shared.split.train.modality_names
        for rule in scenario.modalities.missing:
            if rule.modality not in names:
                from fedmobile_actors.errors import DataError

                raise DataError(
                    f"modalities.missing: modality {rule.modality!r} is not in the dataset "
                    f"(it has {', '.join(names)})"
                )
        key = None
        if scenario.fleet.correlation is not None:
            by = scenario.fleet.correlation.by
            key = np.asarray(main_values(shared, "subjects" if by == "subject" else "labels"))
        return World(scenario, shared, build_fleet(scenario, names, key))

    @property
    def split(self) -> DatasetSplit:
        return self.data.split

    @property
    def on_demand(self) -> PhoneWindows | None:
        """The maker of per-phone windows, or None when shards are slices of the dealt data."""
        return self.data.on_demand

    @cached_property
    def shard_sizes(self) -> np.ndarray:
        """Every phone's shard size (int64, (phones,)), known without making any shard; made once
        (the server reads it every round, and at a million phones it is 8 MB)."""
        if self.data.on_demand is not None:
            return self.data.on_demand.sizes()
        return np.diff(self.data.offsets)

    def _train_windows(self, phone_id: int) -> MultimodalDataset:
        if self.data.on_demand is not None:
            return self.data.on_demand.shard(phone_id)
        start, end = int(self.data.offsets[phone_id]), int(self.data.offsets[phone_id + 1])
        return self.split.train.slice(start, end)

    @property
    def modality_names(self) -> tuple[str, ...]:
        return self.split.train.modality_names

    def local_data(self, phone_id: int) -> LocalData:
        """Phone ``phone_id``'s shard (a view of the dealt data, or made from the phone's key with
        on-demand data) with its fixed per-sample modality presence."""
        shard = self._train_windows(phone_id)
        fleet = self.fleet
        rates = dict(zip(fleet.modality_names, fleet.missing_rates[phone_id].tolist(), strict=True))
        mask = presence(len(shard), rates, self.modality_names, self.scenario.seed, phone_id)
        return LocalData(shard, mask)

    @cached_property
    def learnable(self) -> tuple[str, ...]:
        """Modalities present on at least one phone; a generator can learn only these.

        The warning for the others is the same whatever the strategy (FedAvg has no generator):
        it says only what the data lacks; a strategy with generators says what it does about
        it in its own warning."""
        somewhere = np.less(self.fleet.missing_rates, 1.0).any(axis=0).tolist()  # (M,) columns
        names = tuple(
            m for m, present in zip(self.modality_names, somewhere, strict=True) if present
        )
        for m in self.modality_names:
            if m not in names:
                warnings.warn(
                    f"modality {m!r} is missing on every phone: no phone has real data for it",
                    stacklevel=2,
                )
        return names

    @cached_property
    def _phone_test_index(self) -> tuple[np.ndarray, ...]:
        by_subject = isinstance(self.scenario.data.partition, SubjectPartition)
        return tuple(
            phone_test_windows(
                self.split.train.slice(int(self.data.offsets[p]), int(self.data.offsets[p + 1])),
                self.split.test,
                len(self.split.train),
                by_subject,
                self.scenario.seed,
                p,
            )
            for p in range(len(self.fleet))
        )

    def phone_test_index(self, phone_id: int) -> np.ndarray:
        """Indices into ``split.test`` of phone ``phone_id``'s held-out test windows (sorted,
        possibly repeated); see ``phone_test``. On-demand data: drawn from the phone's labels
        alone (its signals are never made for this), the same draw each call."""
        on_demand = self.data.on_demand
        if on_demand is None:
            return self._phone_test_index[phone_id]
        return phone_test_windows(
            on_demand.labels(phone_id),
            self.split.test,
            int(on_demand.size(phone_id)) * len(self.fleet),
            isinstance(self.scenario.data.partition, SubjectPartition),
            self.scenario.seed,
            phone_id,
        )

    def phone_test(self, phone_id: int) -> LocalData:
        """Phone ``phone_id``'s held-out test windows, every modality present: data like its own,
        never trained on.

        With a natural (by-subject) partition these are the test windows of the phone's
        subjects (the authors test each node on its own complete split); otherwise (or when its
        subjects have no test windows, as with USC-HAD's test-by-subject split) a draw from the
        test set with the label mix of the phone's shard (data.partition.phone_test_windows).
        Fixed by the seed and used only for reporting: how well the global model serves this
        phone's data (per-group results, and ``rounds.eval_per_phone``).
        """
        own = self.split.test.subset(self.phone_test_index(phone_id))
        return LocalData(own, {m: np.ones(len(own), dtype=bool) for m in self.modality_names})

    @cached_property
    def group_codes(self) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """Each grouping's groups (sorted names) and each phone's index among them (int32 over
        the fleet): ``tier``, ``availability`` (its class), and ``subject`` (its main subject)
        when the data is dealt by subject.

        Why codes: the fleet already holds tiers and classes as small integers; a million
        phones' group names would be a pass over a million strings at every start-up.
        """
        fleet = self.fleet
        out = {
            "tier": _sorted_codes(fleet.tier_names, fleet.tier_index),
            "availability": _sorted_codes(fleet.class_names, fleet.class_index),
        }
        if isinstance(self.scenario.data.partition, SubjectPartition):
            subjects = np.asarray(main_values(self.data, "subjects"), dtype=np.int64)
            values, inverse = np.unique(subjects, return_inverse=True)
            names = tuple(f"subject {s}" for s in values.tolist())
            out["subject"] = _sorted_codes(names, inverse)
        return out

    @property
    def phone_groups(self) -> dict[str, tuple[str, ...]]:
        """Each phone's group name under each grouping (``group_codes`` spelled out; O(fleet),
        for tests and small fleets)."""
        return {
            grouping: tuple(names[c] for c in codes.tolist())
            for grouping, (names, codes) in self.group_codes.items()
        }

    def context(self) -> AlgorithmContext:
        return AlgorithmContext(
            shapes=self.split.train.shapes,
            num_classes=self.split.train.num_classes,
            model=self.scenario.model,
            algorithm=self.scenario.algorithm,
            seed=self.scenario.seed,
            learnable=self.learnable,
            proxy=self.split.proxy,
            step_dropout=self.scenario.modalities.training_dropout,
            leaky_test=self.split.test if _leaks_test(self.scenario) else None,
        )

    def test_presence(self, missing: bool) -> dict[str, np.ndarray]:
        """Presence masks of the test set: all present, or the scenario's test-time pattern.

        The pattern is ``modalities.test_missing`` when given, else the training pattern's highest
        per-sample rate for each modality (so "missing" accuracy means the conditions phones see).
        """
        n = len(self.split.test)
        if not missing:
            return {m: np.ones(n, dtype=bool) for m in self.modality_names}
        return presence(n, self._test_rates(), self.modality_names, self.scenario.seed, SERVER)

    def _test_rates(self) -> dict[str, float]:
        rates = dict(self.scenario.modalities.test_missing)
        if not rates:
            for rule in self.scenario.modalities.missing:
                rates[rule.modality] = max(rates.get(rule.modality, 0.0), rule.rate)
        return rates

    def proxy_presence(self, missing: bool) -> dict[str, np.ndarray] | None:
        """The proxy (validation) set's masks, with the test-time pattern's rates but its own
        draw; None without a proxy set. Validation accuracy is read under them, so choices can be
        made without the test split."""
        proxy = self.split.proxy
        if proxy is None or len(proxy) == 0:
            return None
        n = len(proxy)
        if not missing:
            return {m: np.ones(n, dtype=bool) for m in self.modality_names}
        rates, names = self._test_rates(), self.modality_names
        return presence(n, rates, names, self.scenario.seed, SERVER, "proxy-presence")


def _sorted_codes(names: Sequence[str], codes: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """``names`` sorted, and ``codes`` (indices into ``names``) remapped to the sorted order."""
    order = sorted(range(len(names)), key=lambda i: names[i])
    position = np.empty(len(names), dtype=np.int32)
    position[order] = np.arange(len(names), dtype=np.int32)
    return tuple(names[i] for i in order), position[np.asarray(codes, dtype=np.int64)]


def main_values(shared: SharedData, column: str) -> list[int]:
    """Each phone's most frequent subject or label (``column``: "subjects" or "labels"; ties:
    the smallest)."""
    if shared.on_demand is not None:  # the schema admits only subjects under a subject split
        return shared.on_demand.main_subjects().tolist()
    values = getattr(shared.split.train, column)
    out = []
    for start, end in zip(shared.offsets[:-1], shared.offsets[1:], strict=True):
        out.append(int(np.argmax(np.bincount(values[start:end]))) if end > start else -1)
    return out


def _leaks_test(scenario: Scenario) -> bool:
    """Whether the strategy is configured to score its decisions on the test set (and says so)."""
    algo = scenario.algorithm
    return strategy_class(algo.name).reads_test_set(algo)


def _load_shared(scenario: Scenario) -> SharedData:
    """Load and split the data, deal it to phones, and order the training windows by phone;
    with on-demand data, only the held-out sets and the maker of phones' windows."""
    source = scenario.data.source
    if isinstance(source, SyntheticSource) and source.per_phone is not None:
        split, maker = load_per_phone(scenario.data, scenario.fleet.phones, scenario.seed)
        return SharedData(split, np.zeros(0, dtype=np.int64), maker)
    split = load_split(scenario.data, scenario.seed, scenario.base_dir)
    shards = partition(split.train, scenario.fleet.phones, scenario.data.partition, scenario.seed)
    offsets = np.cumsum([0, *(len(s) for s in shards)]).astype(np.int64)
    train = split.train.subset(np.concatenate(shards))
    return SharedData(DatasetSplit(train=train, test=split.test, proxy=split.proxy), offsets)
