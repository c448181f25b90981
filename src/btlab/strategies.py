"""The strategy registry: parameterized maps from SHIFTED features to a per-bar target.

A strategy declares its parameter model (with its constraints), the features it needs (each
an alias and a `FeatureSpec`) and maps those features, as `FeatureStore.get` hands them out
(shifted one bar, SPEC §2), to `target[i]`: the wanted position as a signed fraction of
equity, decided before bar `i` opens. Where any input it needs is NaN (warm-up) the target
is 0. `compute_target` checks the result: float64, finite, length n.

    @strategy
    class MyStrategy(Strategy[MyParams]):
        name = "my_strategy"
        description = "..."
        Params = MyParams
        @classmethod
        def features(cls, p): return {"ma": FeatureSpec(name="sma", params={"window": p.window})}
        @classmethod
        def target(cls, f, p, n): return np.where(f["ma"] < ..., p.size, 0.0)

or, the same as a plain function (`function_strategy` compiles it to such a class):

    @strategy(features={"ma": lambda p: {"name": "sma", "params": {"window": p.window}}})
    def my_strategy(f, window: int = 20, size: float = 1.0) -> np.ndarray:
        return np.where(f["ma"] < ..., size, 0.0)

A strategy registered from user code carries the hash of its code (btlab.code_identity).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, ClassVar, Generic, Literal, TypeVar, overload

import numpy as np
from pydantic import BaseModel, Field, model_validator

from .code_identity import UserCode, register, user_code
from .errors import ConfigError
from .features import FeatureSpec, FeatureStore, Float, Int, Params, validate_params
from .function_params import FeatureDecl, Features, feature_spec, params_model
from .kernels.signals import cross_target_nb, hold_state_nb

__all__ = [
    "FunctionStrategy",
    "Strategy",
    "checked_target",
    "compute_target",
    "function_strategy",
    "list_strategies",
    "required_features",
    "resolve_strategy",
    "resolve_strategy_params",
    "strategy",
    "strategy_code",
]

P = TypeVar("P", bound=BaseModel)


class Strategy(Generic[P]):
    """Base of every strategy; subclass it and register the subclass with `@strategy`."""

    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[BaseModel]]

    @classmethod
    def features(cls, p: P) -> dict[str, FeatureSpec]:
        """The features the strategy reads: alias -> spec (none by default)."""
        return {}

    @classmethod
    def target(cls, f: Mapping[str, np.ndarray], p: P, n: int) -> np.ndarray:
        """`target[i]` from the shifted features `f` (alias -> array of length n)."""
        raise NotImplementedError


_REGISTRY: dict[str, type[Strategy[Any]]] = {}
#: The code of each strategy registered from user code (SPEC §9); built-ins have none.
_CODE: dict[str, UserCode] = {}

T = TypeVar("T")


@overload
def strategy(obj: T, /) -> T: ...


@overload
def strategy(
    *,
    name: str | None = None,
    description: str | None = None,
    features: Mapping[str, FeatureDecl] | None = None,
) -> Callable[[T], T]: ...


def strategy(
    obj: Any = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    features: Mapping[str, FeatureDecl] | None = None,
) -> Any:
    """Register a strategy: a `Strategy` subclass (`@strategy` on the class), or a plain function
    `def f(features, param: type = default, ...) -> target` (`@strategy`, or
    `@strategy(name=..., description=..., features={alias: spec or lambda p: spec})`), which
    compiles to a `Strategy` subclass (`function_strategy`). Returns what it decorates.

    From user code (anything outside btlab) the strategy carries its code's hash (SPEC §9);
    registering a name again replaces the entry (a RegistrationWarning where the code changed),
    except a built-in's name, which is a ValueError.
    """

    def register(target: Any) -> Any:
        if isinstance(target, type):
            if (name, description, features) != (None, None, None):
                raise TypeError(
                    f"@strategy on class {target.__name__} takes no arguments: set name, "
                    "description and features() on the class"
                )
            _register(target, user_code(target))
        elif inspect.isfunction(target):
            cls = function_strategy(target, name=name, description=description, features=features)
            _register(cls, user_code(target, *_declared_roots(cls.declared)))
        else:
            raise TypeError(
                f"@strategy registers a Strategy subclass or a function, not {target!r}"
            )
        return target

    return register if obj is None else register(obj)


def _register(cls: type[Strategy[Any]], code: UserCode | None) -> None:
    for attr in ("name", "description", "Params"):
        if not hasattr(cls, attr):
            raise TypeError(f"strategy {cls.__name__} lacks {attr}")
    register("strategy", cls.name, cls, code, _REGISTRY, _CODE)


def strategy_code(name: str) -> str | None:
    """The hash of the code of strategy `name` as it is now, or None for a built-in."""
    code = _CODE.get(name)
    return None if code is None else code.digest()


def _lookup(name: str) -> type[Strategy[Any]]:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ConfigError(
            "unknown strategy", [("name", f"unknown strategy {name!r}; known strategies: {known}")]
        ) from None


def resolve_strategy(name: str, params: Mapping[str, Any]) -> tuple[type[Strategy[Any]], BaseModel]:
    """The registered strategy class and its validated parameter model (ConfigError if bad)."""
    cls = _lookup(name)
    return cls, validate_params("strategy", name, cls.Params, params)


def resolve_strategy_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The strategy's parameters validated, with defaults filled in, as JSON-ready values.

    Raises ConfigError (a ValueError) for an unknown name (listing the known ones) or for bad
    parameters (naming each field, e.g. "fast (50) must be less than slow (10)").
    """
    dumped: dict[str, Any] = resolve_strategy(name, params)[1].model_dump(mode="json")
    return dumped


