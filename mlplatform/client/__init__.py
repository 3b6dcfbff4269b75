"""Helpers for code that runs in the platform's jobs (no Django: plain HTTP and pandas)."""
