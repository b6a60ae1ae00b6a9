"""Evaluation over simulated chip instances, sweeps, and the cross-hardware transfer matrix."""

from hwprofiles.eval.chips import EvaluationResult, Summary, evaluate, evaluate_checkpoint, load_trained, summarize

__all__ = ["EvaluationResult", "Summary", "evaluate", "evaluate_checkpoint", "load_trained", "summarize"]