def list_strategies() -> list[dict[str, Any]]:
    """Every registered strategy: name, description, the JSON schema of its parameters and
    the features it reads with its default parameters."""
    out = []
    for name in sorted(_REGISTRY):
        cls = _REGISTRY[name]
        defaults = cls.features(cls.Params())
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


def required_features(name: str, params: Mapping[str, Any]) -> list[FeatureSpec]:
    """The distinct features the strategy reads with these parameters, in declared order."""
    cls, p = resolve_strategy(name, params)
    seen: dict[str, FeatureSpec] = {}
    for spec in cls.features(p).values():
        seen.setdefault(spec.key(), spec)
    return list(seen.values())


def compute_target(store: FeatureStore, name: str, params: Mapping[str, Any], n: int) -> np.ndarray:
    """The strategy's target (float64, finite, length n) from the store's shifted features."""
    cls, p = resolve_strategy(name, params)
    if store.n != n:
        raise ValueError(f"the feature store holds {store.n} bars, the target asks for {n}")
    f = {alias: store.get(spec) for alias, spec in cls.features(p).items()}
    return checked_target(name, cls.target(f, p, n), n)


def checked_target(name: str, result: Any, n: int) -> np.ndarray:
    """Strategy `name`'s result as float64, or a ValueError unless it is finite and length n."""
    target: np.ndarray = np.asarray(result, dtype=np.float64)
    if target.shape != (n,):
        raise ValueError(f"strategy {name!r} returned shape {target.shape}, expected ({n},)")
    if not np.isfinite(target).all():
        bad = int(np.flatnonzero(~np.isfinite(target))[0])
        raise ValueError(f"strategy {name!r} returned a non-finite target at bar {bad}")
    return target


# --------------------------------------------------------------------------- function strategies


