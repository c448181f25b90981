"""The feature registry: named, parameterized per-bar series computed from a dataset.

A feature function computes the RAW value at bar `i` from bars `0..i` (it never shifts). The
registry shifts every feature by one bar itself (SPEC §2): what a strategy sees at row `i` is
`raw[i - 1]`, computed from bars `0..i-1` only, and NaN at row 0. The only way out of the
registry is `FeatureStore.get`, which returns the shifted, read-only array, so no code path
hands a strategy an unshifted feature.

    @feature("sma", SmaParams, "Simple moving average of a price column.")
    def _sma(data: Dataset, p: SmaParams) -> np.ndarray:
        return sma_nb(column(data, p.source), p.window)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from .code_identity import UserCode, register, user_code
from .data import Dataset
from .errors import ConfigError, pydantic_message
from .hashing import canonical_json
from .kernels.indicators import (
    atr_nb,
    ema_into_nb,
    ema_nb,
    log_returns_nb,
    rolling_max_nb,
    rolling_min_nb,
    rolling_std_nb,
    rsi_nb,
    simple_returns_nb,
    sma_into_nb,
    sma_nb,
)
from .request_model import RequestModel

__all__ = [
    "FeatureSpec",
    "FeatureStore",
    "Float",
    "Int",
    "Params",
    "cache_key",
    "column",
    "extra_column",
    "feature",
    "feature_code",
    "format_validation_error",
    "has_user_features",
    "list_features",
    "raw_feature",
    "resolve_feature_params",
    "shift",
]

Column = Literal["open", "high", "low", "close", "volume", "adj_close"]
PriceColumn = Literal["open", "high", "low", "close", "adj_close"]

FeatureFn = Callable[[Dataset, Any], np.ndarray]
#: Writes a feature's raw values of the first `len(out)` bars into `out` (see `_Feature.into`).
IntoFn = Callable[[Dataset, Any, np.ndarray], None]
F = TypeVar("F", bound=FeatureFn)


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool | np.bool_):
        raise ValueError("expected a number, got a boolean")
    return value


#: Parameter types: the usual pydantic int / float, except that a boolean is not a number.
Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]


class Params(BaseModel):
    """Base of every feature's (and strategy's) parameter model: unknown fields are errors,
    types are strict as in the request (`RequestModel`) and floats finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


@dataclass(frozen=True)
class _Feature:
    name: str
    params: type[BaseModel]
    description: str
    fn: FeatureFn
    # The raw values of the first len(out) bars written into `out`, for the built-in kernels
    # with an `_into` form: the store writes them one bar on, which is the shift itself, so
    # the shifted array is the only one made (a feature is causal, so the raw values of a
    # prefix are the prefix of its raw values, bit for bit).
    into: IntoFn | None = None


_REGISTRY: dict[str, _Feature] = {}
#: The code of each feature registered from user code (SPEC §9); built-ins have none.
_CODE: dict[str, UserCode] = {}


def feature(
    name: str, params: type[BaseModel], description: str, *, into: IntoFn | None = None
) -> Callable[[F], F]:
    """Register `fn(data, p) -> raw array` as feature `name` with parameter model `params`
    (`into(data, p, out)`: the same raw values of the first `len(out)` bars, written into
    `out`, where a kernel can do that; the store then skips a copy).

    From user code (anything outside btlab) the feature carries its code's hash (SPEC §9), which
    joins the config hash of every run reading it and its cache key; registering a name again
    replaces the entry (a RegistrationWarning where the code changed), except a built-in's name,
    which is a ValueError."""

    def register_fn(fn: F) -> F:
        code = user_code(fn, params, *([] if into is None else [into]))
        register("feature", name, _Feature(name, params, description, fn, into), code,
                 _REGISTRY, _CODE)  # fmt: skip
        return fn

    return register_fn


def feature_code(name: str) -> str | None:
    """The hash of the code of feature `name` as it is now, or None for a built-in."""
    code = _CODE.get(name)
    return None if code is None else code.digest()


def has_user_features() -> bool:
    """Whether any feature was registered from user code."""
    return bool(_CODE)


def cache_key(spec: FeatureSpec) -> str:
    """The key a store keeps a feature under: its spec's key, with a user feature's code hash,
    so a store (or the service's shared cache) never serves values an earlier code computed."""
    code = feature_code(spec.name)
    return spec.key() if code is None else f"{spec.key()}|code:{code}"


