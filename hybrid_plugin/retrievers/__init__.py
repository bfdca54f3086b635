"""Retrievers: what scores a pool (dense encoders through the embedding store, BM25, wrappers).

The engine takes any object with ``score(pool) -> Scored`` (:class:`~.base.Retriever`); the CLI and
the Python API turn ``--model`` into one with :func:`~.resolve.resolve_retriever`.
"""
