"""Scoring: what turns a pool into a score matrix, and the exact ranking kernel that reads it.

A :class:`~.retriever.Retriever` (dense encoders through the embedding :mod:`~.store`, BM25 through
:mod:`~.lucene`, the de-biasing wrappers) scores a pool into a :class:`~.retriever.Retrieval`: a
:class:`~.retriever.ScoreMatrix` plus what the results record about the retriever. The kernel
(:mod:`~.ranking`, cut into :mod:`~.tiles`) ranks that matrix exactly, as trec_eval would. The engine
(:mod:`hybrid_plugin.evaluation.engine`) sits above and turns ranks into measures; nothing here
imports it. The CLI and the Python API turn ``--model`` into a retriever with
:func:`~.resolve.resolve_retriever`.
"""
