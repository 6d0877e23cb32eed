"""Hookflow's benchmark (`make bench`, that is `python bench/run.py`); see bench/run.py."""
