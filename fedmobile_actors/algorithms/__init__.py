"""Algorithms layer: models, local training, FedMobile and its baselines. Pure: no Ray here."""
