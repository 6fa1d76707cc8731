"""Benchmarks of hpsearch: training speed against the GEMM limit and other loops; pruning; workers on one study."""
