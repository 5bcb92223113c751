"""Analyses over masks and results: similarity, summaries, retrieval, representation similarity, plots."""
