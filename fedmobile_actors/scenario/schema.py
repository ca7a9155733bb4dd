"""The scenario schema: typed, validated, frozen; the only description of a run.

Why pydantic here and frozen dataclasses below: YAML is untrusted text written by people, so the
edge needs precise validation with field paths; every layer beneath receives these frozen models
and never sees YAML. Every field has a default that makes a short file work; ``Field``
descriptions are the reference text that ``docs/scenarios.md`` is generated from.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

#: Largest synthetic dataset (float32 bytes): beyond it the run would not fit a laptop's memory.
MAX_DATA_BYTES = 4 * 2**30

#: Largest number of weights of the per-modality encoders together (80 MB of float32, held by
#: every phone host and the server, and copied into every update).
MAX_MODEL_WEIGHTS = 20_000_000

#: Most retries of an empty round (deadline_s / idle_retry_s) and most availability changes a
#: phone may need over the run: beyond them the simulator would search or allocate for minutes.
MAX_IDLE_RETRIES = 100_000
MAX_AVAILABILITY_CHANGES = 10_000_000

#: Largest root seed: seeding.py keys streams by the seed's low 32 bits, so larger seeds would
#: silently collide with smaller ones.
MAX_SEED = 2**32 - 1


class Frozen(BaseModel):
    """Base of every scenario section: unknown keys are errors, instances are immutable.

    ``allow_inf_nan=False``: ``.inf`` and ``.nan`` are valid YAML floats but no field means them
    (an infinite deadline or bandwidth would silently break the virtual clock).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )


def rule_error(at: str, value: Any, message: str) -> PydanticCustomError:
    """A cross-field rule's error, naming the sub-path (``0.share``) and the value it is about.

    Why not a plain ``ValueError``: pydantic would blame the whole section and show all of it as
    the value; the loader appends ``at`` to the location and shows ``value`` instead.
    """
    context = {"message": message, "at": at, "value": value}
    return PydanticCustomError("scenario_rule", "{message}", context)


# --------------------------------------------------------------------------------------------
# Distributions (device speeds, bandwidths, per-task slowdown)
# --------------------------------------------------------------------------------------------


class Constant(Frozen):
    """Always the same value; a plain number (``up_mbps: 5``) stands for this."""

    dist: Literal["constant"] = "constant"
    value: float = Field(ge=0, le=1e9, description="The value.")


class Uniform(Frozen):
    """Uniform between low and high."""

    dist: Literal["uniform"] = "uniform"
    low: float = Field(ge=0, le=1e9, description="Lower bound.")
    high: float = Field(ge=0, le=1e9, description="Upper bound (>= low).")

    @field_validator("high")
    @classmethod
    def _ordered(cls, high: float, info: ValidationInfo) -> float:
        low = info.data.get("low")
        if low is not None and high < low:
            raise ValueError(f"must be >= low ({low:g})")
        return high


class LogNormal(Frozen):
    """Log-normal with the given median and log-space sigma: the usual shape of device speeds."""

    dist: Literal["lognormal"] = "lognormal"
    median: float = Field(gt=0, le=1e9, description="Median of the distribution.")
    sigma: float = Field(default=0.5, ge=0, le=3, description="Standard deviation of log(value).")


Distribution = Annotated[Constant | Uniform | LogNormal, Field(discriminator="dist")]


