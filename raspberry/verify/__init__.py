"""Verification: programmatic checks first, then an LLM judge; the verdict combines them."""

from raspberry.verify.checks import CheckResult, acheck, check, has_verifier
from raspberry.verify.extract import extract_final_answer

__all__ = ["CheckResult", "acheck", "check", "extract_final_answer", "has_verifier"]
