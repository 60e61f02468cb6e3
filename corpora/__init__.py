"""The corpus registry (``registry.toml``), installed as ``genseq.corpora``."""