def _number_as_constant(value: Any) -> Any:
    """Let a plain number stand for a constant distribution (``up_mbps: 5``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"dist": "constant", "value": value}
    return value


# --------------------------------------------------------------------------------------------
# Fleet: device tiers, availability, failures
# --------------------------------------------------------------------------------------------


class DeviceTier(Frozen):
    """A class of phones (flagship, mid-range, budget) and the distributions its members draw."""

    name: str = Field(description="Tier name, used in logs and plots.")
    share: float = Field(gt=0, le=1, description="Fraction of the fleet in this tier.")
    samples_per_second: Distribution = Field(
        description="Local training throughput (samples per second for one epoch pass)."
    )
    down_mbps: Distribution = Field(description="Downlink bandwidth in megabits per second.")
    up_mbps: Distribution = Field(description="Uplink bandwidth in megabits per second.")
    latency_s: float = Field(
        default=0.05, ge=0, le=3600, description="One-way network latency, seconds."
    )

    @field_validator("samples_per_second", "down_mbps", "up_mbps", mode="before")
    @classmethod
    def _plain_number(cls, value: Any) -> Any:
        return _number_as_constant(value)


def _default_tiers() -> tuple[DeviceTier, ...]:
    return (
        DeviceTier(
            name="flagship",
            share=0.3,
            samples_per_second=LogNormal(median=400.0, sigma=0.2),
            down_mbps=LogNormal(median=50.0, sigma=0.5),
            up_mbps=LogNormal(median=15.0, sigma=0.5),
            latency_s=0.03,
        ),
        DeviceTier(
            name="midrange",
            share=0.5,
            samples_per_second=LogNormal(median=150.0, sigma=0.3),
            down_mbps=LogNormal(median=20.0, sigma=0.6),
            up_mbps=LogNormal(median=5.0, sigma=0.6),
            latency_s=0.05,
        ),
        DeviceTier(
            name="budget",
            share=0.2,
            samples_per_second=LogNormal(median=50.0, sigma=0.4),
            down_mbps=LogNormal(median=8.0, sigma=0.7),
            up_mbps=LogNormal(median=2.0, sigma=0.7),
            latency_s=0.1,
        ),
    )


class AlwaysOn(Frozen):
    """Every phone is online all the time."""

    model: Literal["always"] = "always"


class BernoulliAvailability(Frozen):
    """Each phone is online for a whole round with probability ``p_online``, drawn per round."""

    model: Literal["bernoulli"] = "bernoulli"
    p_online: float = Field(default=0.8, ge=0, le=1, description="Probability of being online.")


class MarkovAvailability(Frozen):
    """Two-state on/off process with exponential holding times (continuous-time Markov chain)."""

    model: Literal["markov"] = "markov"
    mean_on_s: float = Field(
        default=600.0, ge=1, le=1e9, description="Mean online duration, seconds."
    )
    mean_off_s: float = Field(
        default=300.0, ge=1, le=1e9, description="Mean offline duration, seconds."
    )


class DiurnalAvailability(Frozen):
    """Online probability follows a day cycle; each phone has its own phase offset."""

    model: Literal["diurnal"] = "diurnal"
    period_s: float = Field(
        default=86400.0, ge=1, le=1e9, description="Length of one cycle, seconds."
    )
    peak_online: float = Field(default=0.9, ge=0, le=1, description="Online probability at peak.")
    trough_online: float = Field(
        default=0.2, ge=0, le=1, description="Online probability at trough."
    )
    slot_s: float = Field(
        default=600.0, ge=1, le=1e9, description="Length of a slot during which the state is held."
    )


class TraceAvailability(Frozen):
    """Replay a CSV trace (``phone,online_from,online_until`` in seconds); see docs/scenarios.md.

    Phones beyond the trace's ids reuse its rows modulo their count, so a small trace can drive a
    large fleet.
    """

    model: Literal["trace"] = "trace"
    file: str = Field(description="Path to the CSV trace, relative to the scenario file.")
    loop_s: float | None = Field(
        default=None,
        ge=1,
        le=1e9,
        description="Repeat the trace every loop_s seconds (None: once).",
    )


Availability = Annotated[
    AlwaysOn | BernoulliAvailability | MarkovAvailability | DiurnalAvailability | TraceAvailability,
    Field(discriminator="model"),
]


class AvailabilityClass(Frozen):
    """A named share of the fleet with its own availability process (always-on, night-time...)."""

    name: str = Field(description="Class name, used in per-group results and plots.")
    share: float = Field(gt=0, le=1, description="Fraction of the fleet in this class.")
    availability: Availability = Field(description="Availability process of the class's phones.")


class HeterogeneityCorrelation(Frozen):
    """How strongly a phone's device tier and availability class follow its data.

    Phones are ordered by their data (their main subject, or their main label, in an order drawn
    from the seed); classes are laid along that order in the order they are listed, so the first
    tier and the first availability class go to the same subjects. ``strength`` mixes that order
    with a random one: 0 leaves assignment independent of the data, 1 makes it a function of it.
    """

    by: Literal["subject", "label"] = Field(
        default="subject", description="The data key: main subject or main label of each phone."
    )
    strength: float = Field(
        default=1.0, ge=0, le=1, description="0: independent of the data; 1: fully correlated."
    )
    tiers: bool = Field(default=True, description="Correlate device tiers with the data.")
    availability: bool = Field(
        default=True, description="Correlate availability classes with the data."
    )


class FleetConfig(Frozen):
    """The simulated phones: how many, of which tiers, how available, how often they fail."""

    phones: int = Field(default=20, ge=1, le=1_000_000, description="Number of phones.")
    tiers: tuple[DeviceTier, ...] = Field(
        default_factory=_default_tiers, min_length=1, description="Device tiers; shares sum to 1."
    )
    availability: Availability = Field(
        default_factory=AlwaysOn, description="Availability process of every phone."
    )
    availability_classes: tuple[AvailabilityClass, ...] = Field(
        default=(),
        description="Named shares of the fleet with their own availability; when given, they "
        "replace `availability`.",
    )
    correlation: HeterogeneityCorrelation | None = Field(
        default=None,
        description="Tie tiers and availability classes to the phones' data (None: independent).",
    )
    failure_prob: float = Field(
        default=0.0, ge=0, lt=1, description="Per-task probability of a crash or app kill."
    )
    slowdown: Distribution = Field(
        default_factory=lambda: LogNormal(median=1.0, sigma=0.1),
        description="Per-task multiplicative slowdown of compute time (thermal, other apps).",
    )

    @field_validator("slowdown", mode="before")
    @classmethod
    def _plain_number(cls, value: Any) -> Any:
        return _number_as_constant(value)

    @field_validator("availability")
    @classmethod
    def _sometimes_online(cls, availability: Any) -> Any:
        """A fleet that is never online can get no report in any round: refuse it up front."""
        never = (
            isinstance(availability, BernoulliAvailability) and availability.p_online == 0
        ) or (
            isinstance(availability, DiurnalAvailability)
            and availability.peak_online == 0
            and availability.trough_online == 0
        )
        if never:
            at = "p_online" if isinstance(availability, BernoulliAvailability) else "peak_online"
            raise rule_error(
                at,
                0,
                "every phone is always offline, so no round can ever get a report; "
                "allowed: an online probability above 0",
            )
        return availability

    @field_validator("tiers")
    @classmethod
    def _shares_sum_to_one(cls, tiers: tuple[DeviceTier, ...]) -> tuple[DeviceTier, ...]:
        problem = tier_share_problem([t.share for t in tiers])
        if problem is not None:
            raise rule_error("", [t.share for t in tiers], problem)
        names = [t.name for t in tiers]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise rule_error(f"{index}.name", name, "tier names must be unique")
        return tiers

    @field_validator("availability_classes")
    @classmethod
    def _class_shares_sum_to_one(
        cls, classes: tuple[AvailabilityClass, ...]
    ) -> tuple[AvailabilityClass, ...]:
        if not classes:
            return classes
        problem = tier_share_problem([c.share for c in classes])
        if problem is not None:
            raise rule_error("", [c.share for c in classes], problem.replace("tier", "class"))
        names = [c.name for c in classes]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise rule_error(f"{index}.name", name, "availability class names must be unique")
        return classes


def tier_share_problem(shares: list[float]) -> str | None:
    """Why these tier shares are wrong (they must sum to 1), or None.

    Public so the loader can still report it when another field of the same tiers fails and
    pydantic never reaches the field validator.
    """
    total = sum(shares)
    if math.isclose(total, 1.0, abs_tol=1e-6):
        return None
    listed = " + ".join(f"{s:g}" for s in shares)
    return f"tier shares sum to {total:g} ({listed}); allowed: shares that sum to 1"


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


class ModalityShape(Frozen):
    """One sensor modality of the synthetic dataset: channels x time steps per window."""

    name: str = Field(description="Modality name (e.g. acc, gyro).")
    channels: int = Field(default=3, ge=1, le=64, description="Channels per window.")
    steps: int = Field(default=50, ge=4, le=4096, description="Time steps per window.")


def _default_synthetic_modalities() -> tuple[ModalityShape, ...]:
    return (ModalityShape(name="acc"), ModalityShape(name="gyro"))


class PerPhoneSynthetic(Frozen):
    """Opt-in: every phone's windows made when the phone is first needed, from a stream keyed by
    (seed, phone), instead of one dataset made up front and dealt to phones.

    Memory and start-up then follow the phones dispatched, not the fleet (a million phones fit on
    a laptop). ``data.partition`` is drawn per phone (IID; Dirichlet label proportions per phone;
    ``shards_per_phone`` labels per phone; one subject per phone), and the held-out test set is a
    fixed-size draw from the server's stream, so the numbers differ from the dealt dataset's
    (docs/data.md).
    """

    samples: int = Field(
        default=128, ge=1, le=100_000, description="Training windows of every phone."
    )
    test_samples: int = Field(
        default=2000,
        ge=10,
        le=1_000_000,
        description="Held-out windows, made once from the server's stream whatever the fleet "
        "size; data.proxy_fraction of them become the proxy set.",
    )
    reference_samples: int = Field(
        default=2000,
        ge=10,
        le=1_000_000,
        description="Windows of a server-keyed reference sample the per-channel normalisation "
        "is fitted on (never trained on, never tested on).",
    )


class SyntheticSource(Frozen):
    """Seeded synthetic multimodal activity data; no download, ever."""

    kind: Literal["synthetic"] = "synthetic"
    num_classes: int = Field(default=6, ge=2, le=100, description="Number of activity classes.")
    samples: int = Field(
        default=4000,
        ge=20,
        le=10_000_000,
        description="Total windows (train + test); unused with per_phone.",
    )
    modalities: tuple[ModalityShape, ...] = Field(
        default_factory=_default_synthetic_modalities, min_length=1, description="Modalities."
    )
    correlation: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="Cross-modal correlation: how much of each modality's class signal is shared "
        "with the other modalities (0: independent, 1: identical latent cause).",
    )
    noise: float = Field(default=1.0, ge=0, le=1000, description="Per-sample Gaussian noise level.")
    subjects: int = Field(
        default=10, ge=1, le=100_000, description="Simulated subjects (natural partition)."
    )
    per_phone: PerPhoneSynthetic | None = Field(
        default=None,
        description="Make each phone's windows on demand, keyed by (seed, phone), for fleets "
        "too large to hold (None: one dataset made up front and dealt to phones).",
    )

    @field_validator("modalities")
    @classmethod
    def _unique_names(
        cls, modalities: tuple[ModalityShape, ...], info: ValidationInfo
    ) -> tuple[ModalityShape, ...]:
        names = [m.name for m in modalities]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise rule_error(f"{index}.name", name, "modality names must be unique")
        samples = info.data.get("samples")
        if samples is not None:
            size = samples * sum(m.channels * m.steps for m in modalities) * 4
            if size > MAX_DATA_BYTES:
                raise rule_error(
                    "",
                    [f"{m.name}: {m.channels}x{m.steps}" for m in modalities],
                    f"samples x channels x steps needs {size / 2**30:.1f} GiB of float32; "
                    f"allowed: at most {MAX_DATA_BYTES / 2**30:.0f} GiB (lower samples or sizes)",
                )
        return modalities


class UscHadSource(Frozen):
    """USC-HAD in its original release layout (Subject1..Subject14 / a<act>t<trial>.mat)."""

    kind: Literal["usc_had"] = "usc_had"
    path: str | None = Field(
        default=None,
        description="Dataset directory (the one holding Subject1..14, or its parent). "
        "None: the FEDMOBILE_USC_HAD environment variable.",
    )
    window: int = Field(
        default=100, ge=8, le=10_000, description="Window length in samples (100 Hz)."
    )
    stride: int = Field(
        default=50, ge=1, le=10_000, description="Stride between windows in samples."
    )
    subjects: tuple[int, ...] | None = Field(
        default=None, description="Subjects to load (1..14); None: all."
    )
    test_split: Literal["trial", "subject"] = Field(
        default="trial", description="Hold out by trial (last trial of each activity) or subject."
    )
    test_subjects: tuple[int, ...] = Field(
        default=(13, 14), description="Held-out subjects when test_split is 'subject'."
    )
    cache_dir: str | None = Field(
        default=None, description="Where windowed arrays are cached (None: ~/.cache/fedmobile)."
    )


class NpzSource(Frozen):
    """Bring-your-own arrays in one .npz: one array per modality, labels, optional subjects."""

    kind: Literal["npz"] = "npz"
    path: str = Field(description="Path to the .npz file, relative to the scenario file.")
    modalities: tuple[str, ...] | None = Field(
        default=None,
        description="Array names that are modalities (None: all but labels, subjects, split and "
        "groups).",
    )
    num_classes: int | None = Field(
        default=None,
        ge=2,
        le=10_000,
        description="Number of classes (None: max(labels) + 1, every value in between used).",
    )


DataSource = Annotated[SyntheticSource | UscHadSource | NpzSource, Field(discriminator="kind")]


class IidPartition(Frozen):
    """Shuffle and deal the training windows evenly to the phones."""

    kind: Literal["iid"] = "iid"


class DirichletPartition(Frozen):
    """Label skew: each class is split across phones by Dirichlet(alpha) proportions."""

    kind: Literal["dirichlet"] = "dirichlet"
    alpha: float = Field(
        default=0.5, ge=0.001, le=1e6, description="Concentration; smaller is more skewed."
    )
    min_samples: int = Field(
        default=8, ge=1, le=100_000, description="Redraw until every phone has this many."
    )


class ShardPartition(Frozen):
    """Pathological label skew (McMahan et al. 2017): windows sorted by label, cut into
    ``phones x shards_per_phone`` shards of one label each, each phone dealt ``shards_per_phone``
    of them at random, so a phone holds at most that many labels."""

    kind: Literal["shards"] = "shards"
    shards_per_phone: int = Field(
        default=2,
        ge=1,
        le=10_000,
        description="Shards each phone is dealt; it holds at most this many labels.",
    )


class SubjectPartition(Frozen):
    """Natural partition: each phone holds the data of one subject (phones cycle over subjects)."""

    kind: Literal["subject"] = "subject"


Partition = Annotated[
    IidPartition | DirichletPartition | ShardPartition | SubjectPartition,
    Field(discriminator="kind"),
]


class DataConfig(Frozen):
    """Where the windows come from and how they are dealt to phones."""

    source: DataSource = Field(default_factory=SyntheticSource, description="The dataset.")
    partition: Partition = Field(default_factory=IidPartition, description="How data is dealt.")
    test_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="Held-out fraction (synthetic and npz sources)."
    )
    proxy_fraction: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Fraction of the held-out windows the server keeps as a proxy set for Shapley "
        "utilities (0: none; FedMobile then scores coalitions on generated features).",
    )
    proxy_split: Literal["random", "blocked"] = Field(
        default="random",
        description="How the proxy set is cut from the held-out windows. random: windows drawn "
        "at random (overlapping windows of one recording then share raw samples with test "
        "windows). blocked: usc_had takes a contiguous block (proxy_fraction of the windows, "
        "rounded half up, at a seeded position) of each held-out recording and drops the windows "
        "that overlap it, so no proxy window shares a sample with a test window; npz takes whole "
        "'groups' (needs that array); synthetic windows are independent, so it equals random.",
    )


# --------------------------------------------------------------------------------------------
# Modalities: who misses what
# --------------------------------------------------------------------------------------------


class MissingRule(Frozen):
    """Modality ``modality`` is missing on a ``phones`` fraction of phones, per-sample ``rate``."""

    modality: str = Field(description="Modality name.")
    rate: float = Field(ge=0, le=1, description="Per-sample missing rate on affected phones.")
    phones: float = Field(default=1.0, ge=0, le=1, description="Fraction of phones affected.")


class StepDropout(Frozen):
    """Training-time modality dropout, as the FedMobile authors' code runs its "missing rate":
    in every training batch ``int(rate * batch)`` random rows lose ``modality``, redrawn at each
    step (unlike ``missing``, whose per-sample masks are fixed properties of a phone's data)."""

    modality: str = Field(description="Modality name.")
    rate: float = Field(ge=0, le=1, description="Fraction of each batch's rows that lose it.")
    mode: Literal["zero_input", "absent"] = Field(
        default="zero_input",
        description="zero_input: the rows' input window is zeroed and still encoded (the "
        "authors' rule; the model is not told); absent: the rows are marked missing, so the "
        "encoder skips them and a strategy's fill (e.g. FedMobile's generator) applies.",
    )


class ModalitiesConfig(Frozen):
    """Missing-modality patterns: the paper's per-sample rate and FedMultimodal's absence."""

    missing: tuple[MissingRule, ...] = Field(
        default=(), description="Per-phone, per-sample missing rules (paper's setting)."
    )
    absence_prob: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Per-phone Bernoulli absence: each modality is absent entirely from a phone "
        "with this probability (FedMultimodal's setting); at least one modality is kept.",
    )
    test_missing: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict,
        description="Test-time per-sample missing rate per modality (the 'missing' accuracy).",
    )
    training_dropout: tuple[StepDropout, ...] = Field(
        default=(),
        description="Training-time dropout redrawn every local step (the authors' protocol); "
        "test sets are unaffected.",
    )


