"""FedMobile (Liu, Wang, Yuan, WWW 2025) as DESIGN.md fixes it; docs/algorithm.md says why.

Phone: fill missing feature slices with the global generator's class prototypes mixed by the
model's first-pass class probabilities (the test-time fill; never the true label, which would leak
into the head), train the model, score the received and the trained model on the shard (for alpha),
then train the generator by distillation from the trained encoders. The update carries model and
generator.

Server: model = alpha-weighted average (contribution-aware, optionally filtered); generator =
cluster the reports' generators by their output on a fixed probe, average within clusters, weigh
each cluster representative by its Shapley value under the utility "accuracy of the new global
classifier when missing slices are filled by the coalition's averaged generator".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import ClassVar

import numpy as np
import torch
from torch.nn.utils import vector_to_parameters

from fedmobile_actors.algorithms.admission import admit
from fedmobile_actors.algorithms.aggregation import weighted_average
from fedmobile_actors.algorithms.clustering import (
    cluster_representatives,
    generator_signatures,
    kmeans_labels,
)
from fedmobile_actors.algorithms.contribution import (
    ACC_AFTER,
    ACC_BEFORE,
    LOSS_AFTER,
    LOSS_BEFORE,
    LOSS_REDUCTION,
    contribution_scores,
    contribution_weights,
    filter_keep,
    reference_accuracy,
    relative_loss_reduction,
)
from fedmobile_actors.algorithms.fedavg import FedAvg
from fedmobile_actors.algorithms.generator import (
    GEN_PREFIX,
    FeatureGenerator,
    build_generator,
    class_prototypes,
    feature_dims,
    probability_fill,
    probe_batch,
    train_generator,
    warn_unlearnable,
)
from fedmobile_actors.algorithms.model import MultimodalNet, get_arrays, set_arrays
from fedmobile_actors.algorithms.shapley import shapley_values, shapley_weights
from fedmobile_actors.algorithms.strategy import (
    AggregationResult,
    AlgorithmContext,
    Arrays,
    ClientUpdate,
    GlobalState,
)
from fedmobile_actors.algorithms.training import Fill, evaluate_model, train_local
from fedmobile_actors.data.dataset import LocalData, MultimodalDataset
from fedmobile_actors.seeding import SERVER, int_seed, rng


def _finite(x: float) -> float:
    return float(x) if np.isfinite(x) else 0.0


def flatten_generators(
    generator: torch.nn.Module, representatives: Sequence[Mapping[str, np.ndarray]]
) -> np.ndarray:
    """Each representative's parameters as one float64 row, in ``generator``'s order: (K, P)."""
    keys = list(generator.state_dict())
    return np.stack(
        [
            np.concatenate([np.asarray(r[k], np.float64).reshape(-1) for k in keys])
            for r in representatives
        ]
    )


def load_coalition(
    generator: torch.nn.Module, flat: np.ndarray, masses: np.ndarray, members: tuple[int, ...]
) -> None:
    """Load the mass-weighted average of ``members``' rows of ``flat`` into ``generator``."""
    w = masses[list(members)]
    w = w if w.sum() > 0 else np.ones(len(members))
    vec = (w / w.sum()) @ flat[list(members)]  # float64, fixed order
    vector_to_parameters(torch.from_numpy(vec.astype(np.float32)), generator.parameters())


