"""FedMobile with a cross-modal generator: G(z, f_available) -> f_missing (issue 12, item 3).

Why: FedMobile's fill is a class prototype mixed by the head's own first-pass probabilities, a
function of what the head already sees, so it cannot tell the head anything new. Here the
generator reads the available modalities' features and predicts the missing one's, and it is
*trained* on the rows that have both, so what it learned on complete rows (how acc features move
with gyro features) reaches the rows and the test samples that lack one:

    model:     CE(head([f_avail, fill]), y)      every row; fill = G(0, f_avail) on absent slices
    generator: feature_match_weight * MSE(G(z, f_avail)_m, f_m)    rows with m and another one
             + kd_weight * T^2 * KL(head(real) || head([f_avail, G(z, f_avail)_m]))  same rows
             + ce_weight * CE(head([f_avail, G(z, f_avail)]), y)          rows that lack one

The generator's two terms are cross-modal distillation: on a complete row, the modality m is
hidden from G, and G must give back both m's feature (feature matching, target detached so the
encoder of m is not pulled toward what is predictable) and the complete row's output (the
teacher's probabilities, detached). The true label never enters the head's input: the fill is a
function of the available features and noise only, in training and at test alike.

The model and the generator take turns on every batch: one SGD step of the model on the batch
filled by the current generator (the loss reaches the available encoders through G, but G's
weights are not in that optimiser), then one Adam step (``generator_lr``) of the generator on its
own loss with the features detached. Trained by the model's SGD instead, the generator became an
unconstrained extra layer and a USC-HAD run diverged (docs/algorithm.md). The noise z is drawn
for the generator's own loss and is zero (its mean) in every fill, in training as at test.

Server: FedMobile's rules are kept. The model is the contribution-weighted average; the
generators are clustered by their output on the proxy set's features under the new global model
(each learnable modality hidden in turn), averaged within clusters, and the representatives are
weighed by Shapley value under v(S) = proxy accuracy when each modality in turn is dropped and
filled by S's averaged generator (empty coalition: zero fill). Without a proxy set there is
nothing to score with, so clusters weigh their mass.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedmobile_actors.algorithms.contribution import (
    ACC_AFTER,
    ACC_BEFORE,
    LOSS_AFTER,
    LOSS_BEFORE,
    LOSS_REDUCTION,
    relative_loss_reduction,
)
from fedmobile_actors.algorithms.fedmobile import (
    FedMobile,
    _finite,
    flatten_generators,
    load_coalition,
)
from fedmobile_actors.algorithms.generator import GEN_PREFIX, feature_dims
from fedmobile_actors.algorithms.model import MultimodalNet, get_arrays, set_arrays
from fedmobile_actors.algorithms.strategy import AlgorithmContext, Arrays, ClientUpdate, GlobalState
from fedmobile_actors.algorithms.training import (
    Batchable,
    Features,
    Fill,
    LocalAdam,
    LocalSGD,
    evaluate_model,
    with_modality_hidden,
)
from fedmobile_actors.data.dataset import LocalData, MultimodalDataset
from fedmobile_actors.seeding import SERVER, int_seed

Presence = Mapping[str, torch.Tensor]


class CrossModalGenerator(nn.Module):
    """MLP over [z, every modality's feature (zero where absent), presence bits] -> every slice.

    One network serves every missing modality: the presence bits say which slices are inputs.
    No batch norm: the state is parameters only, so averaging generators is averaging weights.
    """

    def __init__(self, noise_dim: int, hidden: int, dims: Mapping[str, int]) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.feature_dims = dict(dims)
        total = sum(self.feature_dims.values())
        self.net = nn.Sequential(
            nn.Linear(noise_dim + total + len(self.feature_dims), hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, total),
        )

    def forward(self, z: torch.Tensor, feats: Features, present: Presence) -> Features:
        cols: list[torch.Tensor] = [z]
        bits = []
        for m in self.feature_dims:
            on = present[m].to(z.dtype)[:, None]  # (B, 1)
            cols.append(feats[m] * on)
            bits.append(on)
        out = self.net(torch.cat(cols + bits, dim=1))  # (B, F)
        parts = torch.split(out, list(self.feature_dims.values()), dim=1)
        return dict(zip(self.feature_dims, parts, strict=True))


def cross_modal_fill(
    generator: CrossModalGenerator, learnable: Collection[str], z: torch.Tensor | None = None
) -> Fill:
    """Absent slices of learnable modalities <- G(z, available features); z = 0 when None."""

    def fill(feats: Features, present: Presence, labels: torch.Tensor | None) -> Features:
        absent = [m for m in feats if m in learnable and not bool(present[m].all())]
        if not absent:
            return feats
        rows = len(next(iter(feats.values())))
        noise = z if z is not None else torch.zeros((rows, generator.noise_dim))
        predicted = generator(noise, feats, present)
        out = dict(feats)
        for m in absent:
            out[m] = torch.where(present[m][:, None], feats[m], predicted[m])
        return out

    return fill


def cross_modal_distillation(
    model: MultimodalNet,
    generator: CrossModalGenerator,
    feats: Features,
    present: Presence,
    z: torch.Tensor,
    learnable: Collection[str],
    temperature: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(feature-matching MSE, T^2 KL to the complete row's output), summed over the learnable
    modalities hidden in turn, on the rows that have that modality and at least one other."""
    match = z.new_zeros(())
    kd = z.new_zeros(())
    for m in learnable:
        complete = with_modality_hidden(feats, present, m)
        if complete is None:
            continue
        rows, sub, hidden = complete
        predicted = generator(z[rows], sub, hidden)[m]
        match = match + F.mse_loss(predicted, sub[m].detach())
        teacher = F.log_softmax(model.classify(sub).detach() / temperature, dim=1)
        student = F.log_softmax(model.classify({**sub, m: predicted}) / temperature, dim=1)
        kd = kd + F.kl_div(student, teacher, log_target=True, reduction="batchmean")
    return match, kd * temperature * temperature


class FedMobileXModal(FedMobile):
    """FedMobile whose generator fills a missing modality from the available ones."""

    name = "fedmobile_xmodal"

    def __init__(self, context: AlgorithmContext) -> None:
        super().__init__(context)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int_seed(context.seed, SERVER, 0, "xmodal-generator-init"))
            self.cross = CrossModalGenerator(
                self.config.noise_dim, self.config.generator_hidden, feature_dims(self.model)
            )

    # ---- state ------------------------------------------------------------------------------

    def _arrays(self) -> Arrays:
        return {**self.shared_arrays(), **get_arrays(self.cross, GEN_PREFIX)}

    def _load(self, arrays: Arrays, phone_state: Arrays | None = None) -> None:
        self.load_model(arrays, phone_state)
        set_arrays(self.cross, arrays, GEN_PREFIX)

    def eval_fill(self, state: GlobalState) -> Fill:
        set_arrays(self.cross, state.arrays, GEN_PREFIX)
        self.cross.eval()
        return cross_modal_fill(self.cross, self.learnable)

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
        rng = torch.Generator().manual_seed(int_seed(self.context.seed, phone_id, task_id, "train"))
        test_fill = cross_modal_fill(self.cross, self.learnable)
        before = evaluate_model(self.model, data.dataset, data.present, test_fill)
        losses = self.train(data, rng)
        after = evaluate_model(self.model, data.dataset, data.present, test_fill)
        metrics = {
            "train_loss": _finite(losses[0]),
            "feature_match": _finite(losses[1]),
            "distillation": _finite(losses[2]),
            LOSS_BEFORE: _finite(before.loss),
            LOSS_AFTER: _finite(after.loss),
            ACC_BEFORE: _finite(before.accuracy),
            ACC_AFTER: _finite(after.accuracy),
            LOSS_REDUCTION: relative_loss_reduction(before.loss, after.loss),
        }
        # Local arrays (a BatchNorm model's statistics) stay on the phone as its state.
        state = self.local_arrays() if self.local_keys else None
        return ClientUpdate(
            phone_id, base_version, len(data), self._arrays(), metrics, phone_state=state
        )

    def train(self, data: LocalData, rng: torch.Generator) -> tuple[float, float, float]:
        """Per batch: one SGD step of the model on the filled batch (through G into the
        encoders; G's weights are not stepped), then one Adam step of the generator on its own
        loss (detached features). Returns the mean (model CE, feature match, distillation).

        Why two optimisers: trained by the model's SGD through the classification loss (lr 0.05,
        momentum 0.9), the generator became an unconstrained extra layer and the run diverged on
        USC-HAD (docs/algorithm.md); trained apart, it learns to stand in for the missing
        modality, and the model learns to use it.
        """
        algo, config = self.context.algorithm, self.config
        batches = Batchable.of(data.dataset, data.present)
        self.model.train()
        self.cross.train()
        optim = LocalSGD(list(self.model.parameters()), lr=algo.lr, momentum=algo.momentum)
        gen_optim = LocalAdam(list(self.cross.parameters()), lr=config.generator_lr)
        fill = cross_modal_fill(self.cross, self.learnable)
        distill = self.missing_distillation(data)
        sums, count = np.zeros(3), 0
        for _epoch in range(algo.local_epochs):
            order = torch.randperm(len(batches), generator=rng)
            for start in range(0, len(batches), algo.batch_size):
                batch = batches.take(order[start : start + algo.batch_size])
                feats = self.model.encode(batch.inputs, batch.present)
                z = torch.randn((len(batch), config.noise_dim), generator=rng)
                # The model's loss reaches the available encoders through G (G's weights are not
                # in this optimiser): the encoders learn features G can fill from.
                filled = fill(feats, batch.present, None)
                ce = F.cross_entropy(self.model.classify(filled), batch.labels)
                if distill is not None:
                    # The complete rows teach the gyro-only path, filled by G as at test.
                    ce = ce + distill.loss(self.model, filled, batch.present, fill)
                optim.zero_grad(set_to_none=True)
                ce.backward()
                optim.step()
                detached = {m: f.detach() for m, f in feats.items()}
                match, kd = cross_modal_distillation(
                    self.model,
                    self.cross,
                    detached,
                    batch.present,
                    z,
                    self.learnable,
                    config.temperature,
                )
                ce_gen = self.fill_cross_entropy(detached, batch.present, batch.labels, z)
                gen_loss = (
                    config.feature_match_weight * match
                    + config.kd_weight * kd
                    + config.ce_weight * ce_gen
                )
                if gen_loss.requires_grad:
                    gen_optim.zero_grad(set_to_none=True)
                    gen_loss.backward()
                    gen_optim.step()
                sums += np.array([float(t.detach()) for t in (ce, match, kd)]) * len(batch)
                count += len(batch)
        optim.zero_grad(set_to_none=True)  # the generator's loss left gradients on the head
        mean = sums / max(count, 1)
        return float(mean[0]), float(mean[1]), float(mean[2])

    def fill_cross_entropy(
        self, feats: Features, present: Presence, labels: torch.Tensor, z: torch.Tensor
    ) -> torch.Tensor:
        """CE(head([f_avail, G(z, f_avail)]), y) on the rows that lack a learnable modality: the
        generator learns to fill what the head needs (FedMobile's ``ce_weight`` term). The label
        is the target only; G's input is features and noise."""
        absent = torch.zeros(len(labels), dtype=torch.bool)
        for m in self.learnable:
            absent = absent | ~present[m]
        if not bool(absent.any()):
            return z.new_zeros(())
        rows = {m: f[absent] for m, f in feats.items()}
        rows_present = {m: p[absent] for m, p in present.items()}
        filled = cross_modal_fill(self.cross, self.learnable, z[absent])(rows, rows_present, None)
        return F.cross_entropy(self.model.classify(filled), labels[absent])

    # ---- server -----------------------------------------------------------------------------

    @torch.no_grad()
    def _proxy_cases(self) -> list[tuple[str, Features, dict[str, torch.Tensor]]]:
        """Per learnable modality m: (m, proxy features under the loaded model, presence with m
        hidden). Empty without a proxy set."""
        proxy: MultimodalDataset | None = self.context.proxy
        if proxy is None or len(proxy) == 0:
            return []
        self.model.eval()
        inputs = {m: torch.from_numpy(a) for m, a in proxy.modalities.items()}
        everything = {m: torch.ones(len(proxy), dtype=torch.bool) for m in inputs}
        feats = self.model.encode(inputs, everything)
        return [
            (m, feats, {**everything, m: torch.zeros(len(proxy), dtype=torch.bool)})
            for m in self.learnable
            if len(self.model.modalities) > 1
        ]

    @torch.no_grad()
    def signatures(
        self, gens: Sequence[Mapping[str, np.ndarray]], model: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        """Each generator's fills of the proxy set under the new global model (each learnable
        modality hidden in turn); without a proxy set, its output on the fixed probe noise with
        every input slice absent."""
        self.load_model(model)
        cases = self._proxy_cases()
        self.cross.eval()
        rows = []
        for g in gens:
            set_arrays(self.cross, g)
            if cases:
                parts = [
                    self.cross(torch.zeros((len(h[m]), self.config.noise_dim)), f, h)[m]
                    for m, f, h in cases
                ]
            else:
                z = self.probe[0]
                absent = {m: torch.zeros(len(z), dtype=torch.bool) for m in self.model.modalities}
                zero = {m: torch.zeros((len(z), d)) for m, d in feature_dims(self.model).items()}
                parts = list(self.cross(z, zero, absent).values())
            rows.append(torch.cat([p.reshape(-1) for p in parts]).numpy().astype(np.float64))
        return np.stack(rows) if rows else np.zeros((0, 0))

    def utility(
        self, reps: Sequence[Mapping[str, np.ndarray]], masses: np.ndarray
    ) -> Callable[[tuple[int, ...]], float]:
        """v(S): mean proxy accuracy over the drop-one cases, filled by S's averaged generator."""
        flat = flatten_generators(self.cross, reps)
        cases = self._proxy_cases()
        proxy = self.context.proxy
        labels = torch.from_numpy(proxy.labels) if proxy is not None else torch.zeros(0)

        @torch.no_grad()
        def value(members: tuple[int, ...]) -> float:
            if members:
                load_coalition(self.cross, flat, masses, members)
                self.cross.eval()
            accs = []
            for m, feats, hidden in cases:
                if members:
                    z = torch.zeros((len(labels), self.config.noise_dim))
                    slice_m = self.cross(z, feats, hidden)[m]
                else:
                    slice_m = torch.zeros_like(feats[m])
                logits = self.model.classify({**feats, m: slice_m})
                accs.append(float((logits.argmax(dim=1) == labels).double().mean()))
            return float(np.mean(accs)) if accs else 0.0

        return value

    def cluster_weights(
        self,
        version: int,
        reps: Sequence[Mapping[str, np.ndarray]],
        masses: np.ndarray,
        model: Mapping[str, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """FedMobile's Shapley weights when a proxy set can score coalitions; mass otherwise."""
        if self.context.proxy is None or len(self.context.proxy) == 0:
            total = masses.sum()
            weights = masses / total if total > 0 else np.full(len(reps), 1.0 / len(reps))
            return np.zeros(0), weights
        return super().cluster_weights(version, reps, masses, model)
