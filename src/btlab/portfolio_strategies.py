"""The portfolio strategy registry (SPEC §8 "Strategies"): shifted (n, K) features to targets.

A portfolio strategy declares its parameter model, the features it reads (alias -> FeatureSpec,
served by `PortfolioFeatureStore` on the union clock, shifted: computed on bars strictly before
each clock bar) and maps them to `target[i, k]`, the wanted position in symbol k as a signed
fraction of the one account's equity, decided before clock bar i opens. A symbol that is not
tradable at bar i (before its first bar, after its last) has target 0; `compute_portfolio_target`
checks that, and that the result is float64, finite and (n, K).

Built in: `per_symbol` (a single-symbol strategy of btlab.strategies on each symbol's own bars,
weighted 1/K or by given weights), `equal_weight`, `inverse_vol` and `xs_momentum`. The formulas
are in docs/concepts.md ("Portfolio strategies").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, Field, model_validator

from .code_identity import UserCode, register, user_code
from .errors import ConfigError
from .features import FeatureSpec, Float, Int, Params, validate_params
from .kernels.clock import place_decision_nb
from .kernels.cross_section import equal_weight_nb, inverse_vol_nb, rank_long_short_nb
from .portfolio_features import PortfolioFeatureStore, Universe
from .request_model import RequestModel
from .strategies import checked_target, resolve_strategy, resolve_strategy_params, strategy_code

__all__ = [
    "PortfolioStrategy",
    "PortfolioStrategyConfig",
    "compute_portfolio_target",
    "is_portfolio_strategy",
    "list_portfolio_strategies",
    "portfolio_strategy",
    "portfolio_strategy_code",
    "required_portfolio_features",
    "resolve_portfolio_strategy",
    "resolve_portfolio_strategy_params",
]

P = TypeVar("P", bound=BaseModel)


class PortfolioStrategy(Generic[P]):
    """Base of every portfolio strategy; subclass it and register it with `@portfolio_strategy`."""

    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[BaseModel]]

    @classmethod
    def resolve(cls, p: P) -> P:
        """Checks beyond the parameter model (raise ConfigError naming `params.<field>`), and
        the parameters with anything nested filled in; `p` itself by default."""
        return p

    @classmethod
    def features(cls, p: P) -> dict[str, FeatureSpec]:
        """The features the strategy reads: alias -> spec (none by default)."""
        return {}

    @classmethod
    def strategies(cls, p: P) -> list[str]:
        """The single-symbol strategies it runs (their code joins the config hash; none by
        default)."""
        return []

    @classmethod
    def target(cls, f: Mapping[str, np.ndarray], p: P, universe: Universe) -> np.ndarray:
        """`target[i, k]` from the shifted features `f` (alias -> (n, K) array)."""
        raise NotImplementedError


S = TypeVar("S", bound=type[PortfolioStrategy[Any]])

_REGISTRY: dict[str, type[PortfolioStrategy[Any]]] = {}
#: The code of each portfolio strategy registered from user code (SPEC §9); built-ins have none.
_CODE: dict[str, UserCode] = {}


def portfolio_strategy(cls: S) -> S:
    """Class decorator: register a `PortfolioStrategy` subclass under its `name`.

    From user code it carries its code's hash and may be registered again, as a single-symbol
    strategy (`btlab.strategies.strategy`)."""
    for attr in ("name", "description", "Params"):
        if not hasattr(cls, attr):
            raise TypeError(f"portfolio strategy {cls.__name__} lacks {attr}")
    entry: type[PortfolioStrategy[Any]] = cls
    register("portfolio strategy", cls.name, entry, user_code(cls), _REGISTRY, _CODE)
    return cls


def portfolio_strategy_code(name: str, params: Mapping[str, Any]) -> dict[str, str]:
    """The code hashes of a portfolio strategy from user code and of the user single-symbol
    strategies it runs with `params` ("portfolio_strategy:<name>", "strategy:<name>"); empty
    for built-ins only."""
    cls, p = resolve_portfolio_strategy(name, params)
    code = {f"strategy:{inner}": strategy_code(inner) for inner in cls.strategies(p)}
    code[f"portfolio_strategy:{name}"] = _CODE[name].digest() if name in _CODE else None
    return {key: digest for key, digest in code.items() if digest is not None}


def _lookup(name: str) -> type[PortfolioStrategy[Any]]:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ConfigError(
            "unknown portfolio strategy",
            [("name", f"unknown portfolio strategy {name!r}; known portfolio strategies: {known}")],
        ) from None


def resolve_portfolio_strategy(
    name: str, params: Mapping[str, Any]
) -> tuple[type[PortfolioStrategy[Any]], BaseModel]:
    """The registered class and its validated parameters (ConfigError naming each bad field)."""
    cls = _lookup(name)
    return cls, cls.resolve(validate_params("portfolio strategy", name, cls.Params, params))


def is_portfolio_strategy(name: str) -> bool:
    """Whether `name` is a registered portfolio strategy (else it may be a single-symbol one)."""
    return name in _REGISTRY


def resolve_portfolio_strategy_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters validated, with defaults filled in (nested ones too), as JSON values."""
    dumped: dict[str, Any] = resolve_portfolio_strategy(name, params)[1].model_dump(mode="json")
    return dumped


