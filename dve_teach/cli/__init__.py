"""Layer 5 of 5, **cli**: ``python -m dve_teach check | demo | bench`` (`main`), the fidelity
demo (`demo`) and the benchmark (`bench`). May import every layer below it."""
from .main import build_parser, check_report, main

__all__ = ["main", "build_parser", "check_report"]
