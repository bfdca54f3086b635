"""Hybrid-batch training, layered as sentence-transformers is: ``data`` (readers → items → pairs),
``strategies`` and ``samplers`` (batch make-up; no model knowledge), ``trainer`` (loss + trainer;
entry point :func:`hybrid_plugin.training.trainer.train`), ``card`` (record and model card), ``cli``."""