# --------------------------------------------------------------------------------------------
# Model and algorithm
# --------------------------------------------------------------------------------------------


class ModelConfig(Frozen):
    """The local model: per-modality encoders of ``kind``, concatenated features, a linear head."""

    kind: str = Field(
        default="conv1d",
        min_length=1,
        max_length=300,
        description="Model kind: conv1d (Conv1d encoders, the default), mlp (MLP over the "
        "flattened window) or authors_conv2d (the FedMobile authors' Conv2d+BatchNorm USC-HAD "
        "model; BatchNorm statistics stay on each phone), a name an installed package "
        "registers in the fedmobile_actors.models entry-point group, or package.module:builder "
        "(docs/extending.md).",
    )
    conv_channels: tuple[Annotated[int, Field(ge=1, le=1024)], ...] = Field(
        default=(32, 64),
        min_length=1,
        max_length=8,
        description="Output channels of each Conv1d layer.",
    )
    kernel_size: int = Field(
        default=5,
        ge=1,
        le=64,
        description="Conv1d kernel size (odd keeps length); at most the shortest window.",
    )
    mlp_hidden: tuple[Annotated[int, Field(ge=1, le=8192)], ...] = Field(
        default=(128, 64),
        min_length=1,
        max_length=8,
        description="mlp: widths of each encoder's layers.",
    )
    dropout: float = Field(
        default=0.5,
        ge=0,
        lt=1,
        description="authors_conv2d: dropout probability.",
    )


