"""Model kinds: one file per kind, the contract in ``base``, the name -> builder map in
``registry``."""
