"""Plug-ins written outside fedmobile_actors: two strategies and one model kind.

Nothing here is registered anywhere: a scenario names them by import path
(``algorithm.name: fedmobile_examples.fedavgm:FedAvgM``), with this directory's parent
(``examples/``) on ``PYTHONPATH`` or as the current directory. See examples/README.md.
"""
