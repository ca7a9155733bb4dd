"""``fedmobile_authors``: FedMobile as the authors' public USC-HAD code computes it.

Rebuilt from a reading of yiliucs/WWW25 (``USC-HAD/MMFL_main``, ``model_mhad``), not copied.
What that code does, and what this strategy does with it (docs/algorithm.md, "The authors'
protocol", lists every choice):

- Phone: per-phone Adam whose moments persist (``algorithm.optimizer: adam``), BatchNorm
  statistics local, and the loss ``0.5 CE + 0.5 (0.5 KL_T(model || head(gen(y))) +
  0.5 CE(head(gen(y~)), y~))`` with y~ random labels. The generator (noise 12 uniform in [0, 1)
  + one-hot label -> Linear -> BatchNorm1d -> ReLU -> Linear to the fused feature) is never
  stepped: a fixed teacher. Before the first aggregation each phone holds its own random
  generator; afterwards every phone holds the server's combination.
- Server, models: phone k is kept when its local accuracy plus the marginal gain of the prefix
  average of models 0..k beats last round's accuracy; kept models are averaged uniformly (all
  of them when three or fewer are kept). Only parameters are averaged; BatchNorm statistics stay
  on the phones (an update carries them so the server can score each phone's model, as the
  authors' server reads whole node models).
- Server, generators: k-means (K = 3) on the generators' outputs for 16 random labels, cluster
  means, Shapley values over all orderings with clipped marginals, generators combined by the
  normalised values.

The public code scores its selection and Shapley utility on the test sets; here they are scored
on the server's validation (proxy) set unless ``selection_split: test_leaky`` says otherwise.
Its arithmetic defects are fixed unless ``reproduce_defects`` is set.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedmobile_actors.algorithms.admission import admit
from fedmobile_actors.algorithms.aggregation import weighted_average
from fedmobile_actors.algorithms.clustering import kmeans_labels
from fedmobile_actors.algorithms.fedavg import FedAvg
from fedmobile_actors.algorithms.model import get_arrays, set_arrays
from fedmobile_actors.algorithms.models.base import MultimodalNet
from fedmobile_actors.algorithms.scoring import ModelScorer
from fedmobile_actors.algorithms.strategy import (
    AggregationResult,
    AlgorithmContext,
    Arrays,
    ClientUpdate,
    GlobalState,
)
from fedmobile_actors.algorithms.training import Batchable, LocalOptimizer
from fedmobile_actors.data.dataset import LocalData, MultimodalDataset
from fedmobile_actors.data.step_dropout import StepDropoutSampler
from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.scenario.schema import AlgorithmConfig
from fedmobile_actors.seeding import SERVER, int_seed

#: Prefix of the generator's arrays in the global state and the payload.
GEN_PREFIX = "gen."
#: ``GlobalState.info`` key of last round's accuracy (the selection rule's threshold).
LAST_ACCURACY = "last_accuracy"


class AuthorsGenerator(nn.Module):
    """(noise uniform in [0, 1), one-hot label) -> Linear -> BatchNorm1d -> ReLU -> Linear.

    Always run in training mode (batch statistics), as the authors' generator is during local
    training and clustering; no running statistics are kept, since nothing would read them.
    """

    def __init__(self, noise_dim: int, num_classes: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.noise_dim, self.num_classes = noise_dim, num_classes
        self.body = nn.Sequential(
            nn.Linear(noise_dim + num_classes, hidden),
            nn.BatchNorm1d(hidden, track_running_stats=False),
            nn.ReLU(),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, labels: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        return self.body[3](self._hidden(labels, rng))

    def pair(
        self, first: torch.Tensor, second: torch.Tensor, rng: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward(first, rng)`` then ``forward(second, rng)``, with the two batches stacked
        through the output layer only. Each batch keeps its own noise draws (in the same order)
        and its own BatchNorm statistics, so each row is what ``forward`` gives; one matrix
        product of 2B rows instead of two of B streams the (fused x fused) weight once, about
        a third less time for the authors' 6336-wide generator on one core (a row of a matrix
        product does not depend on the other rows: checked bit for bit in the tests)."""
        hidden = torch.cat([self._hidden(first, rng), self._hidden(second, rng)])
        out = self.body[3](hidden)
        return out[: len(first)], out[len(first) :]

    def _hidden(self, labels: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        noise = torch.rand((len(labels), self.noise_dim), generator=rng)
        onehot = F.one_hot(labels, self.num_classes).to(noise.dtype)
        hidden: torch.Tensor = self.body[:3](torch.cat([noise, onehot], dim=1))
        return hidden


class FedMobileAuthors(FedAvg):
    """The authors' FedMobile: fixed generator teacher, selection by accuracy gain, Shapley-
    weighted generator clusters."""

    name = "fedmobile_authors"
    stateful: ClassVar[bool] = True
    model_needs: ClassVar[frozenset[str]] = frozenset({"modality_encoders", "linear_head"})

    @classmethod
    def reads_test_set(cls, algorithm: AlgorithmConfig) -> bool:
        return algorithm.fedmobile_authors.selection_split == "test_leaky"

    def __init__(self, context: AlgorithmContext) -> None:
        super().__init__(context)
        self.config = context.algorithm.fedmobile_authors
        fused = sum(self.model.feature_dims.values())
        hidden = self.config.generator_hidden or fused
        self._gen_shape = (self.config.noise_dim, context.num_classes, hidden, fused)
        self.generator = self._new_generator(int_seed(context.seed, SERVER, 0, "generator"))
        if self.config.selection_split == "test_leaky":
            self.selection = context.leaky_test
        else:
            self.selection = context.proxy
        if self.selection is None or len(self.selection) == 0:
            raise ScenarioError(
                [
                    "algorithm.fedmobile_authors.selection_split: 'validation' needs a server "
                    "validation set; set data.proxy_fraction above 0"
                ]
            )
        # The server step's 30 or so whole-model scorings, side by side (same bits).
        self._scorer = ModelScorer(self.model, self._selection_accuracy)
        self._buffers: dict[str, dict[str, np.ndarray]] = {}

    def _new_generator(self, seed: int) -> AuthorsGenerator:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return AuthorsGenerator(*self._gen_shape)

    def _phone_generator_arrays(self, phone_id: int) -> Arrays:
        """A phone's own random generator, which it holds until the first aggregation."""
        gen = self._new_generator(int_seed(self.context.seed, phone_id, 0, "generator"))
        return get_arrays(gen)

    # ---- state and payload ----------------------------------------------------------------

    def initial_state(self) -> GlobalState:
        arrays = {**self.shared_arrays(), **get_arrays(self.generator, GEN_PREFIX)}
        return GlobalState(0, arrays, {LAST_ACCURACY: 1.0 / self.context.num_classes})

    def update_shapes(self, payload: Arrays) -> dict[str, tuple[str, tuple[int, ...]]]:
        """An update carries the model's parameters and the phone's BatchNorm statistics (the
        server scores each phone's own model, as the authors' server does); no generator: it
        never changes on the phone."""
        shapes = {
            k: (str(a.dtype), tuple(a.shape))
            for k, a in payload.items()
            if not k.startswith(GEN_PREFIX)
        }
        for k, a in self._initial_local.items():
            shapes[k] = (str(a.dtype), tuple(a.shape))
        return shapes

    # ---- phone ----------------------------------------------------------------------------

    def local_update(
        self,
        payload: Arrays,
        data: LocalData,
        phone_id: int,
        base_version: int,
        task_id: int,
        phone_state: Arrays | None = None,
    ) -> ClientUpdate:
        self.load_model(payload, phone_state)
        if base_version == 0:
            set_arrays(self.generator, self._phone_generator_arrays(phone_id))
        else:
            set_arrays(self.generator, payload, GEN_PREFIX)
        seed = self.context.seed
        rng = torch.Generator().manual_seed(int_seed(seed, phone_id, task_id, "train"))
        gen_rng = torch.Generator().manual_seed(int_seed(seed, phone_id, task_id, "generator"))
        optimizer = self.make_optimizer(phone_state)
        with self.keyed_dropout(phone_id, task_id):
            loss = self._train(data, rng, gen_rng, self.step_dropout(phone_id, task_id), optimizer)
        return ClientUpdate(
            phone_id=phone_id,
            base_version=base_version,
            num_samples=len(data),
            arrays={**self.shared_arrays(), **self.local_arrays()},
            metrics={"train_loss": loss},
            phone_state=self.phone_state_after(optimizer),
        )

    def _train(
        self,
        data: LocalData,
        rng: torch.Generator,
        gen_rng: torch.Generator,
        step_dropout: StepDropoutSampler | None,
        optimizer: LocalOptimizer,
    ) -> float:
        """One phone's local epochs with the authors' loss; the generator is a fixed teacher."""
        algo = self.context.algorithm
        temperature = self.config.temperature
        model, head = self.model, self.model.head
        batches = Batchable.of(data.dataset, data.present)
        model.train()
        self.generator.train()
        total, count = 0.0, 0
        for _epoch in range(algo.local_epochs):
            order = torch.randperm(len(batches), generator=rng)
            for start in range(0, len(batches), algo.batch_size):
                batch = batches.take(order[start : start + algo.batch_size]).dropped(step_dropout)
                if len(batch) < 2:
                    continue  # BatchNorm cannot train on one row (torch raises)
                logits = model.classify(model.encode(batch.inputs, batch.present))
                ce = F.cross_entropy(logits, batch.labels)
                sampled = torch.randint(0, self.context.num_classes, (len(batch),), generator=rng)
                with torch.no_grad():
                    teacher, fake = self.generator.pair(batch.labels, sampled, gen_rng)
                # As in the public code, the teacher's logits keep their gradient into the head.
                kl = F.kl_div(
                    F.log_softmax(logits / temperature, dim=1),
                    F.softmax(head(teacher) / temperature, dim=1),
                    reduction="batchmean",
                )
                gen_ce = F.cross_entropy(head(fake), sampled)
                loss = 0.5 * ce + 0.5 * (0.5 * kl + 0.5 * gen_ce)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(batch)
                count += len(batch)
        return total / max(count, 1)

    # ---- server ---------------------------------------------------------------------------

    def aggregate(
        self, state: GlobalState, updates: Sequence[ClientUpdate], staleness: Sequence[float]
    ) -> AggregationResult:
        # The same guard as every strategy, against what an update must hold here: the model's
        # parameters and the phone's BatchNorm statistics.
        expected = {
            **{k: a for k, a in state.arrays.items() if not k.startswith(GEN_PREFIX)},
            **self._initial_local,
        }
        admitted, _factors, rejected = admit(expected, updates, staleness)
        updates = admitted
        if not updates:
            same = GlobalState(state.version + 1, state.arrays, state.info)
            return AggregationResult(same, {"rejected": rejected})
        assert self.selection is not None
        last = float(state.info.get(LAST_ACCURACY, 1.0 / self.context.num_classes))
        models = [u.arrays for u in updates]
        kept = self._select(models, last)
        shared_keys = [k for k in models[0] if k not in self.local_keys]
        shared = weighted_average(
            [{k: m[k] for k in shared_keys} for m in (models[i] for i in kept)], [1.0] * len(kept)
        )
        generator, clusters, weights = self._combine_generators(state, updates, shared)
        accuracy = float(np.mean(self._scores([{**shared, **self._local_of(m)} for m in models])))
        arrays = {**shared, **get_arrays(generator, GEN_PREFIX)}
        info = {**state.info, LAST_ACCURACY: accuracy}
        metrics = {
            "rejected": rejected,
            "clusters": clusters,
            "shapley_weights": weights,
            "kept": len(kept),
            # The run's metrics row records this (phones the selection left out).
            "filtered": len(models) - len(kept),
            "model_weight_max": 1.0 / len(kept),  # kept models are averaged uniformly
            "selection_accuracy": accuracy,
        }
        return AggregationResult(GlobalState(state.version + 1, arrays, info), metrics)

    def _local_of(self, model: Mapping[str, np.ndarray]) -> Arrays:
        return {k: model[k] for k in self.local_keys}

    def _scores(self, candidates: Sequence[Mapping[str, np.ndarray]]) -> list[float]:
        """Accuracy of each whole model (parameters + BatchNorm statistics) on the selection
        set, averaged over its subjects (the authors average over nodes, one subject each)."""
        return self._scorer.scores(candidates)

    def _selection_accuracy(self, model: MultimodalNet) -> float:
        return subject_mean_accuracy(model, self.selection)

    def _select(self, models: Sequence[Arrays], last: float) -> list[int]:
        """Indices of the models kept: local accuracy + prefix gain > last round's accuracy."""
        local, gains = self._selection_scores(models, last)
        return kept_models(local, gains, last)

    def _selection_scores(
        self, models: Sequence[Arrays], last: float
    ) -> tuple[list[float], list[float]]:
        """Each model's local accuracy on the selection set, and the gain over ``last`` of the
        prefix average of models 0..k (run with model 0's BatchNorm statistics)."""
        n = len(models)
        local, acc = [], 0.0
        for score in self._scores(models):
            if self.config.reproduce_defects:
                # The public code never resets its accumulator between models.
                acc = (acc + score * n) / n
                local.append(acc)
            else:
                local.append(score)
        prefixes: list[Arrays] = []
        prefix: Arrays | None = None
        for i in range(n):
            shared_i = {k: a for k, a in models[i].items() if k not in self.local_keys}
            if self.config.reproduce_defects:
                # The public code sums into the first model in place: each prefix average
                # starts from the previous one instead of from model 0.
                if prefix is None:
                    prefix = dict(shared_i)
                else:
                    added = [
                        {k: a for k, a in models[j].items() if k not in self.local_keys}
                        for j in range(1, i + 1)
                    ]
                    prefix = {k: (prefix[k] + sum(m[k] for m in added)) / (i + 1) for k in prefix}
            else:
                prefix = weighted_average(
                    [
                        {k: a for k, a in models[j].items() if k not in self.local_keys}
                        for j in range(i + 1)
                    ],
                    [1.0] * (i + 1),
                )
            # The prefix model runs with the first model's BatchNorm statistics, as there.
            prefixes.append({**prefix, **self._local_of(models[0])})
        gains = [score - last for score in self._scores(prefixes)]
        return local, gains

    def _combine_generators(
        self, state: GlobalState, updates: Sequence[ClientUpdate], shared: Arrays
    ) -> tuple[AuthorsGenerator, int, list[float]]:
        """k-means over the phones' generators, cluster means, clipped-marginal Shapley values
        over all orderings of clusters, and their normalised combination."""
        version = state.version + 1
        seed = self.context.seed
        global_gen = {
            k[len(GEN_PREFIX) :]: a for k, a in state.arrays.items() if k.startswith(GEN_PREFIX)
        }
        gens = [
            self._phone_generator_arrays(u.phone_id) if u.base_version == 0 else global_gen
            for u in updates
        ]
        probe_rng = np.random.Generator(np.random.PCG64(int_seed(seed, SERVER, version, "probe")))
        labels = torch.from_numpy(
            probe_rng.integers(0, self.context.num_classes, self.config.probe_labels)
        )
        gen_rng = torch.Generator().manual_seed(int_seed(seed, SERVER, version, "gen-noise"))
        signatures = []
        with torch.no_grad():
            for g in gens:
                set_arrays(self.generator, g)
                signatures.append(
                    self.generator(labels, gen_rng).reshape(-1).numpy().astype(np.float64)
                )
        assignment = kmeans_labels(
            np.stack(signatures), self.config.clusters, int_seed(seed, SERVER, version, "kmeans")
        )
        means = [
            weighted_average(
                [gens[i] for i in np.flatnonzero(assignment == c)],
                [1.0] * int((assignment == c).sum()),
                out=self._scratch(f"cluster {c}", gens[0]),
            )
            for c in range(int(assignment.max()) + 1)
        ]
        set_arrays(self.model, {**shared, **self._initial_local})
        values = self._clipped_shapley(means, len(updates), version)
        total = sum(values)
        weights = [v / total for v in values] if total > 0 else [1.0 / len(values)] * len(values)
        combined = (
            weighted_average(means, weights, out=self._scratch("combined", means[0]))
            if len(means) > 1
            else means[0]
        )
        set_arrays(self.generator, combined)
        return self.generator, len(means), weights

    def _clipped_shapley(self, means: Sequence[Arrays], models: int, version: int) -> list[float]:
        """The public code's Shapley: every ordering of the clusters; in each, a cluster gets
        max(0, v(coalition so far + it) - values already assigned in that ordering); averaged
        over orderings. v(S) is the accuracy of the global head on the generated features of
        the uniform mean of S's generators, for the selection set's labels."""
        assert self.selection is not None
        labels = torch.from_numpy(self.selection.labels)
        seed = self.context.seed
        cache: dict[tuple[int, ...], float] = {}
        orders = list(itertools.permutations(range(len(means))))
        totals = [0.0] * len(means)
        for order in orders:
            assigned: dict[int, float] = {}
            for member in order:
                coalition = tuple(sorted([*assigned, member]))
                if coalition in cache:
                    value = cache[coalition]
                else:
                    gen_rng = torch.Generator().manual_seed(
                        int_seed(seed, SERVER, version, f"shapley/{coalition}")
                    )
                    accuracy = self._generated_accuracy(
                        [means[c] for c in coalition], labels, gen_rng
                    )
                    cache[coalition] = accuracy
                    # The public code sums accuracies over its node models on first use and
                    # caches their mean; its node heads are all the global head, so the sum is
                    # the accuracy times the number of models.
                    value = accuracy * models if self.config.reproduce_defects else accuracy
                assigned[member] = max(0.0, value - sum(assigned.values()))
            for member, v in assigned.items():
                totals[member] += v
        return [t / len(orders) for t in totals]

    def _scratch(self, key: str, like: Arrays) -> dict[str, np.ndarray]:
        """Output arrays shaped like ``like``, kept for the next round under ``key``.

        The server averages the generator (6336 x 6336 for the authors' USC-HAD model) about a
        dozen times a round; writing each result into fresh memory cost more than the sums
        (the kernel zeroes every new page: a fifth of the server's time in a profile).
        Each key's arrays are overwritten the next time it is asked for, so a caller keeps a
        result only until then: the cluster means and the combined generator live within one
        ``aggregate``, a coalition's mean until the next coalition.
        """
        buffers = self._buffers.get(key)
        if buffers is None or [(k, a.shape, a.dtype) for k, a in buffers.items()] != [
            (k, a.shape, a.dtype) for k, a in like.items()
        ]:
            buffers = {k: np.empty(a.shape, dtype=a.dtype) for k, a in like.items()}
            self._buffers[key] = buffers
        return buffers

    @torch.no_grad()
    def _generated_accuracy(
        self, members: Sequence[Arrays], labels: torch.Tensor, rng: torch.Generator
    ) -> float:
        mean = weighted_average(
            list(members), [1.0] * len(members), out=self._scratch("coalition", members[0])
        )
        set_arrays(self.generator, mean)
        self.generator.train()
        correct = 0
        for start in range(0, len(labels), 512):
            y = labels[start : start + 512]
            logits = self.model.head(self.generator(y, rng))
            correct += int((logits.argmax(dim=1) == y).sum())
        return correct / max(len(labels), 1)


def kept_models(local: Sequence[float], gains: Sequence[float], last: float) -> list[int]:
    """The public code's rule: model k is kept when its local accuracy plus its prefix gain
    beats last round's accuracy; with three or fewer kept, all are."""
    kept = [i for i in range(len(local)) if local[i] + gains[i] > last]
    return kept if len(kept) > 3 else list(range(len(local)))


@torch.no_grad()
def subject_mean_accuracy(model: MultimodalNet, dataset: MultimodalDataset | None) -> float:
    """Accuracy per subject of ``dataset`` (every modality present), averaged over subjects."""
    assert dataset is not None
    model.eval()
    correct = np.zeros(len(dataset), dtype=bool)
    full = {m: np.ones(len(dataset), dtype=bool) for m in dataset.modality_names}
    batches = Batchable.of(dataset, full)
    for start in range(0, len(batches), 512):
        index = torch.arange(start, min(start + 512, len(batches)))
        batch = batches.take(index)
        logits = model.classify(model.encode(batch.inputs, batch.present))
        correct[start : start + len(index)] = (logits.argmax(dim=1) == batch.labels).numpy()
    subjects = np.unique(dataset.subjects)
    return float(np.mean([correct[dataset.subjects == s].mean() for s in subjects]))
