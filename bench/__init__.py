"""Load and micro benchmarks of idp; see run.py and RESULTS.md."""
