"""Helpers the test tiers share (imported as ``helpers.<module>``, never from conftest)."""
