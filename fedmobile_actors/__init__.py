"""fedmobile-actors: multimodal federated learning (FedMobile) on simulated phone fleets, on Ray.

Layers (see docs/architecture.md): ``scenario`` (YAML edge) -> ``fleet`` and ``data`` (pure
population and shards) -> ``algorithms`` (pure FedMobile and baselines) -> ``sim`` (virtual clock
and round policies) -> ``runtime`` (the only Ray user) -> ``report`` -> ``orchestration`` (runs
and sweeps) -> ``cli``.
"""

__version__ = "0.1.0"
