"""Layer 4 of 5, **teach**: what the lessons show.

The widgets' models, plain Python with no ipywidgets needed and tested without a kernel: `tour`
(lesson 00), `explorers` (01-04), `reorder` (05; its predictions before a Retrain in
`order_prediction`), `phases` (06), `selection` (07) and `scaling` (08); `exercises` holds the lessons'
automatic checks; `widgets` the thin ipywidgets views over the models; `plots` the figures
(matplotlib). Import the submodules on their own (``from dve_teach.teach import plots, widgets``): they need the ``lessons`` extra, so this package imports nothing at load time.
"""
__all__ = ["tour", "explorers", "reorder", "order_prediction", "phases", "selection", "scaling", "exercises", "widgets",
           "plots"]
