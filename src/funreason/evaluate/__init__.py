"""Evaluation: BFCL scoring and runs, the HumanEval forgetting check, reports."""
