"""A seeded synthetic multimodal activity dataset whose cross-modal correlation is a parameter.

Each class has a latent "motion" signature (a few sinusoids with class-specific frequencies and
phases). Every modality sees a mixture of that shared signature and a modality-private one:
``signal_m = c * shared(y) + sqrt(1 - c^2) * private_m(y)``, with ``c`` the correlation. With
c = 1 every modality carries the same class evidence (one can stand in for another, so a
generator can learn it from the others); with c = 0 each modality carries its own independent
evidence. Subjects add a per-subject gain and offset, so a natural partition by subject is skewed
the way real wearables are. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedmobile_actors.data.dataset import MultimodalDataset
from fedmobile_actors.scenario.schema import ModalityShape, SyntheticSource
from fedmobile_actors.seeding import SERVER, rng


def _signatures(gen: np.random.Generator, classes: int, channels: int, steps: int) -> np.ndarray:
    """Per-class waveforms (classes, channels, steps): sums of two sinusoids per channel."""
    t = np.arange(steps, dtype=np.float64) / steps
    freq = gen.uniform(1.0, 6.0, size=(classes, channels, 2))
    phase = gen.uniform(0.0, 2 * np.pi, size=(classes, channels, 2))
    amp = gen.uniform(0.5, 1.5, size=(classes, channels, 2))
    waves = amp[..., None] * np.sin(2 * np.pi * freq[..., None] * t + phase[..., None])
    return waves.sum(axis=2)


@dataclass(frozen=True)
class ModalityModel:
    """How one modality's windows are made: the clean per-class waveform and per-subject gain and
    offset (float32); a window is ``noise * N(0, 1) + clean[label]``, scaled and shifted by its
    subject's gain and offset."""

    clean: np.ndarray  # (K, C, T)
    gain: np.ndarray  # (S, C)
    offset: np.ndarray  # (S, C)


def _modality_model(
    mgen: np.random.Generator, shared_ref: np.ndarray, spec: ModalityShape, source: SyntheticSource
) -> ModalityModel:
    """One modality's model from ``mgen`` (mix, private waveforms, gains, offsets, in order)."""
    k = source.num_classes
    c = source.correlation
    private_weight = np.sqrt(max(0.0, 1.0 - c * c))
    grid = np.linspace(0, 255, spec.steps)
    shared = np.stack([np.interp(grid, np.arange(256), s) for s in shared_ref])  # (K, T)
    mix = mgen.normal(0, 1, size=(spec.channels,))  # how each channel sees the shared motion
    shared_m = shared[:, None, :] * mix[None, :, None]  # (K, C, T)
    private_m = _signatures(mgen, k, spec.channels, spec.steps)  # (K, C, T)
    clean = c * shared_m + private_weight * private_m
    gain = mgen.uniform(0.8, 1.2, size=(source.subjects, spec.channels))
    offset = mgen.normal(0, 0.3, size=(source.subjects, spec.channels))
    return ModalityModel(
        clean.astype(np.float32), gain.astype(np.float32), offset.astype(np.float32)
    )


def render(
    model: ModalityModel,
    labels: np.ndarray,
    subjects: np.ndarray,
    noise: float,
    gen: np.random.Generator,
) -> np.ndarray:
    """The windows (N, C, T) float32 of ``labels`` and ``subjects``, their noise drawn from
    ``gen``; float32 throughout and in place (a 5,000-phone fleet's data is ~1.5 GB already)."""
    _k, channels, steps = model.clean.shape
    x = gen.standard_normal(size=(len(labels), channels, steps), dtype=np.float32)
    x *= np.float32(noise)
    x += model.clean[labels]
    x *= model.gain[subjects][..., None]
    x += model.offset[subjects][..., None]
    return x


def make_synthetic(source: SyntheticSource, seed: int) -> MultimodalDataset:
    """Generate ``source.samples`` windows; the same (source, seed) always gives the same arrays."""
    gen = rng(seed, SERVER, 0, "synthetic-data")
    n, k = source.samples, source.num_classes
    labels = gen.integers(0, k, size=n)
    subjects = gen.integers(0, source.subjects, size=n)
    # A shared latent signature per class, in a reference shape resampled per modality.
    modalities: dict[str, np.ndarray] = {}
    shared_ref = _signatures(gen, k, 1, 256)[:, 0, :]  # (K, 256)
    for spec in source.modalities:
        mgen = rng(seed, SERVER, 0, f"synthetic-data/{spec.name}")
        model = _modality_model(mgen, shared_ref, spec, source)
        modalities[spec.name] = render(model, labels, subjects, source.noise, mgen)
    return MultimodalDataset(
        modalities=modalities,
        labels=labels.astype(np.int64),
        subjects=subjects.astype(np.int64),
        num_classes=k,
    )


def synthetic_model(source: SyntheticSource, seed: int) -> dict[str, ModalityModel]:
    """The per-phone mode's model of every modality, from its own server-keyed streams (the
    dealt dataset's streams also draw its labels first, so they cannot be shared)."""
    gen = rng(seed, SERVER, 0, "synthetic-model")
    shared_ref = _signatures(gen, source.num_classes, 1, 256)[:, 0, :]  # (K, 256)
    return {
        spec.name: _modality_model(
            rng(seed, SERVER, 0, f"synthetic-model/{spec.name}"), shared_ref, spec, source
        )
        for spec in source.modalities
    }
