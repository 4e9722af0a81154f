"""Model registry: ``get_model(name, **params)``, ``MODEL_NAMES``, ``DEFAULT_MODEL``."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from .base import Recommender
from .blend import Blend
from .ease import EASE, WeightedEDLAE
from .factor import ALS, BPR
from .knn import ItemKNN, RP3Beta
from .lowrank import EASELowRank
from .popularity import Popularity
from .temporal import SessionEASE

__all__ = ["MODEL_NAMES", "DEFAULT_MODEL", "DEFAULT_PARAMS", "get_model", "default_model"]

_CLASSES: dict[str, type[Recommender]] = {
    cls.name: cls
    for cls in (
        Popularity,
        ALS,
        BPR,
        ItemKNN,
        RP3Beta,
        EASE,
        EASELowRank,
        WeightedEDLAE,
        SessionEASE,
        Blend,
    )
}

#: every name ``get_model`` accepts
MODEL_NAMES: tuple[str, ...] = tuple(_CLASSES)

#: the project's default recommender (see docs/MODELS.md for how it was chosen): EDLAE on a
#: user- and session-window-weighted Gram matrix, scored with a recency weight
DEFAULT_MODEL: str = SessionEASE.name

#: tuned parameters per model, applied by ``get_model`` under any explicit ones
_TUNED_PARAMS: dict[str, dict[str, Any]] = {
    WeightedEDLAE.name: dict(
        lam=20.0, dropout=0.1, user_exponent=0.5, neighbours=None, max_items=10_000
    ),
    SessionEASE.name: dict(
        lam=20.0,
        dropout=0.1,
        user_exponent=0.5,
        window=30,
        stride=15,
        window_weight=0.3,
        window_exponent=0.5,
        recency=1.0,
        recency_tau=10.0,
    ),
}

#: the default's parameters (``get_model(DEFAULT_MODEL)`` uses exactly these)
DEFAULT_PARAMS: MappingProxyType[str, Any] = MappingProxyType(_TUNED_PARAMS[DEFAULT_MODEL])


def get_model(name: str, **params: Any) -> Recommender:
    """A new, unfitted model. Unknown names raise ``ValueError``; unknown parameters
    ``TypeError``. ``get_model(DEFAULT_MODEL)`` is the tuned default."""
    try:
        cls = _CLASSES[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}"
        ) from None
    params = {**_TUNED_PARAMS.get(name, {}), **params}
    return cls(**params)


def default_model(**overrides: Any) -> Recommender:
    return get_model(DEFAULT_MODEL, **overrides)
