"""Tests of the LangGraph instrumentation (node wrappers, scan lifecycle, helpers, live stream)."""