class CoalitionUtility:
    """v(S): accuracy of the global classifier with missing slices filled by S's generator.

    With a proxy set, each learnable modality is dropped in turn from every proxy sample and filled
    the way ``evaluate`` fills at test time (class-probability-weighted prototypes); v(S) is the
    mean accuracy over these drop-one patterns. Because the head is linear, the logits of a filled
    sample are the cached logits with a zero slice plus ``fill_m @ W_m^T``: the
    encoders run once per round, and a coalition costs one probe pass of its averaged generator.
    Without a proxy set (the public code's choice) v(S) is the head's accuracy on features that
    S's generator makes for the probe labels. The empty coalition fills zeros.
    """

    def __init__(
        self,
        model: MultimodalNet,
        generator: FeatureGenerator,
        representatives: Sequence[Mapping[str, np.ndarray]],
        masses: np.ndarray,
        probe: tuple[torch.Tensor, torch.Tensor],
        proxy: MultimodalDataset | None,
        learnable: Collection[str],
    ) -> None:
        self.model, self.generator, self.probe = model, generator, probe
        self.learnable = tuple(learnable)
        self.flat = flatten_generators(generator, representatives)
        self.masses = np.asarray(masses, dtype=np.float64)
        self.cases = self._proxy_cases(proxy) if proxy is not None and len(proxy) else None
        self.proxy_labels = torch.from_numpy(proxy.labels) if proxy is not None else None

    @torch.no_grad()
    def _proxy_cases(
        self, proxy: MultimodalDataset
    ) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """Per droppable modality m: (m, logits with slice m zero (N, K), W_m (K, F_m))."""
        self.model.eval()
        inputs = {m: torch.from_numpy(a) for m, a in proxy.modalities.items()}
        # Unlearnable modalities' encoders were never trained: treat them as absent here too.
        present = {m: torch.full((len(proxy),), m in self.learnable) for m in inputs}
        feats = self.model.encode(inputs, present)
        offsets = np.cumsum([0, *feature_dims(self.model).values()])
        cases = []
        for i, m in enumerate(self.model.modalities):
            if m not in self.learnable:
                continue
            logits = self.model.classify({**feats, m: torch.zeros_like(feats[m])})
            w_m = self.model.head.weight[:, offsets[i] : offsets[i + 1]]
            cases.append((m, logits, w_m))
        return cases

    def _load(self, members: tuple[int, ...]) -> None:
        load_coalition(self.generator, self.flat, self.masses, members)

    @torch.no_grad()
    def __call__(self, members: tuple[int, ...]) -> float:
        z, y = self.probe
        if members:
            self._load(members)
            self.generator.eval()
        if self.cases is not None and self.proxy_labels is not None:
            protos = class_prototypes(self.generator, z, y) if members else None
            accs = []
            for m, logits, w_m in self.cases:
                filled = logits
                if protos is not None:  # the two passes of probability_fill, on cached logits
                    first = logits + protos[m].mean(dim=0, keepdim=True) @ w_m.T  # (N, K)
                    probs = torch.softmax(first, dim=1)
                    filled = logits + (probs @ protos[m]) @ w_m.T
                accs.append(float((filled.argmax(dim=1) == self.proxy_labels).double().mean()))
            return float(np.mean(accs)) if accs else 0.0
        dims = feature_dims(self.model)
        if members:
            slices = self.generator.split(self.generator(z, y))
            feats = {
                m: s if m in self.learnable else torch.zeros_like(s) for m, s in slices.items()
            }
        else:
            feats = {m: torch.zeros((len(y), d)) for m, d in dims.items()}
        return float((self.model.classify(feats).argmax(dim=1) == y).double().mean())