def list_portfolio_strategies() -> list[dict[str, Any]]:
    """Every registered portfolio strategy: name, description, the JSON schema of its
    parameters and the features it reads with its default parameters."""
    out = []
    for name in sorted(_REGISTRY):
        cls = _REGISTRY[name]
        defaults = cls.features(cls.resolve(cls.Params()))
        out.append(
            {
                "name": name,
                "description": cls.description,
                "params": cls.Params.model_json_schema(),
                "features": {
                    alias: spec.model_dump(mode="json") for alias, spec in defaults.items()
                },
            }
        )
    return out


def required_portfolio_features(name: str, params: Mapping[str, Any]) -> list[FeatureSpec]:
    """The distinct features the strategy reads with these parameters, in declared order."""
    cls, p = resolve_portfolio_strategy(name, params)
    seen: dict[str, FeatureSpec] = {}
    for spec in cls.features(p).values():
        seen.setdefault(spec.key(), spec)
    return list(seen.values())


def compute_portfolio_target(
    store: PortfolioFeatureStore, name: str, params: Mapping[str, Any]
) -> np.ndarray:
    """The strategy's (n, K) float64 target from the store's shifted features: finite, and 0
    wherever a symbol is not tradable (else a ValueError naming the bar and the symbol)."""
    cls, p = resolve_portfolio_strategy(name, params)
    universe = store.universe
    f = {alias: store.get(spec) for alias, spec in cls.features(p).items()}
    target = np.asarray(cls.target(f, p, universe), dtype=np.float64)
    shape = (universe.n, universe.n_symbols)
    if target.shape != shape:
        raise ValueError(
            f"portfolio strategy {name!r} returned shape {target.shape}, expected {shape}"
        )
    checks = [
        (~np.isfinite(target), "a non-finite target"),
        ((target != 0) & ~universe.tradable, "a target where the symbol is not listed"),
    ]
    for bad, what in checks:
        if bad.any():
            i, k = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(
                f"portfolio strategy {name!r} returned {what} at bar {i}, "
                f"symbol {universe.symbols[k]!r}"
            )
    return target


class PortfolioStrategyConfig(RequestModel):
    """The portfolio strategy and its parameters (validated against the strategy's schema)."""

    name: str = Field(
        "equal_weight", description="A portfolio strategy name from the portfolio registry."
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="The portfolio strategy's parameters."
    )

    @model_validator(mode="after")
    def _check_registry(self) -> PortfolioStrategyConfig:
        filled = resolve_portfolio_strategy_params(self.name, self.params)
        object.__setattr__(self, "params", filled)
        return self


# --------------------------------------------------------------------------- built-in strategies


def _gross_field() -> Any:
    return Field(
        1.0,
        gt=0,
        le=100,
        description="Gross exposure of a fully held row: sum of |weights| (1.0: fully invested).",
    )


class PerSymbolParams(Params):
    strategy: str = Field(
        "sma_cross", description="A single-symbol strategy name (GET /registry) run on each symbol."
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="The single-symbol strategy's parameters."
    )
    weights: dict[str, Float] | None = Field(
        None,
        description="Weight per symbol (every symbol named, each a signed fraction of equity "
        "scaling that symbol's target); by default 1/K each.",
    )


@portfolio_strategy
class PerSymbol(PortfolioStrategy[PerSymbolParams]):
    name = "per_symbol"
    description = (
        "A single-symbol strategy on each symbol's own bars, its target scaled by the symbol's "
        "weight (1/K each, or `weights`)."
    )
    Params = PerSymbolParams

    @classmethod
    def resolve(cls, p: PerSymbolParams) -> PerSymbolParams:
        try:
            filled = resolve_strategy_params(p.strategy, p.params)
        except ConfigError as exc:
            # the single-symbol registry names `name` and `params.<field>`: here they are
            # `params.strategy` and `params.params.<field>`
            where = {"name": "params.strategy"}
            raise ConfigError(
                "invalid parameters for portfolio strategy 'per_symbol'",
                [(where.get(loc, f"params.{loc}"), msg) for loc, msg in exc.errors],
            ) from None
        return p.model_copy(update={"params": filled})

    @classmethod
    def features(cls, p: PerSymbolParams) -> dict[str, FeatureSpec]:
        inner, q = resolve_strategy(p.strategy, p.params)
        return inner.features(q)

    @classmethod
    def strategies(cls, p: PerSymbolParams) -> list[str]:
        return [p.strategy]

    @classmethod
    def target(
        cls, f: Mapping[str, np.ndarray], p: PerSymbolParams, universe: Universe
    ) -> np.ndarray:
        inner, q = resolve_strategy(p.strategy, p.params)
        weights = _symbol_weights(p.weights, universe.symbols)
        out = np.empty((universe.n, universe.n_symbols), dtype=np.float64)
        for k, pos in enumerate(universe.positions):
            # the symbol's own-bar features: at its own bars the clock value is exactly the
            # single-symbol store's shifted value, so this is the single-symbol run's input
            own = {alias: _frozen(values[pos, k]) for alias, values in f.items()}
            m = int(pos.shape[0])
            own_target = checked_target(p.strategy, inner.target(own, q, m), m)
            place_decision_nb(own_target, pos, k, weights[k], out)
        return out


