"""Noisy twins of torch layers, the model converter, and QAT quantizers."""