class FunctionStrategy(Strategy[Any]):
    """A strategy written as a plain function: `function(Features, **params) -> target`, its
    parameter model inferred from the signature, its features from `declared`."""

    function: ClassVar[Callable[..., Any]]
    declared: ClassVar[Mapping[str, FeatureDecl]]

    @classmethod
    def features(cls, p: Any) -> dict[str, FeatureSpec]:
        return {alias: feature_spec(cls.name, alias, d, p) for alias, d in cls.declared.items()}

    @classmethod
    def target(cls, f: Mapping[str, np.ndarray], p: Any, n: int) -> np.ndarray:
        params = {field: getattr(p, field) for field in type(p).model_fields}
        return np.asarray(cls.function(Features(f, n), **params))


def function_strategy(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    features: Mapping[str, FeatureDecl] | None = None,
) -> type[FunctionStrategy]:
    """The `Strategy` subclass of a plain function (not registered): its name is `name` or the
    function's, its description `description` or the docstring's first paragraph; the
    parameters after the first, each with a type hint (int, float, bool, str, Literal[...],
    optionally `Annotated[T, Field(...)]`) and a default, make its parameter model."""
    strategy_name = name or fn.__name__
    doc = inspect.getdoc(fn) or ""
    declared = {
        alias: d if callable(d) else feature_spec(strategy_name, alias, d, None)
        for alias, d in (features or {}).items()
    }
    namespace = {
        "__module__": fn.__module__,
        "__qualname__": fn.__qualname__,
        "__doc__": doc,
        "name": strategy_name,
        "description": description if description is not None else doc.split("\n\n")[0],
        "Params": params_model(fn, strategy_name),
        "function": staticmethod(fn),
        "declared": declared,
    }
    cls: type[FunctionStrategy] = type(fn.__name__, (FunctionStrategy,), namespace)
    cls.features(cls.Params())  # the declared features with the defaults: errors show here
    return cls


def _declared_roots(declared: Mapping[str, FeatureDecl]) -> list[Any]:
    """What a function strategy's features add to its code: the functions, and the fixed specs
    by their key."""
    return [d if callable(d) else f"{alias}={d.key()}" for alias, d in declared.items()]  # type: ignore[union-attr]


# --------------------------------------------------------------------------- helpers

MaKind = Literal["sma", "ema"]


# The two helpers below make specs of built-in features, whose registry entries cannot be
# replaced, and FeatureSpec is frozen: each distinct spec is made (and validated) once, not once
# per combination of a sweep (~20 us each).


@lru_cache(maxsize=16_384)
def ma_spec(kind: str, window: int, source: str = "close") -> FeatureSpec:
    """A moving-average feature spec: `sma` or `ema` (span) of `source` over `window` bars."""
    return FeatureSpec(name=kind, params={"window": window, "source": source})


@lru_cache(maxsize=64)
def price_spec(source: str = "close") -> FeatureSpec:
    """The (shifted) price column: at row i, the value of bar i - 1."""
    return FeatureSpec(name="price", params={"source": source})


def known(*arrays: np.ndarray) -> np.ndarray:
    """True where every array is finite (past its warm-up)."""
    ok = np.ones(arrays[0].shape[0], dtype=bool)
    for a in arrays:
        ok &= np.isfinite(a)
    return ok


#: Strategies whose target is `cross_target` of their two features (declared order: a, b).
CROSS_STRATEGIES = ("sma_cross", "ma_trend")


def cross_rule(
    name: str, params: Mapping[str, Any]
) -> tuple[FeatureSpec, FeatureSpec, float, float] | None:
    """`(a, b, long_value, short_value)` of a crossover strategy: its target is
    `cross_target(a, b, long_value, short_value)` of the two shifted features. None for any
    other strategy. Lets fused kernels (sweeps, permutation tests) run the rule themselves."""
    if name not in CROSS_STRATEGIES:
        return None
    cls, p = resolve_strategy(name, params)
    specs = list(cls.features(p).values())
    if len(specs) != 2:
        return None
    size = float(p.size)  # type: ignore[attr-defined]
    return specs[0], specs[1], size, -size if p.long_short else 0.0  # type: ignore[attr-defined]


