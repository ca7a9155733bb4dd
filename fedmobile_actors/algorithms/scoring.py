"""Scoring many whole models on one dataset side by side, with the same bits as one by one.

A server step that scores candidate models (the authors' FedMobile scores 30 a round: each
phone's model, each prefix average, the aggregate with each phone's BatchNorm statistics) runs
while the phone hosts wait for the next round, so on a deadline round the hosts' cores are idle.
The scorings are independent: each thread here takes its own copy of the model, loads a model's
every array into it (``set_arrays`` writes the whole state dict, so no copy keeps anything of
an earlier model), and scores it with the same intra-op thread count as the caller. Each torch
op then runs the same kernel on the same inputs with the same threads as in a serial loop, so
the scores are the serial loop's bits (tests compare them); only the wall time changes.

The number of threads is torch's inter-op pool size (``torch.get_num_interop_threads()``): the
knob torch itself has for running independent ops in parallel, the machine's cores by default,
and one where a user wants the server to stay on one core.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from fedmobile_actors.algorithms.model import set_arrays
from fedmobile_actors.algorithms.models.base import MultimodalNet

#: One candidate: a whole model's arrays (parameters and buffers, by state-dict key).
Candidate = Mapping[str, np.ndarray]
#: Scores a model that holds one candidate's arrays (its accuracy on a set, say).
ScoreFn = Callable[[MultimodalNet], float]


class ModelScorer:
    """Scores lists of whole models (``Candidate``) with ``score``, in parallel threads.

    ``model`` is the caller's model: after ``scores`` it holds the last candidate's arrays in
    eval mode, as it would after the serial loop, so code that reads it afterwards sees what
    it saw before this class existed."""

    def __init__(self, model: MultimodalNet, score: ScoreFn, threads: int | None = None) -> None:
        self.model = model
        self.score = score
        self.threads = max(1, threads if threads is not None else torch.get_num_interop_threads())
        self._copies: list[MultimodalNet] = []

    def scores(self, candidates: Sequence[Candidate]) -> list[float]:
        """``score`` of each candidate, in the candidates' order."""
        if not candidates:
            return []
        threads = min(self.threads, len(candidates))
        if threads == 1:
            out = [self._one(self.model, arrays) for arrays in candidates]
        else:
            while len(self._copies) < threads - 1:
                self._copies.append(copy.deepcopy(self.model))
            models = [self.model, *self._copies[: threads - 1]]
            # Contiguous chunks, the caller's model last: it ends on the last candidate.
            bounds = [len(candidates) * i // threads for i in range(threads + 1)]
            chunks = [candidates[bounds[i] : bounds[i + 1]] for i in range(threads)]
            intra = torch.get_num_threads()
            with ThreadPoolExecutor(threads, thread_name_prefix="score") as pool:
                parts = pool.map(
                    lambda job: self._chunk(job[0], job[1], intra),
                    zip(reversed(models), chunks, strict=True),
                )
                out = [s for part in parts for s in part]
        self.model.eval()
        return out

    def _chunk(self, model: MultimodalNet, chunk: Sequence[Candidate], intra: int) -> list[float]:
        # torch's intra-op thread count is per thread under OpenMP: match the caller's, so
        # every kernel splits its work as it would there.
        torch.set_num_threads(intra)
        return [self._one(model, arrays) for arrays in chunk]

    def _one(self, model: MultimodalNet, arrays: Candidate) -> float:
        set_arrays(model, arrays)
        return self.score(model)