class FedMobileConfig(Frozen):
    """FedMobile's own knobs: generator, distillation, clustering, Shapley, contribution weights."""

    noise_dim: int = Field(
        default=16, ge=1, le=1024, description="Dimension of the generator's noise z."
    )
    generator_hidden: int = Field(default=64, ge=1, le=4096, description="Generator hidden width.")
    generator_lr: float = Field(default=0.01, gt=0, le=10, description="Generator learning rate.")
    generator_steps: int = Field(
        default=20, ge=0, le=100_000, description="Generator optimisation steps per local round."
    )
    temperature: float = Field(
        default=2.0, ge=0.01, le=100, description="Distillation temperature T."
    )
    kd_weight: float = Field(
        default=1.0, ge=0, le=1000, description="Weight of the KL distillation term."
    )
    feature_match_weight: float = Field(
        default=1.0,
        ge=0,
        le=1000,
        description="Weight of MSE(generated, real feature): pins the level of generated "
        "features, which the shift-invariant KL leaves free (see docs/algorithm.md).",
    )
    ce_weight: float = Field(
        default=1.0,
        ge=0,
        le=1000,
        description="Weight of the head's cross-entropy on generated features.",
    )
    clusters: int = Field(
        default=4, ge=1, le=256, description="K of k-means over generators (capped)."
    )
    probe_size: int = Field(
        default=64, ge=1, le=10_000, description="Probe batch of (z, y) per class set."
    )
    shapley_exact_max: int = Field(
        default=10,
        ge=1,
        le=16,
        description="Exact Shapley up to this many clusters (2^K coalitions), Monte Carlo above.",
    )
    shapley_permutations: int = Field(
        default=200,
        ge=1,
        le=100_000,
        description="Monte Carlo permutations when K > shapley_exact_max.",
    )
    contribution_balance: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Contribution-aware alpha: share of local accuracy (vs. relative loss "
        "reduction) in a phone's score.",
    )
    filter: bool = Field(
        default=False,
        description="Public code's filter: keep phones whose local plus marginal global gain "
        "beats last round's accuracy.",
    )
    generator_ema: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Server-side exponential moving average of the global generator: new = "
        "ema * previous + (1 - ema) * this round's weighted average (0: off, the paper's rule).",
    )
    shapley_mass_mix: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Tempered cluster weights: (1 - mix) * Shapley weights + mix * cluster mass "
        "shares (0: pure Shapley, the paper's rule; 1: the no-Shapley ablation).",
    )