def cross_target(a: np.ndarray, b: np.ndarray, long_value: float, short_value: float) -> np.ndarray:
    """`long_value` where `a > b`, `short_value` where `a < b`, 0 where equal or either is NaN:
    `np.where(a > b, long, np.where(a < b, short, 0))` with the warm-up zeroed, in one pass
    (`kernels.signals.cross_target_nb`, the kernel the sweep runs too)."""
    out = np.empty(a.shape[0], dtype=np.float64)
    cross_target_nb(a, b, float(long_value), float(short_value), out)
    return out


def _size_field() -> Any:
    return Field(
        1.0,
        gt=0,
        le=100,
        description="Position size as a fraction of equity (1.0: fully invested).",
    )


def _long_short_field() -> Any:
    return Field(False, description="Go short where the rule says so instead of staying flat.")


def _ma_field() -> Any:
    return Field(
        "sma", description="Moving average: 'sma' (simple) or 'ema' (exponential, span = window)."
    )


# --------------------------------------------------------------------------- built-in strategies


class BuyAndHoldParams(Params):
    size: Float = _size_field()


@strategy
class BuyAndHold(Strategy[BuyAndHoldParams]):
    name = "buy_and_hold"
    description = "Hold `size` from the first bar to the last."
    Params = BuyAndHoldParams

    @classmethod
    def target(cls, f: Mapping[str, np.ndarray], p: BuyAndHoldParams, n: int) -> np.ndarray:
        return np.full(n, p.size, dtype=np.float64)


class SmaCrossParams(Params):
    fast: Int = Field(10, ge=1, le=100_000, description="Bars of the fast moving average.")
    slow: Int = Field(50, ge=2, le=100_000, description="Bars of the slow moving average (> fast).")
    ma: MaKind = _ma_field()
    long_short: bool = _long_short_field()
    size: Float = _size_field()

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SmaCrossParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be less than slow ({self.slow})")
        return self


@strategy
class SmaCross(Strategy[SmaCrossParams]):
    name = "sma_cross"
    description = (
        "Long while the fast moving average is above the slow one; below it flat, or short with "
        "long_short (equal: flat). Both averages are of the close, as known before the bar opens."
    )
    Params = SmaCrossParams

    @classmethod
    def features(cls, p: SmaCrossParams) -> dict[str, FeatureSpec]:
        return {"fast": ma_spec(p.ma, p.fast), "slow": ma_spec(p.ma, p.slow)}

    @classmethod
    def target(cls, f: Mapping[str, np.ndarray], p: SmaCrossParams, n: int) -> np.ndarray:
        return cross_target(f["fast"], f["slow"], p.size, -p.size if p.long_short else 0.0)


class MaTrendParams(Params):
    window: Int = Field(200, ge=1, le=100_000, description="Bars of the moving average.")
    ma: MaKind = _ma_field()
    long_short: bool = _long_short_field()
    size: Float = _size_field()


@strategy
class MaTrend(Strategy[MaTrendParams]):
    name = "ma_trend"
    description = (
        "Long while the previous close is above its moving average; below it flat, or short with "
        "long_short (equal: flat)."
    )
    Params = MaTrendParams

    @classmethod
    def features(cls, p: MaTrendParams) -> dict[str, FeatureSpec]:
        return {"price": price_spec("close"), "ma": ma_spec(p.ma, p.window)}

    @classmethod
    def target(cls, f: Mapping[str, np.ndarray], p: MaTrendParams, n: int) -> np.ndarray:
        return cross_target(f["price"], f["ma"], p.size, -p.size if p.long_short else 0.0)


class ChannelBreakoutParams(Params):
    entry_window: Int = Field(
        20, ge=2, le=100_000, description="Bars of the entry channel (the close included)."
    )
    exit_window: Int = Field(
        10, ge=2, le=100_000, description="Bars of the exit channel (<= entry_window)."
    )
    long_short: bool = _long_short_field()
    size: Float = _size_field()

    @model_validator(mode="after")
    def _exit_within_entry(self) -> ChannelBreakoutParams:
        if self.exit_window > self.entry_window:
            raise ValueError(
                f"exit_window ({self.exit_window}) must be less than or equal to entry_window ({self.entry_window})"
            )
        return self


