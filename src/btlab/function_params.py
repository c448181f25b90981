"""Parameter models and features of strategies written as plain functions (btlab.strategies).

`params_model(fn, what)` infers a function's parameter model: the parameters after the first,
each with a type hint (int, float, bool, str, Literal[...], optionally `Annotated[T,
Field(...)]` for constraints) and a default, make a `Params` model (pydantic `create_model`),
validated like any strategy's. `Features` is what the function's first argument receives;
`feature_spec` turns a declared feature (a spec, its JSON form, or a function of the
parameters returning either) into a `FeatureSpec`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import numpy as np
from pydantic import BaseModel, ValidationError, create_model

from .errors import ConfigError
from .features import FeatureSpec, Float, Int, Params, format_validation_error

__all__ = ["FeatureDecl", "Features", "feature_spec", "params_model"]

#: A feature a function strategy declares: a spec, its JSON form, or a function of the params.
FeatureDecl = FeatureSpec | Mapping[str, Any] | Callable[[Any], FeatureSpec | Mapping[str, Any]]


class Features(Mapping[str, np.ndarray]):
    """What a function strategy's first argument holds: the shifted features by alias, and `n`,
    the number of bars (the length of the target)."""

    def __init__(self, features: Mapping[str, np.ndarray], n: int) -> None:
        self._features = features
        self.n = n

    def __getitem__(self, alias: str) -> np.ndarray:
        try:
            return self._features[alias]
        except KeyError:
            known = ", ".join(sorted(self._features)) or "none"
            raise KeyError(f"no feature {alias!r} declared (declared: {known})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._features)

    def __len__(self) -> int:
        return len(self._features)


def feature_spec(strategy_name: str, alias: str, decl: FeatureDecl, p: Any) -> FeatureSpec:
    value = decl(p) if callable(decl) else decl
    if isinstance(value, FeatureSpec):
        return value
    if isinstance(value, Mapping):
        try:
            return FeatureSpec.model_validate(dict(value))
        except ValidationError as exc:
            raise ConfigError(
                f"strategy {strategy_name!r}: invalid feature {alias!r}",
                [(f"features.{alias}.{loc}", msg) for loc, msg in format_validation_error(exc)],
            ) from None
    raise TypeError(
        f"strategy {strategy_name!r}: feature {alias!r} must be a FeatureSpec or "
        f"{{'name': ..., 'params': {{...}}}}, got {type(value).__name__}"
    )


_PARAM_TYPES: dict[Any, Any] = {int: Int, float: Float, bool: bool, str: str}


def _param_type(hint: Any, where: str) -> Any:
    """The parameter model's type for a function strategy's type hint (TypeError if none)."""
    if get_origin(hint) is Annotated:
        base, *meta = get_args(hint)
        return Annotated.__class_getitem__((_param_type(base, where), *meta))
    if hint in _PARAM_TYPES:
        return _PARAM_TYPES[hint]
    args = get_args(hint)
    if get_origin(hint) is Literal and all(isinstance(a, str | int | bool) for a in args):
        return hint
    raise TypeError(
        f"{where}: unsupported type {hint!r}; use int, float, bool, str or Literal[...] "
        "(Annotated[int, Field(ge=1)] adds constraints)"
    )


def params_model(fn: Callable[..., Any], strategy_name: str) -> type[BaseModel]:
    """The parameter model of function strategy `strategy_name`, from its signature (TypeError
    naming the parameter where one has no default or an unsupported type)."""
    what = f"strategy {strategy_name!r} ({fn.__qualname__})"
    params = list(inspect.signature(fn).parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not params or params[0].kind not in positional:
        raise TypeError(
            f"{what}: the first argument receives the features: def {fn.__name__}(f, ...)"
        )
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception as exc:  # an annotation that does not evaluate: say which function
        raise TypeError(f"{what}: cannot read its type hints: {exc}") from None
    fields: dict[str, Any] = {}
    for param in params[1:]:
        where = f"{what}: parameter {param.name!r}"
        if param.kind not in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,
        ):
            raise TypeError(f"{where}: parameters are passed by name (no *args, **kwargs or /)")
        if param.default is inspect.Parameter.empty:
            raise TypeError(f"{where} needs a default value, e.g. {param.name}: int = 10")
        if param.name not in hints:
            raise TypeError(f"{where} needs a type hint: int, float, bool, str or Literal[...]")
        fields[param.name] = (_param_type(hints[param.name], where), param.default)
    model: type[BaseModel] = create_model(f"{fn.__name__}_params", __base__=Params, **fields)
    try:
        # pydantic trusts defaults: check them once here
        model.model_validate({name: default for name, (_, default) in fields.items()})
    except ValidationError as exc:
        raise TypeError(
            f"{what}: a default breaks its own type: "
            + "; ".join(f"{loc}: {msg}" for loc, msg in format_validation_error(exc))
        ) from None
    return model