def format_validation_error(exc: ValidationError) -> list[tuple[str, str]]:
    """(field, message) pairs of a parameter model's error, paths under `params`
    (`params.fast`); rules over several fields get the path `params` itself."""
    out = []
    for err in exc.errors():
        loc = ".".join(["params", *(str(p) for p in err["loc"])])
        out.append((loc, pydantic_message(err)))
    return out


def validate_params(
    kind: str, name: str, model: type[BaseModel], params: Mapping[str, Any]
) -> BaseModel:
    """`params` validated by `model`, or a ConfigError naming each bad field."""
    if not isinstance(params, Mapping):
        raise ConfigError(
            f"invalid parameters for {kind} {name!r}", [("params", "expected an object")]
        )
    try:
        return model.model_validate(dict(params))
    except ValidationError as exc:
        raise ConfigError(
            f"invalid parameters for {kind} {name!r}", format_validation_error(exc)
        ) from None


def _lookup(name: str) -> _Feature:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ConfigError(
            "unknown feature", [("name", f"unknown feature {name!r}; known features: {known}")]
        ) from None


def resolve_feature_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The feature's parameters validated, with defaults filled in, as JSON-ready values.

    Raises ConfigError (a ValueError) for an unknown name (listing the known ones) or for bad
    parameters (naming each field, e.g. "window: Input should be greater than or equal to 1").
    """
    spec = _lookup(name)
    dumped: dict[str, Any] = validate_params("feature", name, spec.params, params).model_dump(
        mode="json"
    )
    return dumped


class FeatureSpec(RequestModel):
    """One feature of the registry with its parameters (validated against the feature's schema)."""

    name: str = Field(description="A feature name from the registry (GET /registry).")
    params: dict[str, Any] = Field(default_factory=dict, description="The feature's parameters.")

    @model_validator(mode="after")
    def _check_registry(self) -> FeatureSpec:
        filled = resolve_feature_params(self.name, self.params)
        object.__setattr__(self, "params", filled)
        return self

    def key(self) -> str:
        """A canonical text key: the same feature and parameters give the same key."""
        try:  # flat scalar parameters (nearly every feature): keyed once per distinct value
            return _flat_key(self.name, tuple(sorted(self.params.items())))
        except TypeError:  # a list or mapping among the values: not hashable
            return f"{self.name}:{canonical_json(self.params)}"


@lru_cache(maxsize=65_536)
def _flat_key(name: str, items: tuple[tuple[str, Any], ...]) -> str:
    """`FeatureSpec.key` of flat parameters: a sweep asks for the same few hundred keys tens
    of thousands of times, and the canonical JSON costs ~10 us each."""
    return f"{name}:{canonical_json(dict(items))}"


def list_features() -> list[dict[str, Any]]:
    """Every registered feature: name, description and the JSON schema of its parameters."""
    return [
        {"name": f.name, "description": f.description, "params": f.params.model_json_schema()}
        for f in sorted(_REGISTRY.values(), key=lambda f: f.name)
    ]


def shift(raw: np.ndarray) -> np.ndarray:
    """The registry's +1 bar shift: `out[0] = NaN`, `out[i] = raw[i - 1]`; read-only."""
    out = np.empty(raw.shape[0], dtype=np.float64)
    if out.shape[0]:
        out[0] = np.nan
        out[1:] = raw[:-1]
    out.flags.writeable = False
    # A view of a read-only base cannot be made writeable again, so no strategy can alter
    # a feature that the store (and the service's shared cache) hands to later runs.
    view: np.ndarray = out.view()
    return view


def column(data: Dataset, source: str) -> np.ndarray:
    """A source column of the dataset as float64; `adj_close` must exist where asked for."""
    if source == "adj_close":
        if data.adj_close is None:
            raise ConfigError(
                "feature needs adj_close", [("source", "the dataset has no adj_close column")]
            )
        return np.asarray(data.adj_close, dtype=np.float64)
    if source not in ("open", "high", "low", "close", "volume"):
        raise ConfigError("unknown source column", [("source", f"no column {source!r}")])
    arr: np.ndarray = np.asarray(getattr(data, source), dtype=np.float64)
    return arr


def extra_column(data: Dataset, name: str) -> np.ndarray:
    """The dataset's extra column `name` (float64), or a ConfigError listing the ones it has."""
    extra = getattr(data, "extra", {})
    if name not in extra:
        have = ", ".join(repr(c) for c in extra) or "none"
        raise ConfigError(
            "unknown dataset column",
            [("params.name", f"the dataset has no extra column {name!r}; its extra columns: "
              f"{have} (open, high, low, close, volume and adj_close are read with `price`)")],
        )  # fmt: skip
    values: np.ndarray = np.asarray(extra[name], dtype=np.float64)
    return values


class FeatureStore:
    """Shifted features of one dataset, each distinct (name, params) computed once.

    `cache` (e.g. the service's LRU) shares results across stores and runs; its keys then
    hold the dataset's content hash (`data.hash`) with the feature key, so it may be shared
    by stores of different datasets. `computed` counts the raw computations this store did.
    """

    def __init__(self, data: Dataset, cache: MutableMapping[str, np.ndarray] | None = None) -> None:
        self.data = data
        self.n = int(np.asarray(data.close).shape[0])
        self._shared = cache
        self._prefix = ""
        if cache is not None:
            digest = getattr(data, "hash", None)
            if not isinstance(digest, str) or not digest:
                raise ValueError(
                    "a shared feature cache needs the dataset's content hash (data.hash)"
                )
            self._prefix = f"{digest}|"
        self._local: dict[str, np.ndarray] = {}
        self.computed = 0

    def get(self, spec: FeatureSpec) -> np.ndarray:
        """The shifted feature (`value[i] = raw[i - 1]`, NaN at 0), read-only, length n."""
        key = cache_key(spec)
        arr = self._local.get(key)
        if arr is not None:
            return arr
        if self._shared is not None:
            arr = self._shared.get(self._prefix + key)
            if arr is not None and arr.shape != (self.n,):
                arr = None
        if arr is None:
            arr = self._shifted(spec)
            self.computed += 1
            if self._shared is not None:
                self._shared[self._prefix + key] = arr
        self._local[key] = arr
        return arr

    def _shifted(self, spec: FeatureSpec) -> np.ndarray:
        """`shift(raw)`, for a kernel with an `into` form written in place one bar on."""
        f = _lookup(spec.name)
        if f.into is None or self.n == 0:
            return shift(self._raw(spec))
        p = validate_params("feature", spec.name, f.params, spec.params)
        out = np.empty(self.n, dtype=np.float64)
        out[0] = np.nan
        f.into(self.data, p, out[1:])
        out.flags.writeable = False
        view: np.ndarray = out.view()  # read-only for good, as `shift` makes it
        return view

    def _raw(self, spec: FeatureSpec) -> np.ndarray:
        return raw_feature(self.data, spec)


def raw_feature(data: Dataset, spec: FeatureSpec) -> np.ndarray:
    """The UNSHIFTED feature over the dataset's bars (float64, one value a bar), for the
    stores only: each shifts it before anything reads it (`FeatureStore` by one bar, the
    portfolio store onto the union clock). Never hand its result to a strategy."""
    f = _lookup(spec.name)
    p = validate_params("feature", spec.name, f.params, spec.params)
    n = int(np.asarray(data.close).shape[0])
    raw = np.asarray(f.fn(data, p), dtype=np.float64)
    if raw.shape != (n,):
        raise ValueError(f"feature {spec.name!r} returned shape {raw.shape}, expected ({n},)")
    return raw


# --------------------------------------------------------------------------- built-in features


class PriceParams(Params):
    source: Column = Field(
        "close", description="The column: open, high, low, close, volume or adj_close."
    )


class WindowParams(Params):
    window: Int = Field(20, ge=1, le=100_000, description="Bars in the window.")
    source: PriceColumn = Field("close", description="The price column it is computed on.")


class EmaParams(Params):
    window: Int = Field(
        20, ge=1, le=100_000, description="Span: alpha = 2 / (window + 1); NaN for window - 1 bars."
    )
    source: PriceColumn = Field("close", description="The price column it is computed on.")


class ReturnsParams(Params):
    source: PriceColumn = Field("close", description="The price column it is computed on.")


class TrailingReturnParams(Params):
    window: Int = Field(
        20, ge=1, le=100_000, description="Bars back the return is measured from (lookback)."
    )
    source: PriceColumn = Field("close", description="The price column it is computed on.")


class VolParams(Params):
    window: Int = Field(
        20, ge=2, le=100_000, description="Bars of log returns in the window (ddof = 1)."
    )
    source: PriceColumn = Field("close", description="The price column it is computed on.")


class MaxParams(Params):
    window: Int = Field(
        20, ge=1, le=100_000, description="Bars in the window (the current bar included)."
    )
    source: Column = Field("high", description="The column whose highest value is taken.")


class MinParams(Params):
    window: Int = Field(
        20, ge=1, le=100_000, description="Bars in the window (the current bar included)."
    )
    source: Column = Field("low", description="The column whose lowest value is taken.")


class RsiParams(Params):
    window: Int = Field(
        14, ge=1, le=100_000, description="Wilder smoothing length: alpha = 1 / window."
    )
    source: PriceColumn = Field("close", description="The price column it is computed on.")


class ColumnParams(Params):
    name: str = Field(
        "signal", min_length=1, max_length=200,
        description="The dataset's extra column, by name (as spelled in the file).",
    )  # fmt: skip


class AtrParams(Params):
    window: Int = Field(
        14, ge=1, le=100_000, description="Wilder smoothing length: alpha = 1 / window."
    )


@feature(
    "price",
    PriceParams,
    "A column of the dataset itself (shifted like every feature: the previous bar's value).",
)
def _price(data: Dataset, p: PriceParams) -> np.ndarray:
    return column(data, p.source)


@feature(
    "column",
    ColumnParams,
    "An extra numeric column of the dataset (beyond OHLCV), by name; shifted like every "
    "feature: the previous bar's value.",
)
def _column(data: Dataset, p: ColumnParams) -> np.ndarray:
    return extra_column(data, p.name)


def _sma_into(data: Dataset, p: WindowParams, out: np.ndarray) -> None:
    sma_into_nb(column(data, p.source)[: out.shape[0]], p.window, out)


@feature(
    "sma",
    WindowParams,
    "Simple moving average over `window` bars (rolling(window).mean()).",
    into=_sma_into,
)
def _sma(data: Dataset, p: WindowParams) -> np.ndarray:
    return np.asarray(sma_nb(column(data, p.source), p.window))


def _ema_into(data: Dataset, p: EmaParams, out: np.ndarray) -> None:
    ema_into_nb(column(data, p.source)[: out.shape[0]], p.window, out)


@feature(
    "ema",
    EmaParams,
    "Exponential moving average, span `window` (ewm(span, adjust=False, min_periods=span)).",
    into=_ema_into,
)
def _ema(data: Dataset, p: EmaParams) -> np.ndarray:
    return np.asarray(ema_nb(column(data, p.source), p.window))


@feature(
    "returns", ReturnsParams, "Simple return of the bar: x[i] / x[i-1] - 1 (NaN at the first bar)."
)
def _returns(data: Dataset, p: ReturnsParams) -> np.ndarray:
    return np.asarray(simple_returns_nb(column(data, p.source)))


@feature(
    "trailing_return",
    TrailingReturnParams,
    "Return over the last `window` bars: x[i] / x[i - window] - 1 (NaN for the first `window` bars).",
)
def _trailing_return(data: Dataset, p: TrailingReturnParams) -> np.ndarray:
    x = column(data, p.source)
    out = np.full(x.shape[0], np.nan)
    if p.window < x.shape[0]:
        out[p.window :] = x[p.window :] / x[: x.shape[0] - p.window] - 1.0
    return out


@feature(
    "log_returns",
    ReturnsParams,
    "Log return of the bar: log(x[i] / x[i-1]) (NaN at the first bar).",
)
def _log_returns(data: Dataset, p: ReturnsParams) -> np.ndarray:
    return np.asarray(log_returns_nb(column(data, p.source)))


@feature(
    "rolling_vol",
    VolParams,
    "Rolling standard deviation (ddof 1) of log returns over `window` bars, per bar (not annualized).",
)
def _rolling_vol(data: Dataset, p: VolParams) -> np.ndarray:
    return np.asarray(rolling_std_nb(log_returns_nb(column(data, p.source)), p.window, 1))


@feature(
    "rolling_max",
    MaxParams,
    "Highest value of `source` over the last `window` bars (upper channel).",
)
def _rolling_max(data: Dataset, p: MaxParams) -> np.ndarray:
    return np.asarray(rolling_max_nb(column(data, p.source), p.window))


@feature(
    "rolling_min",
    MinParams,
    "Lowest value of `source` over the last `window` bars (lower channel).",
)
def _rolling_min(data: Dataset, p: MinParams) -> np.ndarray:
    return np.asarray(rolling_min_nb(column(data, p.source), p.window))


@feature(
    "rsi",
    RsiParams,
    "Relative strength index, Wilder smoothing (0..100; first value at bar `window`).",
)
def _rsi(data: Dataset, p: RsiParams) -> np.ndarray:
    return np.asarray(rsi_nb(column(data, p.source), p.window))


@feature(
    "atr", AtrParams, "Average true range, Wilder smoothing (first value at bar `window - 1`)."
)
def _atr(data: Dataset, p: AtrParams) -> np.ndarray:
    return np.asarray(
        atr_nb(column(data, "high"), column(data, "low"), column(data, "close"), p.window)
    )
