"""Layer 4 of 5, **teach**: what the lessons show.

`explorers`, `reorder` and `scaling` (lesson 08) hold the widgets' models (plain Python, no ipywidgets needed, tested
without a kernel); `widgets` holds the thin ipywidgets views over them; `plots` the figures
(matplotlib). Import the submodules on their own (``from dve_teach.teach import plots, widgets``):
they need the ``lessons`` extra, so this package imports nothing at load time.
"""
__all__ = ["explorers", "reorder", "scaling", "widgets", "plots"]