def _frozen(values: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(values, dtype=np.float64)
    values.flags.writeable = False
    return values


def _symbol_weights(weights: Mapping[str, float] | None, symbols: tuple[str, ...]) -> np.ndarray:
    """(K,) weights in symbol order: 1/K each, or the given ones, which name every symbol."""
    if weights is None:
        return np.full(len(symbols), 1.0 / len(symbols))
    errors = [
        ("params.weights", f"unknown symbol {s!r}") for s in sorted(set(weights) - set(symbols))
    ]
    missing = [s for s in symbols if s not in weights]
    if missing:
        shown = ", ".join(map(repr, missing[:10])) + (", ..." if len(missing) > 10 else "")
        errors.append(("params.weights", f"no weight for {len(missing)} symbol(s): {shown}"))
    if errors:
        raise ConfigError("per_symbol weights must name each symbol of the portfolio", errors)
    return np.array([float(weights[s]) for s in symbols], dtype=np.float64)


class EqualWeightParams(Params):
    gross: Float = _gross_field()


@portfolio_strategy
class EqualWeight(PortfolioStrategy[EqualWeightParams]):
    name = "equal_weight"
    description = "gross / m on each of the m symbols tradable (listed) at the bar."
    Params = EqualWeightParams

    @classmethod
    def target(
        cls, f: Mapping[str, np.ndarray], p: EqualWeightParams, universe: Universe
    ) -> np.ndarray:
        out = np.empty((universe.n, universe.n_symbols), dtype=np.float64)
        equal_weight_nb(universe.tradable, float(p.gross), out)
        return out


class InverseVolParams(Params):
    lookback: Int = Field(
        60, ge=2, le=100_000, description="Bars of log returns behind each symbol's volatility."
    )
    gross: Float = _gross_field()


@portfolio_strategy
class InverseVol(PortfolioStrategy[InverseVolParams]):
    name = "inverse_vol"
    description = (
        "Weights proportional to 1 / volatility (rolling std of the symbol's own log returns over "
        "`lookback` bars), over the tradable symbols with a known, positive volatility."
    )
    Params = InverseVolParams

    @classmethod
    def features(cls, p: InverseVolParams) -> dict[str, FeatureSpec]:
        return {
            "vol": FeatureSpec(name="rolling_vol", params={"window": p.lookback, "source": "close"})
        }

    @classmethod
    def target(
        cls, f: Mapping[str, np.ndarray], p: InverseVolParams, universe: Universe
    ) -> np.ndarray:
        out = np.empty((universe.n, universe.n_symbols), dtype=np.float64)
        inverse_vol_nb(f["vol"], universe.tradable, float(p.gross), out)
        return out


class XsMomentumParams(Params):
    lookback: Int = Field(
        120, ge=1, le=100_000, description="Bars of the trailing return each symbol is ranked by."
    )
    top: Int = Field(3, ge=1, le=5_000, description="Symbols held long: the best `top` returns.")
    bottom: Int = Field(
        0, ge=0, le=5_000, description="Symbols held short: the worst `bottom` (0: long only)."
    )
    gross: Float = _gross_field()


@portfolio_strategy
class XsMomentum(PortfolioStrategy[XsMomentumParams]):
    name = "xs_momentum"
    description = (
        "Cross-sectional momentum: rank the tradable symbols by their trailing return over "
        "`lookback` own bars; long the top `top` equally, short the bottom `bottom` equally "
        "(ties by symbol order); flat where fewer than top + bottom are ranked."
    )
    Params = XsMomentumParams

    @classmethod
    def features(cls, p: XsMomentumParams) -> dict[str, FeatureSpec]:
        return {
            "momentum": FeatureSpec(
                name="trailing_return", params={"window": p.lookback, "source": "close"}
            )
        }

    @classmethod
    def target(
        cls, f: Mapping[str, np.ndarray], p: XsMomentumParams, universe: Universe
    ) -> np.ndarray:
        if p.top + p.bottom > universe.n_symbols:
            raise ConfigError(
                "invalid parameters for portfolio strategy 'xs_momentum'",
                [("params", f"top ({p.top}) + bottom ({p.bottom}) exceeds the portfolio's "
                  f"{universe.n_symbols} symbol(s)")],
            )  # fmt: skip
        out = np.empty((universe.n, universe.n_symbols), dtype=np.float64)
        order = np.empty(universe.n_symbols, dtype=np.int64)
        rank_long_short_nb(
            f["momentum"], universe.tradable, p.top, p.bottom, float(p.gross), order, out
        )
        return out
