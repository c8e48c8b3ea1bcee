"""Layer 3 of 5, **influence**: what one (point, step) did to the final model.

Exact answers by replay (`loo.exact_loo`, `counterfactual`), the first-order unrolled estimate
(`unroll.sgd_influence`, Hara et al. 2019), data value embeddings (`embedding.DataValueEmbedding`,
Wang et al. 2025, §3–4) with their `projection`s (random, or fitted to the run: `pca`), the
backward `recursion` they share with influence `checkpointing` (§4.4), the `baselines` (TracIn,
grad-dot, influence function), the result table `Influence` (`scores`), `metrics` and, for tiny
models, the explicit matrices of `explain`; the per-step `phases` of influence (§5.3) and
`curation` (mislabel detection, online data selection); `unroll.unrolled_influence` and the
`state_recursion` of embeddings for runs of any update rule, and `order_effects` (predicting an
edited training order without retraining). Imports only from the data and training
layers.
"""
from . import (baselines, checkpointing, counterfactual, curation, explain, metrics, order_effects, pca, phases,
               projection, recursion, state_recursion)
from .baselines import grad_dot, influence_function, tracin
from .embedding import DataValueEmbedding
from .loo import exact_loo
from .order_effects import OrderPredictor, exact_order_change, predict_order
from .scores import Influence
from .unroll import sgd_influence, unrolled_influence

__all__ = ["Influence", "exact_loo", "sgd_influence", "unrolled_influence", "DataValueEmbedding", "tracin", "grad_dot",
           "influence_function", "baselines", "checkpointing", "counterfactual", "curation", "explain",
           "metrics", "pca", "phases", "projection", "recursion", "state_recursion", "order_effects",
           "OrderPredictor", "predict_order", "exact_order_change"]
