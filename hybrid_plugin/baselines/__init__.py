"""Baselines scored through the same exact metrics path as dense models (BM25 via pyserini/Lucene)."""
