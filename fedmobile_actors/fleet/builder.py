"""Scenario + seed -> the fleet: numpy columns over phones plus each phone's availability model.

Why columns: a fleet of a million phones must cost a few arrays, not a million objects. Each
attribute is one numpy draw per tier (a phone's spec is made only when someone asks for it), and
every draw comes from a stream keyed by what it is for (seeding.py, owner ``SERVER``: the fleet
belongs to no phone), so the same scenario and seed give the same fleet in every process. The
draws are exactly those of the former one-object-per-phone build (tests/fleet/legacy_fleet.py).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np

from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.fleet.availability import (
    AvailabilityModel,
    ProcessCache,
    availability_model,
)
from fedmobile_actors.fleet.distributions import draw
from fedmobile_actors.fleet.phone import AvailabilityProcess, PhoneSpec
from fedmobile_actors.scenario.schema import ModalitiesConfig, Scenario
from fedmobile_actors.seeding import SERVER, rng

MBPS = 1e6  # bits per second in one megabit per second

#: A float column with at most this many distinct values is pickled as codes into its values.
_PACK_MAX_VALUES = 255


@dataclass(frozen=True, eq=False)
class Fleet:
    """The simulated population, one entry per phone in every column (phone p at index p).

    ``tier_index[p]`` and ``class_index[p]`` index ``tier_names`` and ``class_names``;
    ``missing_rates[p, m]`` is phone p's per-sample missing rate of ``modality_names[m]``;
    ``failure_prob`` is one number for the whole fleet or a column. Columns are read-only.

    ``availability(p)`` builds phone p's on/off process on first use and keeps it in a bounded
    cache (processes cache their draws: Markov timelines, diurnal slot blocks; an evicted one is
    rebuilt with the same answers). A phone whose class is in ``class_models`` follows that
    class's model, any other ``model``. ``phones`` is a lazy read-only sequence of ``PhoneSpec``
    kept for callers that want objects; hot paths read the columns.
    """

    tier_index: np.ndarray  # (n,) small ints
    tier_names: tuple[str, ...]
    samples_per_second: np.ndarray  # (n,) float64
    down_bps: np.ndarray  # (n,) float64, bits per second
    up_bps: np.ndarray  # (n,) float64, bits per second
    latency_s: np.ndarray  # (n,) float64, one way
    failure_prob: float | np.ndarray  # scalar or (n,) float64
    missing_rates: np.ndarray  # (n, M) float64
    modality_names: tuple[str, ...]
    class_index: np.ndarray  # (n,) small ints
    class_names: tuple[str, ...]
    model: AvailabilityModel = field(default_factory=AvailabilityModel)
    class_models: Mapping[str, AvailabilityModel] = field(default_factory=dict)
    _processes: ProcessCache = field(default_factory=ProcessCache, init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.tier_index)
        for name in ("samples_per_second", "down_bps", "up_bps", "latency_s", "class_index"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Fleet.{name} has {len(getattr(self, name))} entries, not {n}")
        if self.missing_rates.shape != (n, len(self.modality_names)):
            raise ValueError(
                f"Fleet.missing_rates has shape {self.missing_rates.shape}, "
                f"not {(n, len(self.modality_names))}"
            )
        if isinstance(self.failure_prob, np.ndarray) and len(self.failure_prob) != n:
            raise ValueError(f"Fleet.failure_prob has {len(self.failure_prob)} entries, not {n}")
        for column in self._columns().values():
            column.flags.writeable = False
        models = tuple(self.class_models.get(c, self.model) for c in self.class_names)
        object.__setattr__(self, "_models", models)

    def _columns(self) -> dict[str, np.ndarray]:
        names = ("tier_index", "samples_per_second", "down_bps", "up_bps", "latency_s")
        out = {name: getattr(self, name) for name in names}
        out["missing_rates"] = self.missing_rates
        out["class_index"] = self.class_index
        if isinstance(self.failure_prob, np.ndarray):
            out["failure_prob"] = self.failure_prob
        return out

    def __len__(self) -> int:
        return len(self.tier_index)

    def __eq__(self, other: object) -> bool:
        """Same phones (every column, bit for bit) and the same availability models."""
        if not isinstance(other, Fleet):
            return NotImplemented
        mine, theirs = self._columns(), other._columns()
        return (
            (self.tier_names, self.modality_names, self.class_names)
            == (other.tier_names, other.modality_names, other.class_names)
            and mine.keys() == theirs.keys()
            and all(np.array_equal(mine[k], theirs[k]) for k in mine)
            and (
                isinstance(self.failure_prob, np.ndarray) or self.failure_prob == other.failure_prob
            )
            and (self.model, dict(self.class_models)) == (other.model, dict(other.class_models))
        )

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> dict[str, object]:
        """Pickle the columns only, a column of few distinct values as codes into them: a fleet
        ships to hosts inside the world, and must not carry the processes the server drew."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_processes", "_models")}
        for name, column in self._columns().items():
            state[name] = _pack(column)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, _unpack(value))
        object.__setattr__(self, "_processes", ProcessCache())
        self.__post_init__()

    def _check(self, phone_id: int) -> int:
        if not 0 <= phone_id < len(self):
            raise IndexError(f"phone {phone_id} is not in a fleet of {len(self)}")
        return int(phone_id)

    def failure_prob_of(self, phone_id: int) -> float:
        """Phone ``phone_id``'s per-task crash probability."""
        if isinstance(self.failure_prob, np.ndarray):
            return float(self.failure_prob[phone_id])
        return float(self.failure_prob)

    def phone(self, phone_id: int) -> PhoneSpec:
        """Phone ``phone_id``'s spec, made from the columns (the same values every time)."""
        p = self._check(phone_id)
        return PhoneSpec(
            phone_id=p,
            tier=self.tier_names[self.tier_index[p]],
            samples_per_second=float(self.samples_per_second[p]),
            down_bps=float(self.down_bps[p]),
            up_bps=float(self.up_bps[p]),
            latency_s=float(self.latency_s[p]),
            failure_prob=self.failure_prob_of(p),
            missing_rates=dict(
                zip(self.modality_names, self.missing_rates[p].tolist(), strict=True)
            ),
            availability_class=self.class_names[self.class_index[p]],
        )

    @property
    def phones(self) -> FleetPhones:
        """Every phone's spec as a lazy read-only sequence (``phones[p].phone_id == p``)."""
        return FleetPhones(self)

    def availability(self, phone_id: int) -> AvailabilityProcess:
        """Phone ``phone_id``'s availability process (built lazily, cached within a bound)."""
        process = self._processes.get(phone_id)
        if process is None:
            p = self._check(phone_id)
            models: tuple[AvailabilityModel, ...] = self.__dict__["_models"]
            process = models[self.class_index[p]].for_phone(p)
            self._processes.put(p, process)
        return process

    @classmethod
    def from_phones(
        cls,
        phones: Iterable[PhoneSpec],
        model: AvailabilityModel | None = None,
        class_models: Mapping[str, AvailabilityModel] | None = None,
    ) -> Fleet:
        """A fleet from hand-made specs (tests, examples); ``phones[p].phone_id`` must be p.

        Names are numbered in order of first appearance; a modality a phone's ``missing_rates``
        does not mention gets rate 0 on that phone.
        """
        specs = tuple(phones)
        for p, spec in enumerate(specs):
            if spec.phone_id != p:
                raise ValueError(f"phone at index {p} has phone_id {spec.phone_id}")
        tier_names = tuple(dict.fromkeys(s.tier for s in specs))
        class_names = tuple(dict.fromkeys(s.availability_class for s in specs))
        modality_names = tuple(dict.fromkeys(m for s in specs for m in s.missing_rates))
        failure = np.array([s.failure_prob for s in specs], dtype=float)
        return cls(
            tier_index=_index_column([tier_names.index(s.tier) for s in specs], len(tier_names)),
            tier_names=tier_names,
            samples_per_second=np.array([s.samples_per_second for s in specs], dtype=float),
            down_bps=np.array([s.down_bps for s in specs], dtype=float),
            up_bps=np.array([s.up_bps for s in specs], dtype=float),
            latency_s=np.array([s.latency_s for s in specs], dtype=float),
            failure_prob=float(failure[0]) if len(set(failure.tolist())) == 1 else failure,
            missing_rates=np.array(
                [[s.missing_rates.get(m, 0.0) for m in modality_names] for s in specs], dtype=float
            ).reshape(len(specs), len(modality_names)),
            modality_names=modality_names,
            class_index=_index_column(
                [class_names.index(s.availability_class) for s in specs], len(class_names)
            ),
            class_names=class_names,
            model=model if model is not None else AvailabilityModel(),
            class_models=dict(class_models or {}),
        )


