"""Benchmark scripts (a package so that ``--model benchmarks.hash_encoder:factory`` wins over a
third-party top-level ``benchmarks`` that pysbd installs into site-packages)."""