class FedMobile(FedAvg):
    """Generator-filled local training; contribution-aware model and Shapley-weighted generator."""

    name = "fedmobile"
    #: The fill replaces a missing modality's feature slice, and the Shapley utility reads each
    #: modality's slice of the head's weight.
    model_needs: ClassVar[frozenset[str]] = frozenset({"modality_encoders", "linear_head"})

    def __init__(self, context: AlgorithmContext) -> None:
        super().__init__(context)
        self.config = context.algorithm.fedmobile
        self.generator = build_generator(
            self.model, self.config, int_seed(context.seed, SERVER, 0, "generator-init")
        )
        warn_unlearnable(self.model.modalities, context.learnable)
        self.learnable = tuple(m for m in self.model.modalities if m in context.learnable)
        self.probe = probe_batch(
            context.seed, context.num_classes, self.config.probe_size, self.config.noise_dim
        )

    # ---- state ------------------------------------------------------------------------------

    def initial_state(self) -> GlobalState:
        return GlobalState(version=0, arrays=self._arrays())

    def _arrays(self) -> Arrays:
        return {**self.shared_arrays(), **get_arrays(self.generator, GEN_PREFIX)}

    def _load(self, arrays: Arrays, phone_state: Arrays | None = None) -> None:
        self.load_model(arrays, phone_state)
        set_arrays(self.generator, arrays, GEN_PREFIX)

    def eval_fill(self, state: GlobalState) -> Fill:
        set_arrays(self.generator, state.arrays, GEN_PREFIX)
        return probability_fill(
            self.model, class_prototypes(self.generator, *self.probe), self.learnable
        )

    # ---- phone ------------------------------------------------------------------------------

    def local_update(
        self,
        payload: Arrays,
        data: LocalData,
        phone_id: int,
        base_version: int,
        task_id: int,
        phone_state: Arrays | None = None,
    ) -> ClientUpdate:
        self._load(payload, phone_state)
        algo = self.context.algorithm
        rng = torch.Generator().manual_seed(int_seed(self.context.seed, phone_id, task_id, "train"))
        # The generator is trained last, so one set of prototypes serves training and both
        # evaluations: the head learns on exactly the fill it is tested with (docs/algorithm.md).
        fill = probability_fill(
            self.model, class_prototypes(self.generator, *self.probe), self.learnable
        )
        before = evaluate_model(self.model, data.dataset, data.present, fill)
        optimizer = self.make_optimizer(phone_state)
        with self.keyed_dropout(phone_id, task_id):
            train_loss = train_local(
                self.model,
                data,
                algo,
                rng,
                fill=fill,
                optimizer=optimizer,
                step_dropout=self.step_dropout(phone_id, task_id),
                distill=self.missing_distillation(data),
            )
            after = evaluate_model(self.model, data.dataset, data.present, fill)
            gen_losses = train_generator(
                self.generator, self.model, data, self.config, self.learnable, rng, algo.batch_size
            )
        metrics = {
            "train_loss": _finite(train_loss),
            LOSS_BEFORE: _finite(before.loss),
            LOSS_AFTER: _finite(after.loss),
            ACC_BEFORE: _finite(before.accuracy),
            ACC_AFTER: _finite(after.accuracy),
            LOSS_REDUCTION: relative_loss_reduction(before.loss, after.loss),
            "generator_loss_first": gen_losses[0] if gen_losses else 0.0,
            "generator_loss_last": gen_losses[-1] if gen_losses else 0.0,
        }
        return ClientUpdate(
            phone_id,
            base_version,
            len(data),
            self._arrays(),
            metrics,
            phone_state=self.phone_state_after(optimizer),
        )

    # ---- server -----------------------------------------------------------------------------

    def aggregate(
        self, state: GlobalState, updates: Sequence[ClientUpdate], staleness: Sequence[float]
    ) -> AggregationResult:
        admitted, factors, rejected = admit(state.arrays, updates, staleness)
        metrics: dict[str, object] = {
            "reports": len(admitted),
            "rejected": rejected,
            "filtered": 0,
            "clusters": 0,
            "cluster_sizes": [],
            "shapley_values": [],
            "shapley_weights": [],
        }
        if not admitted:
            return AggregationResult(
                GlobalState(state.version + 1, state.arrays, state.info), metrics
            )
        model_keys = [k for k in state.arrays if not k.startswith(GEN_PREFIX)]
        alpha, filtered = self.model_weights(admitted, factors, state.info)
        metrics["filtered"] = filtered
        total = float(alpha.sum())
        metrics["model_weight_max"] = float(alpha.max()) / total if total > 0 else math.nan
        if total > 0:
            model = weighted_average(
                [{k: u.arrays[k] for k in model_keys} for u in admitted], alpha.tolist()
            )
        else:
            model = {k: state.arrays[k] for k in model_keys}
        generator, gen_metrics = self.aggregate_generators(state.version, admitted, factors, model)
        generator = self.smooth_generator(state.arrays, generator)
        metrics.update(gen_metrics)
        info = {
            **state.info,
            "reference_accuracy": reference_accuracy(
                [u.metrics for u in admitted], [u.num_samples for u in admitted]
            ),
        }
        arrays = {**model, **{GEN_PREFIX + k: a for k, a in generator.items()}}
        new_state = GlobalState(state.version + 1, arrays, info)
        metrics["fill_error"] = self.fill_error(new_state)
        return AggregationResult(new_state, metrics)

    def smooth_generator(
        self, previous: Mapping[str, np.ndarray], generator: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """``generator_ema`` of the global generator: one round's cluster weights can swing the
        average between very different generators; the EMA bounds how far one round moves it."""
        ema = self.config.generator_ema
        if ema <= 0:
            return generator
        return {
            k: (ema * np.asarray(previous[GEN_PREFIX + k], np.float64) + (1 - ema) * a).astype(
                np.float32
            )
            for k, a in generator.items()
        }

    @torch.no_grad()
    def fill_error(self, state: GlobalState) -> float:
        """How close the fill comes to the real feature on the proxy set: each learnable modality
        is dropped from every proxy row in turn and filled the way ``evaluate`` fills; returns
        mean ||fill - real||^2 / mean ||real - mean(real)||^2 over modalities (1: no better than
        the mean feature; NaN without a proxy set)."""
        proxy = self.context.proxy
        if proxy is None or len(proxy) == 0 or not self.learnable:
            return float("nan")
        self._load(state.arrays)
        self.model.eval()
        fill = self.eval_fill(state)
        inputs = {m: torch.from_numpy(a) for m, a in proxy.modalities.items()}
        everything = {m: torch.ones(len(proxy), dtype=torch.bool) for m in inputs}
        real = self.model.encode(inputs, everything)
        errors = []
        for m in self.learnable:
            present = {**everything, m: torch.zeros(len(proxy), dtype=torch.bool)}
            filled = fill({**real, m: torch.zeros_like(real[m])}, present, None)[m]
            spread = float(((real[m] - real[m].mean(dim=0)) ** 2).sum(dim=1).mean())
            error = float(((filled - real[m]) ** 2).sum(dim=1).mean())
            errors.append(error / spread if spread > 0 else float("nan"))
        return float(np.mean(errors))

    def alpha(self, updates: Sequence[ClientUpdate], staleness: np.ndarray) -> np.ndarray:
        """Unnormalised contribution-aware model weights, before the filter.

        The ``fedmobile_no_alpha`` ablation overrides this with plain sample counts.
        """
        n = [u.num_samples for u in updates]
        scores = contribution_scores([u.metrics for u in updates], self.config.contribution_balance)
        return contribution_weights(n, staleness, scores)

    def model_weights(
        self, updates: Sequence[ClientUpdate], staleness: np.ndarray, info: Mapping[str, float]
    ) -> tuple[np.ndarray, int]:
        """alpha, with the filter rule applied when configured; and how many it filtered."""
        alpha = self.alpha(updates, staleness)
        if not self.config.filter:
            return alpha, 0
        keep = filter_keep([u.metrics for u in updates], info.get("reference_accuracy", 0.0))
        return alpha * keep, int((~keep).sum())

    def aggregate_generators(
        self,
        version: int,
        updates: Sequence[ClientUpdate],
        staleness: np.ndarray,
        model: Mapping[str, np.ndarray],
    ) -> tuple[dict[str, np.ndarray], dict[str, object]]:
        """Cluster the reports' generators, weigh the representatives, average them."""
        gens = [
            {k[len(GEN_PREFIX) :]: a for k, a in u.arrays.items() if k.startswith(GEN_PREFIX)}
            for u in updates
        ]
        member_w = np.array([u.num_samples for u in updates], dtype=np.float64) * staleness
        if member_w.sum() <= 0:
            member_w = np.ones(len(updates))
        signatures = self.signatures(gens, model)
        seed = int_seed(self.context.seed, SERVER, version, "kmeans")
        labels = kmeans_labels(signatures, self.config.clusters, seed)
        reps, masses = cluster_representatives(gens, labels, member_w)
        values, weights = self.cluster_weights(version, reps, masses, model)
        mix = self.config.shapley_mass_mix
        if mix > 0 and masses.sum() > 0:
            weights = (1 - mix) * weights + mix * masses / masses.sum()
        metrics: dict[str, object] = {
            "clusters": len(reps),
            "cluster_sizes": np.bincount(labels).tolist(),
            "shapley_values": [float(v) for v in values],
            "shapley_weights": [float(w) for w in weights],
        }
        return weighted_average(reps, weights.tolist()), metrics

    def signatures(
        self, gens: Sequence[Mapping[str, np.ndarray]], model: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        """What k-means clusters: each generator's output on the server's fixed probe."""
        return generator_signatures(self.generator, gens, *self.probe)

    def utility(
        self, reps: Sequence[Mapping[str, np.ndarray]], masses: np.ndarray
    ) -> Callable[[tuple[int, ...]], float]:
        """v(S) for the Shapley values of the cluster representatives (model already loaded)."""
        return CoalitionUtility(
            self.model,
            self.generator,
            reps,
            masses,
            self.probe,
            self.context.proxy,
            self.learnable,
        )

    def cluster_weights(
        self,
        version: int,
        reps: Sequence[Mapping[str, np.ndarray]],
        masses: np.ndarray,
        model: Mapping[str, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """(Shapley values, weights) of the cluster representatives under the new global model."""
        self.load_model(model)
        utility = self.utility(reps, masses)
        values = shapley_values(
            len(reps),
            utility,
            self.config.shapley_exact_max,
            self.config.shapley_permutations,
            rng(self.context.seed, SERVER, version, "shapley"),
        )
        return values, shapley_weights(values)
