"""The public API does not move with the layers: every name the README and the lessons use is
reachable from ``import dve_teach as dt``, ``from dve_teach.widgets import ReorderExplorer`` (the path
coursework uses) works, and the module paths of the old flat layout are the new modules themselves."""
from __future__ import annotations

import importlib

import pytest

import dve_teach as dt

PUBLIC = ["Data", "Split", "as_data", "Schedule", "train", "Trajectory", "Influence", "exact_loo",
          "sgd_influence", "DataValueEmbedding", "tracin", "grad_dot", "influence_function", "datasets",
          "models", "metrics", "orders", "counterfactual", "explain", "config", "functional", "__version__"]


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name(name):
    assert name in dt.__all__ and getattr(dt, name) is not None


def test_names_are_those_of_the_layers():
    from dve_teach.data import datasets, models
    from dve_teach.influence import DataValueEmbedding, exact_loo, metrics
    from dve_teach.training import Schedule, train
    assert (dt.train, dt.Schedule, dt.exact_loo, dt.DataValueEmbedding) == (train, Schedule, exact_loo, DataValueEmbedding)
    assert (dt.datasets, dt.models, dt.metrics) == (datasets, models, metrics)
    assert callable(dt.models.mlp) and callable(dt.metrics.fidelity) and callable(dt.config.sized)


def test_teaching_layer_by_its_old_names():
    pytest.importorskip("ipywidgets")
    pytest.importorskip("matplotlib")
    from dve_teach import plots, widgets
    from dve_teach.teach import plots as teach_plots
    from dve_teach.teach import widgets as teach_widgets
    from dve_teach.widgets import DigitExplorer, ReorderExplorer, ReorderModel  # noqa: F401
    assert plots is teach_plots and widgets is teach_widgets
    assert ReorderExplorer is teach_widgets.ReorderExplorer
    assert importlib.import_module("dve_teach.widgets") is teach_widgets


@pytest.mark.parametrize("old, new", [("loo", "influence.loo"), ("embedding", "influence.embedding"),
                                      ("trajectory", "training.trajectory"), ("orders", "training.orders"),
                                      ("counterfactual", "influence.counterfactual"),
                                      ("projection", "influence.projection"), ("schedule", "training.schedule")])
def test_old_module_paths_are_the_new_modules(old, new):
    assert importlib.import_module(f"dve_teach.{old}") is importlib.import_module(f"dve_teach.{new}")


def test_unknown_attribute_is_a_clear_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        dt.nope  # noqa: B018


def test_every_alias_path_imports_the_same_module():
    """One mechanism for every compatibility path: ``import dve_teach.<old>``, ``from dve_teach.<old>
    import ...`` and ``dt.<old>`` all give the module at its home (issue: `from dve_teach.reorder
    import ReorderModel` failed while `dt.reorder` worked)."""
    pytest.importorskip("ipywidgets")
    pytest.importorskip("matplotlib")
    for old, new in dt.ALIASES.items():
        home = importlib.import_module(f"dve_teach.{new}")
        assert importlib.import_module(f"dve_teach.{old}") is home and getattr(dt, old) is home
    from dve_teach.reorder import ReorderModel
    from dve_teach.teach.reorder import ReorderModel as at_home
    assert ReorderModel is at_home
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("dve_teach.nope")
