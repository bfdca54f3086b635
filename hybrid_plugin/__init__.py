"""hybrid_plugin: multilingual retrieval benchmark (XQuAD-R, MLQA-R), exact mAP and language-bias metrics."""

__version__ = "0.1.0"