@strategy
class ChannelBreakout(Strategy[ChannelBreakoutParams]):
    name = "channel_breakout"
    description = (
        "Donchian breakout on closes: long after a close at the highest close of the last "
        "entry_window bars, held until a close at the lowest close of the last exit_window bars; "
        "shorts mirrored with long_short."
    )
    Params = ChannelBreakoutParams

    @classmethod
    def features(cls, p: ChannelBreakoutParams) -> dict[str, FeatureSpec]:
        specs = {
            "price": price_spec("close"),
            "entry_high": FeatureSpec(
                name="rolling_max", params={"window": p.entry_window, "source": "close"}
            ),
            "exit_low": FeatureSpec(
                name="rolling_min", params={"window": p.exit_window, "source": "close"}
            ),
        }
        if p.long_short:
            specs["entry_low"] = FeatureSpec(
                name="rolling_min", params={"window": p.entry_window, "source": "close"}
            )
            specs["exit_high"] = FeatureSpec(
                name="rolling_max", params={"window": p.exit_window, "source": "close"}
            )
        return specs

    @classmethod
    def target(cls, f: Mapping[str, np.ndarray], p: ChannelBreakoutParams, n: int) -> np.ndarray:
        price = f["price"]
        needed = [
            f[k]
            for k in (
                ("price", "entry_high", "exit_low", "entry_low", "exit_high")
                if p.long_short
                else ("price", "entry_high", "exit_low")
            )
        ]
        ok = known(*needed)
        with np.errstate(invalid="ignore"):
            enter_long = ok & (price >= f["entry_high"])
            exit_long = ~ok | (price <= f["exit_low"])
            if p.long_short:
                enter_short = ok & (price <= f["entry_low"])
                exit_short = ~ok | (price >= f["exit_high"])
            else:
                enter_short = np.zeros(n, dtype=bool)
                exit_short = np.ones(n, dtype=bool)
        state = hold_state_nb(enter_long, exit_long, enter_short, exit_short)
        return np.asarray(state * p.size, dtype=np.float64)


class RsiReversionParams(Params):
    window: Int = Field(14, ge=1, le=100_000, description="RSI length (Wilder smoothing).")
    lower: Float = Field(
        30.0, ge=0, le=100, description="Enter long when the RSI falls below this."
    )
    upper: Float = Field(
        70.0, ge=0, le=100, description="Exit when the RSI rises above this (> lower)."
    )
    size: Float = _size_field()

    @model_validator(mode="after")
    def _lower_below_upper(self) -> RsiReversionParams:
        if self.lower >= self.upper:
            raise ValueError(f"lower ({self.lower:g}) must be less than upper ({self.upper:g})")
        return self


@strategy
class RsiReversion(Strategy[RsiReversionParams]):
    name = "rsi_reversion"
    description = "Mean reversion: long once the RSI of the close falls below lower, held until it rises above upper."
    Params = RsiReversionParams

    @classmethod
    def features(cls, p: RsiReversionParams) -> dict[str, FeatureSpec]:
        return {"rsi": FeatureSpec(name="rsi", params={"window": p.window, "source": "close"})}

    @classmethod
    def target(cls, f: Mapping[str, np.ndarray], p: RsiReversionParams, n: int) -> np.ndarray:
        rsi = f["rsi"]
        ok = known(rsi)
        with np.errstate(invalid="ignore"):
            enter_long = ok & (rsi < p.lower)
            exit_long = ~ok | (rsi > p.upper)
        never = np.zeros(n, dtype=bool)
        state = hold_state_nb(enter_long, exit_long, never, ~never)
        return np.asarray(state * p.size, dtype=np.float64)
