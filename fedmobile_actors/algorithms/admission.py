"""Which updates a server may aggregate: the guard every strategy's ``aggregate`` runs first.

The wire already rejects mis-shaped or non-finite updates, but in-process backends may skip the
wire, and a single NaN averaged into the global model destroys it for good. So aggregation checks
again, and counts what it refused (reported per round as ``rejected``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fedmobile_actors.algorithms.strategy import ClientUpdate


def admit(
    current: Mapping[str, np.ndarray], updates: Sequence[ClientUpdate], staleness: Sequence[float]
) -> tuple[list[ClientUpdate], np.ndarray, int]:
    """Updates fit to aggregate, their staleness factors (float64), and how many were rejected.

    Rejected: array names or shapes that differ from the global state's, non-finite values, a
    negative sample count, or a non-finite or negative staleness factor. A factor of exactly 0 is
    not an error: the update carries no weight and is left out.
    """
    kept, factors, rejected = [], [], 0
    for u, s in zip(updates, staleness, strict=True):
        ok = (
            set(u.arrays) == set(current)
            and all(
                u.arrays[k].shape == current[k].shape and np.isfinite(u.arrays[k]).all()
                for k in current
            )
            and u.num_samples >= 0
            and bool(np.isfinite(s))
            and s >= 0
        )
        if not ok:
            rejected += 1
        elif s > 0:
            kept.append(u)
            factors.append(float(s))
    return kept, np.asarray(factors, dtype=np.float64), rejected
