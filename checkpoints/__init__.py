"""The models genseq ships (``models.toml`` and one directory per model), installed as
``genseq.checkpoints``; user runs that sit beside them in a clone are never package data."""