class FedMobileAuthorsConfig(Frozen):
    """What the authors' public USC-HAD code (yiliucs/WWW25) fixes in code, as settings."""

    selection_split: Literal["validation", "test_leaky"] = Field(
        default="validation",
        description="Set the server's model selection and Shapley utility are scored on: the "
        "proxy (validation) set held out from training, or the test set as the public code "
        "does (leaks the test set into training decisions).",
    )
    noise_dim: int = Field(default=12, ge=1, le=1024, description="Generator noise dimension.")
    generator_hidden: int | None = Field(
        default=None,
        ge=1,
        le=16384,
        description="Generator hidden width; None: the fused feature size, as the authors "
        "(6336 for 3 x 200 windows: a 160 MB generator in every download).",
    )
    clusters: int = Field(default=3, ge=1, le=8, description="K of k-means over generators.")
    probe_labels: int = Field(
        default=16, ge=1, le=10_000, description="Random labels generators are clustered on."
    )
    temperature: float = Field(default=0.5, ge=0.01, le=100, description="KL temperature.")
    reproduce_defects: bool = Field(
        default=False,
        description="Reproduce the public code's arithmetic defects (local accuracy not reset "
        "between models, cumulative prefix average, Shapley cache storing a mean where the "
        "first use is a sum); false computes what the code evidently means.",
    )


#: The built-in strategies' names (``algorithm.name`` also takes plug-ins, resolved in
#: algorithms/registry.py, which is why the field itself is a plain string like ``model.kind``).
AlgorithmName = Literal[
    "fedavg",
    "fedavg_local_momentum",
    "fedprox",
    "noise_padding",
    "fedmobile",
    "fedmobile_no_shapley",
    "fedmobile_no_alpha",
    "fedmobile_xmodal",
    "fedmobile_authors",
]


class MissingDistillConfig(Frozen):
    """Self-distillation into the missing-modality path (off at weight 0).

    On a row that has every modality, the model's output is the teacher (detached); the same row
    with a modality the phone misses hidden, filled as the strategy fills it, is the student. The
    rows that will be tested without that modality then learn from the complete rows too, and
    from a teacher that saw both modalities (cross-modal distillation, issue 12)."""

    weight: float = Field(
        default=0.0,
        ge=0,
        le=1000,
        description="Weight of T^2 KL(teacher || student) added to the local loss (0: off).",
    )
    temperature: float = Field(
        default=2.0, ge=0.01, le=100, description="Distillation temperature T."
    )


