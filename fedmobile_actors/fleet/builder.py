"""Scenario + seed -> the fleet: one frozen spec per phone plus its availability process.

Why vectorised: a fleet of thousands of phones is drawn per run and per sweep point, so each
attribute is one numpy draw per tier rather than one generator per phone. Every draw comes from a
stream keyed by what it is for (seeding.py, owner ``SERVER``: the fleet belongs to no phone), so
the same scenario and seed give the same fleet in every process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.fleet.availability import AvailabilityModel, availability_model
from fedmobile_actors.fleet.distributions import draw
from fedmobile_actors.fleet.phone import AvailabilityProcess, PhoneSpec
from fedmobile_actors.scenario.schema import ModalitiesConfig, Scenario
from fedmobile_actors.seeding import SERVER, rng

MBPS = 1e6  # bits per second in one megabit per second


@dataclass(frozen=True)
class Fleet:
    """The simulated population: ``phones[p].phone_id == p``.

    ``availability(p)`` builds phone p's on/off process on first use and keeps it, since
    processes cache their draws (Markov timelines, diurnal slot blocks). A phone whose
    ``availability_class`` is in ``class_models`` follows that class's model, any other ``model``.
    """

    phones: tuple[PhoneSpec, ...]
    model: AvailabilityModel = field(default_factory=AvailabilityModel)
    class_models: dict[str, AvailabilityModel] = field(default_factory=dict, compare=False)
    _processes: dict[int, AvailabilityProcess] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __len__(self) -> int:
        return len(self.phones)

    def __getstate__(self) -> dict[str, object]:
        """Pickle without the process cache: shipping a fleet to a host must not carry every
        timeline the server has drawn (the host redraws the same ones on demand)."""
        state = dict(self.__dict__)
        state["_processes"] = {}
        return state

    def availability(self, phone_id: int) -> AvailabilityProcess:
        """Phone ``phone_id``'s availability process (built lazily, cached)."""
        process = self._processes.get(phone_id)
        if process is None:
            if not 0 <= phone_id < len(self.phones):
                raise IndexError(f"phone {phone_id} is not in a fleet of {len(self.phones)}")
            own = self.class_models.get(self.phones[phone_id].availability_class, self.model)
            process = own.for_phone(phone_id)
            self._processes[phone_id] = process
        return process


def build_fleet(
    scenario: Scenario, modality_names: tuple[str, ...], data_key: np.ndarray | None = None
) -> Fleet:
    """Draw every phone of ``scenario.fleet`` (tiers, speeds, bandwidths, availability classes,
    missing modalities).

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
    rates = missing_rates(scenario.modalities, modality_names, n, seed)
    names = [t.name for t in cfg.tiers]
    phones = tuple(
        PhoneSpec(
            phone_id=p,
            tier=names[tier_index],
            samples_per_second=s,
            down_bps=d,
            up_bps=u,
            latency_s=lat,
            failure_prob=cfg.failure_prob,
            missing_rates=dict(zip(modality_names, row, strict=True)),
            availability_class=class_names[class_index],
        )
        for p, (tier_index, class_index, s, d, u, lat, row) in enumerate(
            zip(
                tier_of.tolist(),
                class_of.tolist(),
                speed.tolist(),
                down.tolist(),
                up.tolist(),
                latency.tolist(),
                rates.tolist(),
                strict=True,
            )
        )
    )
    model = availability_model(cfg.availability, seed, scenario.base_dir)
    class_models = {
        c.name: availability_model(c.availability, seed, scenario.base_dir)
        for c in cfg.availability_classes
    }
    return Fleet(phones=phones, model=model, class_models=class_models)


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