class FleetPhones(Sequence[PhoneSpec]):
    """``fleet.phones``: a read-only sequence whose item p is ``fleet.phone(p)``, made on access.

    Kept for callers written when a fleet was a tuple of specs; walking it costs one spec per
    phone, so code that runs per round reads the fleet's columns instead.
    """

    __slots__ = ("_fleet",)

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    def __len__(self) -> int:
        return len(self._fleet)

    @overload
    def __getitem__(self, index: int) -> PhoneSpec: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[PhoneSpec, ...]: ...

    def __getitem__(self, index: int | slice) -> PhoneSpec | tuple[PhoneSpec, ...]:
        n = len(self._fleet)
        if isinstance(index, slice):
            return tuple(self._fleet.phone(p) for p in range(*index.indices(n)))
        p = operator.index(index)
        if p < 0:
            p += n
        if not 0 <= p < n:
            raise IndexError(f"phone index {index} out of range for a fleet of {n}")
        return self._fleet.phone(p)

    def __iter__(self) -> Iterator[PhoneSpec]:
        return (self._fleet.phone(p) for p in range(len(self._fleet)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]


def build_fleet(
    scenario: Scenario, modality_names: tuple[str, ...], data_key: np.ndarray | None = None
) -> Fleet:
    """Draw every phone of ``scenario.fleet`` (tiers, speeds, bandwidths, availability classes,
    missing modalities), a few numpy calls per tier: O(phones), no object per phone.

    ``data_key`` (int array (phones,)) is each phone's data key for ``fleet.correlation``: its
    main subject or main label, computed by whoever dealt the data (the world). Without it, or
    without a correlation section, tiers and classes are independent of the data.
    """
    cfg = scenario.fleet
    n, seed = cfg.phones, scenario.seed
    corr = cfg.correlation
    if corr is not None and data_key is None:
        raise ValueError("fleet.correlation needs each phone's data key")
    shares = tuple(t.share for t in cfg.tiers)
    if corr is not None and corr.tiers and data_key is not None:
        tier_of = correlated_assignment(shares, data_key, corr.strength, seed, "tiers")
    else:
        tier_of = assign_tiers(shares, n, seed)
    class_names, class_of = _availability_classes(scenario, data_key)
    speed, down, up, latency = (np.empty(n) for _ in range(4))
    for i, tier in enumerate(cfg.tiers):
        members = np.flatnonzero(tier_of == i)
        for name, out, scale in (
            ("samples_per_second", speed, 1.0),
            ("down_mbps", down, MBPS),
            ("up_mbps", up, MBPS),
        ):
            values = draw(
                getattr(tier, name), rng(seed, SERVER, 0, f"fleet/{tier.name}/{name}"), members.size
            )
            if members.size and values.min() <= 0:
                raise ScenarioError(
                    [f"fleet.tiers[{i}].{name}: drew {values.min():g}; values must be > 0"]
                )
            out[members] = values * scale
        latency[members] = tier.latency_s
    model = availability_model(cfg.availability, seed, scenario.base_dir)
    class_models = {
        c.name: availability_model(c.availability, seed, scenario.base_dir)
        for c in cfg.availability_classes
    }
    return Fleet(
        tier_index=_index_column(tier_of, len(cfg.tiers)),
        tier_names=tuple(t.name for t in cfg.tiers),
        samples_per_second=speed,
        down_bps=down,
        up_bps=up,
        latency_s=latency,
        failure_prob=float(cfg.failure_prob),
        missing_rates=missing_rates(scenario.modalities, modality_names, n, seed),
        modality_names=tuple(modality_names),
        class_index=_index_column(class_of, len(class_names)),
        class_names=tuple(class_names),
        model=model,
        class_models=class_models,
    )


def _index_column(values: Sequence[int] | np.ndarray, names: int) -> np.ndarray:
    """Indices into ``names`` names in the smallest unsigned dtype that holds them."""
    return np.asarray(values).astype(np.min_scalar_type(max(names - 1, 0)))


@dataclass(frozen=True)
class _Packed:
    """A float64 column pickled as one byte per entry: ``values[codes]`` (bit patterns)."""

    codes: np.ndarray  # uint8, the column's shape
    values: np.ndarray  # uint64 bit patterns of the distinct values

    def column(self) -> np.ndarray:
        return self.values[self.codes].view(np.float64)


def _pack(column: np.ndarray) -> np.ndarray | _Packed:
    """``column`` itself, or packed when it has few distinct values (latency per tier, missing
    rates, constant tier speeds). Distinct by bit pattern, so unpacking restores every bit."""
    if column.dtype != np.float64 or column.size == 0:
        return column
    bits = np.ascontiguousarray(column).view(np.uint64)
    values = np.unique(bits.ravel()[:4096])  # a sample: a drawn column shows itself at once
    if values.size > _PACK_MAX_VALUES:
        return column
    codes = np.minimum(np.searchsorted(values, bits), values.size - 1)
    if not np.array_equal(values[codes], bits):  # values the sample missed: count them all
        values, codes = np.unique(bits, return_inverse=True)
        if values.size > _PACK_MAX_VALUES:
            return column
    return _Packed(codes.astype(np.uint8).reshape(column.shape), values)


def _unpack(value: object) -> object:
    return value.column() if isinstance(value, _Packed) else value


def _availability_classes(
    scenario: Scenario, data_key: np.ndarray | None
) -> tuple[list[str], np.ndarray]:
    """Class names and each phone's class index; one class named after the fleet's availability
    model when the scenario lists none."""
    cfg = scenario.fleet
    n = cfg.phones
    if not cfg.availability_classes:
        return [cfg.availability.model], np.zeros(n, dtype=np.int64)
    shares = tuple(c.share for c in cfg.availability_classes)
    corr = cfg.correlation
    if corr is not None and corr.availability and data_key is not None:
        class_of = correlated_assignment(shares, data_key, corr.strength, scenario.seed, "classes")
    else:
        class_of = correlated_assignment(
            shares, np.zeros(n, np.int64), 0.0, scenario.seed, "classes"
        )
    return [c.name for c in cfg.availability_classes], class_of


def share_counts(shares: tuple[float, ...], n: int) -> np.ndarray:
    """Exact members per share by largest remainder (ties: first share)."""
    quotas = np.asarray(shares, dtype=float) / sum(shares) * n
    counts = np.floor(quotas).astype(int)
    short = n - int(counts.sum())
    order = np.argsort(-(quotas - counts), kind="stable")
    counts[order[:short]] += 1
    return counts


def correlated_assignment(
    shares: tuple[float, ...], data_key: np.ndarray, strength: float, seed: int, purpose: str
) -> np.ndarray:
    """Class index per phone (int array (n,)), exact counts, following the data by ``strength``.

    Each phone gets a score ``strength * u_data + (1 - strength) * u_noise``: ``u_data`` is its
    rank in the data order (its key's position in a seeded shuffle of the keys, ties broken at
    random) and ``u_noise`` an independent uniform draw. Phones sorted by score fill the classes
    in list order. At 1 a key's phones sit in one class (as far as counts allow); at 0 the
    assignment is a random permutation.
    Why one shuffle of keys for every purpose: tiers and availability classes laid along the
    same order correlate with each other too (budget phones that are rarely online).
    """
    n = len(data_key)
    keys, key_index = np.unique(data_key, return_inverse=True)
    key_rank = rng(seed, SERVER, 0, "fleet/correlation/keys").permutation(len(keys))
    tiebreak = rng(seed, SERVER, 0, "fleet/correlation/ties").random(n)
    order = np.lexsort((tiebreak, key_rank[key_index]))
    u_data = np.empty(n)
    u_data[order] = (np.arange(n) + 0.5) / n
    u_noise = rng(seed, SERVER, 0, f"fleet/correlation/{purpose}").random(n)
    score = strength * u_data + (1.0 - strength) * u_noise
    labels = np.repeat(np.arange(len(shares)), share_counts(shares, n))
    out = np.empty(n, dtype=np.int64)
    out[np.argsort(score, kind="stable")] = labels
    return out


def assign_tiers(shares: tuple[float, ...], n: int, seed: int) -> np.ndarray:
    """Tier index per phone (int array (n,)): exact counts by largest remainder (ties: first
    tier), then shuffled by the seed so tiers are not in blocks of phone ids."""
    labels = np.repeat(np.arange(len(shares)), share_counts(shares, n))
    return rng(seed, SERVER, 0, "fleet/tiers").permutation(labels)


def missing_rates(
    config: ModalitiesConfig, names: tuple[str, ...], n: int, seed: int
) -> np.ndarray:
    """Per-phone, per-sample missing rate of each modality: float array (n, len(names)).

    Each ``missing`` rule covers round(phones x n) phones chosen by the seed (later rules
    override earlier ones where they overlap); then each modality is absent entirely (rate 1)
    with ``absence_prob``, except that a phone whose absence draws would leave it with no
    modality keeps the absent one with the highest draw.
    """
    rates = np.zeros((n, len(names)))
    for j, rule in enumerate(config.missing):
        if rule.modality not in names:
            raise ScenarioError(
                [
                    f"modalities.missing[{j}].modality: {rule.modality!r} is not in the dataset; "
                    f"allowed: {', '.join(names)}"
                ]
            )
        count = int(np.floor(rule.phones * n + 0.5))
        chosen = rng(seed, SERVER, j, "fleet/missing").permutation(n)[:count]
        rates[chosen, names.index(rule.modality)] = rule.rate
    if config.absence_prob > 0 and names:
        u = rng(seed, SERVER, 0, "fleet/absence").random((n, len(names)))  # (n, M)
        absent = u < config.absence_prob
        nothing_left = ((rates >= 1.0) | absent).all(axis=1) & absent.any(axis=1)
        rows = np.flatnonzero(nothing_left)
        keep = np.argmax(np.where(absent[rows], u[rows], -1.0), axis=1)
        absent[rows, keep] = False
        rates[absent] = 1.0
    return rates