class AlgorithmConfig(Frozen):
    """The strategy and its local-training hyperparameters."""

    name: str = Field(
        default="fedavg",
        min_length=1,
        max_length=300,
        description="Strategy: a built-in name (fedavg, fedavg_local_momentum, fedprox, "
        "noise_padding, fedmobile, fedmobile_no_shapley, fedmobile_no_alpha, fedmobile_xmodal, "
        "fedmobile_authors), a name an "
        "installed package registers in the fedmobile_actors.strategies entry-point group, or "
        "package.module:ClassName (docs/extending.md). Checked by fedmobile validate and before "
        "a run starts.",
    )
    local_epochs: int = Field(default=1, ge=1, le=1000, description="Local epochs per task.")
    batch_size: int = Field(default=32, ge=1, le=100_000, description="Local mini-batch size.")
    lr: float = Field(default=0.05, gt=0, le=10, description="Local SGD learning rate.")
    momentum: float = Field(default=0.0, ge=0, lt=1, description="Local SGD momentum.")
    optimizer: Literal["sgd", "adam"] = Field(
        default="sgd",
        description="Local optimizer: sgd (fresh each task) or adam, whose moments persist on "
        "each phone across its tasks (the authors' per-node Adam; lr is its learning rate).",
    )
    weight_decay: float = Field(
        default=0.0, ge=0, le=10, description="adam: L2 weight decay added to the gradient."
    )
    mu: float = Field(default=0.01, ge=0, le=1000, description="FedProx proximal weight.")
    noise_std: float = Field(
        default=1.0, ge=0, le=1000, description="Std of the random-noise padding baseline's fill."
    )
    fedmobile: FedMobileConfig = Field(default_factory=FedMobileConfig, description="FedMobile.")
    missing_distill: MissingDistillConfig = Field(
        default_factory=MissingDistillConfig,
        description="Self-distillation from complete rows into the path of a missing modality "
        "(FedAvg-family strategies and fedmobile_xmodal; off by default).",
    )
    options: dict[Annotated[str, Field(min_length=1, max_length=100)], bool | int | float | str] = (
        Field(
            default_factory=dict,
            max_length=100,
            description="A plug-in strategy's own settings (e.g. {server_momentum: 0.9}), read and "
            "checked by the strategy; built-in strategies take none.",
        )
    )
    fedmobile_authors: FedMobileAuthorsConfig = Field(
        default_factory=FedMobileAuthorsConfig, description="fedmobile_authors."
    )


# --------------------------------------------------------------------------------------------
# Rounds: the round policy
# --------------------------------------------------------------------------------------------


class RoundsConfig(Frozen):
    """How tasks are dispatched and when the server aggregates, in virtual time."""

    policy: Literal["deadline", "async"] = Field(default="deadline", description="Round policy.")
    rounds: int = Field(
        default=20, ge=1, le=100_000, description="Number of aggregations (global versions)."
    )
    clients_per_round: int = Field(
        default=10, ge=1, le=1_000_000, description="Target reports per round (deadline policy)."
    )
    overcommit: float = Field(
        default=1.0, ge=1, le=10, description="Dispatch clients_per_round x overcommit phones."
    )
    deadline_s: float = Field(
        default=600.0, ge=0.001, le=1e7, description="Round deadline, virtual seconds."
    )
    concurrency: int = Field(
        default=10, ge=1, le=1_000_000, description="Async: phones kept busy at once."
    )
    buffer: int = Field(
        default=5, ge=1, le=1_000_000, description="Async: aggregate every this many arrivals."
    )
    staleness: Literal["constant", "polynomial", "hinge"] = Field(
        default="polynomial", description="Async: weight of a stale update as staleness grows."
    )
    staleness_exponent: float = Field(
        default=0.5,
        ge=0,
        le=100,
        description="Async polynomial: weight = (1 + staleness)^-exponent.",
    )
    staleness_hinge: int = Field(
        default=4,
        ge=0,
        le=100_000,
        description="Async hinge: full weight up to this staleness, then decay.",
    )
    max_staleness: int = Field(
        default=10, ge=0, le=100_000, description="Async: updates staler than this are dropped."
    )
    late_phones: Literal["abandon", "busy"] = Field(
        default="abandon",
        description="Deadline: a late phone's task is abandoned when the round closes (it may be "
        "selected next round, as in FedScale), or keeps the phone busy until its upload would end.",
    )
    eval_every: int = Field(
        default=1, ge=1, le=100_000, description="Evaluate the global model every N."
    )
    eval_per_phone: bool = Field(
        default=False,
        description="Also evaluate each phone's model (global weights with the phone's own state, "
        "e.g. BatchNorm statistics) on its own held-out windows, averaged over phones (the "
        "authors' evaluation; column accuracy_per_phone); the pooled test set is kept. With "
        "data.source.per_phone: over the phones that reported in the evaluated round.",
    )
    idle_retry_s: float = Field(
        default=60.0,
        ge=0.001,
        le=1e7,
        description="When no phone is online, advance the clock this much and try again.",
    )


# --------------------------------------------------------------------------------------------
# Runtime and output
# --------------------------------------------------------------------------------------------


