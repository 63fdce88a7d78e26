"""Verification: programmatic checks first, then an LLM judge; the verdict combines them."""

from raspberry.verify.checks import CheckResult, check, has_verifier
from raspberry.verify.extract import extract_final_answer

__all__ = ["CheckResult", "check", "extract_final_answer", "has_verifier"]
