"""Evaluation over simulated chip instances, sweeps, and the cross-hardware transfer matrix."""

from hwprofiles.eval.chips import Summary, evaluate_checkpoint, load_trained, summarize

__all__ = ["Summary", "evaluate_checkpoint", "load_trained", "summarize"]