class RuntimeConfig(Frozen):
    """Where the simulation runs: in-process (debugging) or on Ray (local or a cluster)."""

    backend: Literal["ray", "inprocess"] = Field(default="ray", description="Execution backend.")
    address: str | None = Field(
        default=None,
        description="Ray cluster to join ('auto' or 'ray://host:port'); None starts a local Ray.",
    )
    num_cpus: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description="CPUs of a local Ray (None: all of this machine's).",
    )
    hosts: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Phone-host actors (None: one per CPU of the cluster).",
    )
    phones_per_host: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Phones per host; 1 gives one Ray actor per phone.",
    )
    cpus_per_host: float = Field(
        default=1.0, ge=0.001, le=4096, description="CPUs reserved by each host."
    )
    gpus_per_host: float = Field(
        default=0.0, ge=0, le=64, description="GPUs (fractions allowed) reserved by each host."
    )
    torch_threads: int = Field(
        default=1, ge=1, le=256, description="Torch threads per training phone."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto",
        description="Where hosts train their phones: 'cuda' on the GPU each host reserved "
        "(needs gpus_per_host > 0), 'cpu', or 'auto' (cuda when gpus_per_host > 0 and the host "
        "sees a GPU, else cpu). The server evaluates on the CPU.",
    )
    memory_per_host_mb: int | None = Field(
        default=None,
        ge=1,
        le=16_777_216,
        description="Memory (MB) Ray reserves for each host (None: no reservation).",
    )
    shard_cache_mb: int = Field(
        default=64,
        ge=1,
        le=16_777_216,
        description="Memory (MB) each host may keep of on-demand shards (data.source.per_phone); "
        "the least recently trained phones are dropped and remade, bit for bit, when needed.",
    )

    @field_validator("device")
    @classmethod
    def _gpu_reserved(cls, device: str, info: ValidationInfo) -> str:
        """``cuda`` on Ray needs a GPU reserved per host: a host without one either sees no GPU
        or shares one behind Ray's back (checked only if gpus_per_host validated)."""
        gpus = info.data.get("gpus_per_host")
        if device == "cuda" and info.data.get("backend") == "ray" and gpus == 0:
            raise ValueError(
                "cuda needs runtime.gpus_per_host > 0 on the ray backend (each host trains on "
                "the GPU share Ray reserves for it); set gpus_per_host, or device: auto or cpu"
            )
        return device


class OutputConfig(Frozen):
    """Where results go and how often state is checkpointed."""

    dir: str = Field(default="runs", description="Parent of run directories.")
    checkpoint_every: int = Field(
        default=5, ge=0, le=100_000, description="Checkpoint every N rounds (0: no)."
    )
    plots: bool = Field(default=True, description="Draw plots at the end of a run.")
    event_log: bool = Field(default=True, description="Write the per-task event log.")


class SweepConfig(Frozen):
    """Named variants, times a grid over dotted field paths, times a list of seeds.

    Why variants beside the grid: a grid is a product, but a method often comes with settings of
    its own (FedMobile needs the dropped rows marked absent, FedAvg under the same protocol has
    them zeroed); a variant sets several paths together under one name, and the grid and the
    seeds are crossed with each variant."""

    variants: dict[
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.+]{1,40}$")], dict[str, Any]
    ] = Field(
        default_factory=dict,
        description=(
            "Variant name (letters, digits, _ . +; at most 40) -> dotted field path -> value, "
            "set together; every variant is run at every grid point."
        ),
    )
    grid: dict[str, tuple[Any, ...]] = Field(
        default_factory=dict, description="Dotted field path -> values to try."
    )
    seeds: tuple[Annotated[int, Field(ge=0, le=MAX_SEED)], ...] = Field(
        default=(0,), min_length=1, description="Seeds per point (each one run per grid point)."
    )
    parallel: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description=(
            "Cells at once (None: as many as the CPUs, or on Ray the cluster's resources, allow;"
            " 1: one after another)."
        ),
    )


class Scenario(Frozen):
    """A complete, resolved scenario: what the user wrote plus every default."""

    name: str = Field(
        default="scenario",
        min_length=1,
        max_length=100,
        description="Name, used for the run directory (at most 100 characters).",
    )
    description: str = Field(default="", max_length=100_000, description="Free text.")
    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="Root seed of every random stream.")
    data: DataConfig = Field(default_factory=DataConfig, description="Dataset and partition.")
    fleet: FleetConfig = Field(default_factory=FleetConfig, description="Simulated phones.")
    modalities: ModalitiesConfig = Field(
        default_factory=ModalitiesConfig, description="Missing-modality patterns."
    )
    model: ModelConfig = Field(default_factory=ModelConfig, description="Local model.")
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig, description="Strategy.")
    rounds: RoundsConfig = Field(default_factory=RoundsConfig, description="Round policy.")
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig, description="Execution.")
    output: OutputConfig = Field(default_factory=OutputConfig, description="Results.")
    sweep: SweepConfig | None = Field(default=None, description="Optional sweep.")
    base_dir: str = Field(
        default=".",
        description="Directory relative paths are resolved against (set by the loader to the "
        "scenario file's directory).",
    )

    @field_validator("model")
    @classmethod
    def _model_fits_data(cls, value: ModelConfig, info: ValidationInfo) -> ModelConfig:
        """The model must be buildable for the data (checked only if data validated)."""
        data = info.data.get("data")
        problem = model_problem(value, data) if isinstance(data, DataConfig) else None
        if problem is not None:
            raise rule_error(*problem)
        return value

    @field_validator("fleet")
    @classmethod
    def _fleet_fits_data(cls, value: FleetConfig, info: ValidationInfo) -> FleetConfig:
        """On-demand data has no phone's main label before its windows are made, so a fleet
        correlated with the data is possible only by subject under a by-subject partition."""
        data = info.data.get("data")
        corr = value.correlation
        if not isinstance(data, DataConfig) or corr is None:
            return value
        source = data.source
        on_demand = isinstance(source, SyntheticSource) and source.per_phone is not None
        by_subject = corr.by == "subject" and isinstance(data.partition, SubjectPartition)
        if on_demand and not by_subject:
            raise rule_error(
                "correlation.by",
                corr.by,
                "with data.source.per_phone a fleet follows the data only by: subject, "
                "with data.partition.kind: subject",
            )
        return value

    @field_validator("rounds")
    @classmethod
    def _rounds_can_run(cls, value: RoundsConfig, info: ValidationInfo) -> RoundsConfig:
        """The policy must be able to get reports and end (checked only if fleet validated)."""
        fleet = info.data.get("fleet")
        problem = rounds_problem(value, fleet) if isinstance(fleet, FleetConfig) else None
        if problem is not None:
            raise rule_error(*problem)
        return value

    @field_validator("modalities")
    @classmethod
    def _known_modalities(cls, value: ModalitiesConfig, info: ValidationInfo) -> ModalitiesConfig:
        """Missing rules must name the dataset's modalities (checked only if data validated)."""
        data = info.data.get("data")
        known = modality_names(data.source) if isinstance(data, DataConfig) else None
        if known is None:
            return value
        named = [(f"missing.{i}.modality", r.modality) for i, r in enumerate(value.missing)]
        named += [(f"test_missing.{name}", name) for name in value.test_missing]
        named += [
            (f"training_dropout.{i}.modality", r.modality)
            for i, r in enumerate(value.training_dropout)
        ]
        for at, name in named:
            if name not in known:
                raise rule_error(
                    at, name, f"not a modality of the dataset; allowed: {', '.join(known)}"
                )
        return value


