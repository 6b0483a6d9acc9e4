"""The training worker: the only package that imports torch & co (lazily per module)."""