def model_problem(model: ModelConfig, data: DataConfig) -> tuple[str, Any, str] | None:
    """(sub-path, value, why) when the model cannot be built for the data, else None.

    Checked before a run: a kernel longer than the shortest window, or encoders with more
    weights than memory holds, would otherwise fail (or swap) deep inside the phones.
    """
    source = data.source
    steps: list[int] = []
    channels: list[int] = []
    if isinstance(source, SyntheticSource):
        steps = [m.steps for m in source.modalities]
        channels = [m.channels for m in source.modalities]
    elif isinstance(source, UscHadSource):
        steps, channels = [source.window, source.window], [3, 3]
    if model.kind == "mlp" and steps:
        weights = sum(
            sum(a * b for a, b in itertools.pairwise([c * t, *model.mlp_hidden]))
            for c, t in zip(channels, steps, strict=True)
        )
        if weights > MAX_MODEL_WEIGHTS:
            return (
                "mlp_hidden",
                list(model.mlp_hidden),
                f"encoders of about {weights:,} weights; allowed: at most {MAX_MODEL_WEIGHTS:,} "
                "(fewer or narrower layers, or shorter windows)",
            )
        return None
    if model.kind != "conv1d":
        return None  # other kinds are checked where they are built (algorithms.models)
    if steps and model.kernel_size > min(steps):
        return (
            "kernel_size",
            model.kernel_size,
            f"longer than the shortest window ({min(steps)} steps); allowed: at most {min(steps)}",
        )
    widths = [max(channels, default=64), *model.conv_channels]
    weights = max(1, len(channels)) * sum(
        a * b * model.kernel_size for a, b in itertools.pairwise(widths)
    )
    if weights > MAX_MODEL_WEIGHTS:
        return (
            "conv_channels",
            list(model.conv_channels),
            f"encoders of about {weights:,} weights; allowed: at most {MAX_MODEL_WEIGHTS:,} "
            "(fewer or narrower layers, or a smaller kernel_size)",
        )
    return None


def rounds_problem(rounds: RoundsConfig, fleet: FleetConfig) -> tuple[str, Any, str] | None:
    """(sub-path, value, why) when the round policy would search or allocate without visible end.

    A deadline a hundred thousand times the retry interval, or on/off changes far shorter than
    the run, would keep the simulator busy for minutes before the first round closes.
    """
    availability = fleet.availability
    retries = rounds.deadline_s / rounds.idle_retry_s
    if retries > MAX_IDLE_RETRIES:
        return (
            "idle_retry_s",
            rounds.idle_retry_s,
            f"deadline_s / idle_retry_s = {retries:.3g} retries per empty round; allowed: "
            f"idle_retry_s >= {rounds.deadline_s / MAX_IDLE_RETRIES:g} "
            f"(deadline_s / {MAX_IDLE_RETRIES:,})",
        )
    if isinstance(availability, MarkovAvailability):
        horizon = rounds.rounds * rounds.deadline_s
        changes = horizon / min(availability.mean_on_s, availability.mean_off_s)
        if changes > MAX_AVAILABILITY_CHANGES:
            return (
                "deadline_s",
                rounds.deadline_s,
                f"rounds x deadline_s = {horizon:.3g} s would need about {changes:.3g} on/off "
                f"changes per phone (fleet.availability means of "
                f"{min(availability.mean_on_s, availability.mean_off_s):g} s); allowed: at most "
                f"{MAX_AVAILABILITY_CHANGES:,} (raise the means or lower rounds/deadline_s)",
            )
    return None


def modality_names(source: SyntheticSource | UscHadSource | NpzSource) -> tuple[str, ...] | None:
    """Modality names a source is known to have before loading (None: only known after)."""
    if isinstance(source, SyntheticSource):
        return tuple(m.name for m in source.modalities)
    if isinstance(source, UscHadSource):
        return ("acc", "gyro")
    return source.modalities
