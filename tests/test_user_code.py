"""User code in the config hash (SPEC §9) and strategies written as plain functions.

Each test registers into copies of the registries (the `registries` fixture), so what it
registers is gone afterwards and the registries stay as shipped for the other tests.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, Literal

import numpy as np
import pytest
from pydantic import Field

import btlab
from btlab import features, portfolio_strategies, strategies
from btlab.code_identity import RegistrationWarning
from btlab.identity import code_identity
from btlab.run_cache import RunCache

DATA = {"bars": 400, "seed": 3}
BASE = {"data": DATA, "validation": {"enabled": False}}


@pytest.fixture(autouse=True)
def registries(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (strategies, features, portfolio_strategies):
        monkeypatch.setattr(module, "_REGISTRY", dict(module._REGISTRY))
        monkeypatch.setattr(module, "_CODE", dict(module._CODE))


class Modules:
    """Writes user modules to files and imports them, each version from its own file under the
    same module name (as a module edited and imported again)."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folder = folder
        self.monkeypatch = monkeypatch
        self.count = 0

    def load(self, source: str, name: str = "user_strategies") -> ModuleType:
        self.count += 1
        path = self.folder / f"{name}_v{self.count}.py"
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        self.monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return module


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Modules:
    return Modules(tmp_path, monkeypatch)


def request(name: str, **params: Any) -> dict[str, Any]:
    return {**BASE, "strategy": {"name": name, "params": params}}


def chash(name: str, **params: Any) -> str:
    return btlab.resolve_config(request(name, **params))[2]


CROSS = """
import numpy as np
import btlab
from btlab.strategies import cross_target


@btlab.strategy(features={{
    "fast": lambda p: {{"name": "sma", "params": {{"window": p.fast}}}},
    "slow": lambda p: {{"name": "sma", "params": {{"window": p.slow}}}},
}})
def user_cross(f, fast: int = 10, slow: int = 50, long_short: bool = False) -> np.ndarray:
    return cross_target(f["fast"], f["slow"], {size}, -{size} if long_short else 0.0)
"""


def test_built_in_requests_carry_no_code() -> None:
    config = btlab.resolve_config(request("sma_cross", fast=5, slow=20))[0]
    assert code_identity(config) == {}
    assert "code" not in btlab.pipeline.hashed_request(config, btlab.pipeline.run_identity(
        config, btlab.resolve_config(request("sma_cross"))[1]))  # fmt: skip


def test_editing_a_strategy_changes_the_config_hash(modules: Modules) -> None:
    modules.load(CROSS.format(size="1.0"))
    before = chash("user_cross", fast=5, slow=20)
    first = btlab.run(request("user_cross", fast=5, slow=20))
    with pytest.warns(RegistrationWarning, match="'user_cross' registered again with different"):
        modules.load(CROSS.format(size="0.5"))
    after = chash("user_cross", fast=5, slow=20)
    second = btlab.run(request("user_cross", fast=5, slow=20))
    assert before != after and first.config_hash == before and second.config_hash == after
    assert not np.array_equal(first.equity["equity"], second.equity["equity"])


def test_identical_code_registered_again_is_silent_and_keeps_the_hash(modules: Modules) -> None:
    modules.load(CROSS.format(size="1.0"))
    before = chash("user_cross")
    modules.load(CROSS.format(size="1.0"))  # no warning: pytest makes any warning an error
    assert chash("user_cross") == before
    assert set(code_identity(btlab.resolve_config(request("user_cross"))[0])) == {
        "strategy:user_cross"
    }


HELPER = """
import numpy as np
import btlab

LEVEL = {level}


def level() -> float:
    return LEVEL * {factor}


@btlab.strategy
def user_level(f, scale: float = 1.0) -> np.ndarray:
    return np.full(f.n, level() * scale)
"""


def test_a_helper_or_constant_the_strategy_calls_changes_the_hash(modules: Modules) -> None:
    modules.load(HELPER.format(level="0.5", factor="1.0"))
    base = chash("user_level")
    with pytest.warns(RegistrationWarning):
        modules.load(HELPER.format(level="0.5", factor="0.5"))  # the helper's body
    helper_edited = chash("user_level")
    with pytest.warns(RegistrationWarning):
        modules.load(HELPER.format(level="0.25", factor="0.5"))  # a module constant it reads
    constant_edited = chash("user_level")
    assert len({base, helper_edited, constant_edited}) == 3


def test_a_helper_redefined_without_registering_again_changes_the_hash() -> None:
    """A notebook re-runs the helper's cell only: the strategy calls the new helper, so its
    hash follows (the digest is taken when the request is hashed, not at registration).
    exec'd code has no source, so this also covers the bytecode fallback."""
    namespace: dict[str, Any] = {"__name__": "notebook"}
    exec("import numpy as np\nimport btlab\ndef level():\n    return 0.5\n", namespace)
    exec(
        "@btlab.strategy\ndef nb_level(f, scale: float = 1.0):\n"
        "    return np.full(f.n, level() * scale)\n",
        namespace,
    )
    before = chash("nb_level")
    first = btlab.run(request("nb_level"))
    exec("def level():\n    return 0.25\n", namespace)
    after = chash("nb_level")
    second = btlab.run(request("nb_level"))
    assert before != after
    assert not np.array_equal(first.equity["equity"], second.equity["equity"])


def test_a_built_in_name_cannot_be_taken_by_user_code() -> None:
    with pytest.raises(ValueError, match="'sma_cross' is already registered \\(a built-in\\)"):

        @btlab.strategy
        def sma_cross(f, fast: int = 10) -> np.ndarray:
            return np.zeros(f.n)

    with pytest.raises(ValueError, match="feature 'sma' is already registered \\(a built-in\\)"):

        @btlab.feature("sma", features.WindowParams, "mine")
        def _sma(data: btlab.Dataset, p: features.WindowParams) -> np.ndarray:
            return np.zeros(len(data.close))

    assert strategies._REGISTRY["sma_cross"] is strategies.SmaCross


FEATURE = """
import numpy as np
import btlab
from btlab.features import Int, Params, column


class DriftParams(Params):
    window: Int = 5


@btlab.feature("user_drift", DriftParams, "close minus the close `window` bars back")
def _drift(data, p):
    x = column(data, "close")
    out = np.full(x.shape[0], np.nan)
    out[p.window:] = (x[p.window:] - x[:-p.window]) * {sign}
    return out


@btlab.strategy(features={{"drift": lambda p: {{"name": "user_drift", "params": {{"window": p.window}}}}}})
def user_drift(f, window: int = 5) -> np.ndarray:
    d = f["drift"]
    return np.where(np.isfinite(d) & (d > 0), 1.0, 0.0)
"""


def test_the_run_cache_never_serves_a_feature_of_earlier_code(modules: Modules) -> None:
    cache = RunCache()
    modules.load(FEATURE.format(sign="1.0"))
    first = btlab.run(request("user_drift"), cache=cache)
    assert "feature:user_drift" in code_identity(first.config)
    with pytest.warns(RegistrationWarning, match="feature 'user_drift'"):
        modules.load(FEATURE.format(sign="-1.0"))
    second = btlab.run(request("user_drift"), cache=cache)
    fresh = btlab.run(request("user_drift"))
    assert second.config_hash != first.config_hash
    assert np.array_equal(second.equity["equity"], fresh.equity["equity"])
    assert not np.array_equal(second.equity["equity"], first.equity["equity"])


def test_the_manifest_records_the_code(modules: Modules, tmp_path: Path) -> None:
    modules.load(FEATURE.format(sign="1.0"))
    result = btlab.run(request("user_drift"))
    manifest = btlab.write_artifacts(result, tmp_path / "out")
    assert manifest["request"]["code"] == code_identity(result.config)
    assert set(manifest["request"]["code"]) == {"feature:user_drift", "strategy:user_drift"}


class _CrossParams(strategies.Params):
    fast: strategies.Int = 10
    slow: strategies.Int = 50
    long_short: bool = False


def test_the_function_form_equals_the_class_form_bit_for_bit() -> None:
    @btlab.strategy(
        name="fn_cross",
        features={
            "fast": lambda p: {"name": "sma", "params": {"window": p.fast}},
            "slow": lambda p: strategies.ma_spec("sma", p.slow),
        },
    )
    def fn_cross(f: strategies.Features, fast: int = 10, slow: int = 50,
                 long_short: bool = False) -> np.ndarray:  # fmt: skip
        return strategies.cross_target(f["fast"], f["slow"], 1.0, -1.0 if long_short else 0.0)

    @btlab.strategy
    class ClassCross(btlab.Strategy[_CrossParams]):
        name = "class_cross"
        description = "the same rule as a class"
        Params = _CrossParams

        @classmethod
        def features(cls, p: _CrossParams) -> dict[str, features.FeatureSpec]:
            return {
                "fast": strategies.ma_spec("sma", p.fast),
                "slow": strategies.ma_spec("sma", p.slow),
            }

        @classmethod
        def target(cls, f: Any, p: _CrossParams, n: int) -> np.ndarray:
            return strategies.cross_target(f["fast"], f["slow"], 1.0, -1.0 if p.long_short else 0.0)

    params = {"fast": 7, "slow": 30, "long_short": True}
    runs = [btlab.run(request(name, **params)) for name in ("fn_cross", "class_cross", "sma_cross")]
    for other in runs[1:]:
        for table in ("equity", "fills", "trades"):
            assert getattr(runs[0], table).equals(getattr(other, table)), table
        assert runs[0].metrics == other.metrics
    schema = strategies.list_strategies()
    fn_entry = next(s for s in schema if s["name"] == "fn_cross")
    assert set(fn_entry["params"]["properties"]) == {"fast", "slow", "long_short"}
    assert fn_entry["features"]["slow"] == {
        "name": "sma",
        "params": {"window": 50, "source": "close"},
    }


def test_function_parameters_are_validated_like_a_class_strategys() -> None:
    @btlab.strategy
    def typed(
        f: Any,
        window: Annotated[int, Field(ge=2)] = 20,
        mode: Literal["a", "b"] = "a",
        size: float = 1.0,
        label: str = "x",
    ) -> np.ndarray:
        """A constant target.

        More words."""
        return np.full(f.n, size if mode == "a" else -size)

    assert strategies._REGISTRY["typed"].description == "A constant target."
    assert strategies.resolve_strategy_params("typed", {"size": 2}) == {
        "window": 20, "mode": "a", "size": 2.0, "label": "x"}  # fmt: skip
    bad = {"window": 1, "mode": "c", "size": True, "other": 1}
    with pytest.raises(btlab.ConfigError) as info:
        btlab.resolve_config(request("typed", **bad))
    fields = {loc for loc, _ in info.value.errors}
    assert fields == {f"strategy.params.{k}" for k in bad}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def s(f, fast: int):\n    pass", "parameter 'fast' needs a default value"),
        ("def s(f, fast=3):\n    pass", "parameter 'fast' needs a type hint"),
        ("def s(f, fast: list[int] = []):\n    pass", "parameter 'fast': unsupported type"),
        ("def s(f, *rest: int):\n    pass", "parameter 'rest': parameters are passed by name"),
        ("def s(*, fast: int = 1):\n    pass", "the first argument receives the features"),
        ("def s(f, fast: int = 1.5):\n    pass", "a default breaks its own type: params.fast"),
        ("def s(f, fast: int = 1, **kw: int):\n    pass", "parameter 'kw': parameters are"),
    ],
)
def test_schema_inference_errors_name_the_parameter(source: str, message: str) -> None:
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    with pytest.raises(TypeError, match=message.replace("(", "\\(").replace("[", "\\[")):
        btlab.strategy(namespace["s"])
    assert "s" not in strategies._REGISTRY


def test_a_bad_feature_declaration_is_an_error_at_registration() -> None:
    with pytest.raises(btlab.ConfigError, match="unknown feature 'nope'"):

        @btlab.strategy(features={"x": {"name": "nope"}})
        def uses_nope(f: Any) -> np.ndarray:
            return np.zeros(f.n)

    with pytest.raises(TypeError, match="feature 'x' must be a FeatureSpec"):

        @btlab.strategy(features={"x": lambda p: 3})
        def uses_three(f: Any) -> np.ndarray:
            return np.zeros(f.n)

    with pytest.raises(TypeError, match="takes no arguments"):
        btlab.strategy(name="x")(strategies.SmaCross)


def test_a_sweep_over_a_function_strategys_parameters(modules: Modules) -> None:
    modules.load(CROSS.format(size="1.0"))
    sweep = {**request("user_cross"), "grid": {"fast": [5, 10], "slow": [20, 40]}}
    result = btlab.run_sweep(sweep)
    assert len(result.table) == 4
    singles = {
        (row["fast"], row["slow"]): btlab.run(request("user_cross", fast=row["fast"],
                                                      slow=row["slow"])).metrics["sharpe"]
        for row in result.table.to_dict("records")
    }  # fmt: skip
    assert singles[(result.best["params"]["fast"], result.best["params"]["slow"])] == pytest.approx(
        result.best["metrics"]["sharpe"]
    )
    assert "code" in btlab.pipeline.hashed_request(result.request, result.identity)


def test_a_sweep_hashes_the_features_of_every_combination(modules: Modules) -> None:
    """The base parameters read only built-ins; one grid value reads a user feature: editing
    that feature changes the sweep's hash."""
    source = (
        FEATURE
        + """

@btlab.strategy(features={{
    "x": lambda p: {{"name": "user_drift" if p.mine else "returns", "params": {{}}}}}})
def either(f, mine: bool = False) -> np.ndarray:
    return np.where(np.isfinite(f["x"]) & (f["x"] > 0), 1.0, 0.0)
"""
    )
    modules.load(source.format(sign="1.0"))
    sweep = btlab.sweep.parse_sweep_request({**request("either"), "grid": {"mine": [False, True]}})
    assert "feature:user_drift" in code_identity(sweep)
    assert "feature:user_drift" not in code_identity(btlab.resolve_config(request("either"))[0])


def test_a_plugin_is_user_code() -> None:
    from btlab.plugins import load_plugins

    sys.modules.pop("tests.plugin_example", None)
    try:
        load_plugins(["tests.plugin_example"])
        assert strategies.strategy_code("plugin_constant") is not None
        assert "strategy:plugin_constant" in code_identity(
            btlab.resolve_config(request("plugin_constant"))[0]
        )
    finally:
        sys.modules.pop("tests.plugin_example", None)


def test_a_user_strategy_on_a_portfolio_carries_its_code(modules: Modules) -> None:
    modules.load(CROSS.format(size="1.0"))
    portfolio = {"data": {"symbols": 3, "bars": 200}, "validation": {"enabled": False}}
    one = btlab.resolve_config({**portfolio, "strategy": {"name": "user_cross"}})[0]
    assert set(code_identity(one)) == {"strategy:user_cross"}
    wrapped = btlab.resolve_config({**portfolio, "strategy": {
        "name": "per_symbol", "params": {"strategy": "user_cross"}}})[0]  # fmt: skip
    assert code_identity(wrapped) == code_identity(one)


def test_a_user_portfolio_strategy_is_replaced_with_a_warning() -> None:
    def define(gross: float) -> Iterator[type]:
        class Flat(portfolio_strategies.PortfolioStrategy[portfolio_strategies.EqualWeightParams]):
            name = "user_flat"
            description = "gross on every tradable symbol, once more"
            Params = portfolio_strategies.EqualWeightParams

            @classmethod
            def target(cls, f: Any, p: Any, universe: Any) -> np.ndarray:
                return np.where(universe.tradable, gross * p.gross, 0.0)

        yield portfolio_strategies.portfolio_strategy(Flat)

    next(define(0.5))
    config = btlab.resolve_config({"data": {"symbols": 2, "bars": 50},
                                   "strategy": {"name": "user_flat"}})[0]  # fmt: skip
    before = code_identity(config)
    next(define(0.5))  # the same code: silent
    assert code_identity(config) == before
    with pytest.warns(RegistrationWarning, match="portfolio strategy 'user_flat'"):
        next(define(0.25))  # a closure's constant changed
    assert set(before) == {"portfolio_strategy:user_flat"} and code_identity(config) != before


CLASS = """
from collections.abc import Mapping

import numpy as np
from pydantic import model_validator

import btlab
from btlab.features import Float, Params


class HoldParams(Params):
    size: Float = 0.5

    @model_validator(mode="after")
    def _small(self) -> "HoldParams":
        if self.size > {limit}:
            raise ValueError("size too large")
        return self


class Sizer:
    def __init__(self, size: float) -> None:
        self.size = size * {factor}


@btlab.strategy
class UserHold(btlab.Strategy[HoldParams]):
    name = "user_hold"
    description = "hold a size"
    Params = HoldParams

    @classmethod
    def target(cls, f: Mapping[str, np.ndarray], p: HoldParams, n: int) -> np.ndarray:
        return np.full(n, Sizer(p.size).size)
"""


def test_a_class_strategys_hash_covers_its_params_model_and_helper_classes(
    modules: Modules,
) -> None:
    module = modules.load(CLASS.format(limit="1.0", factor="1.0"))
    hashes = [chash("user_hold")]
    for limit, factor in (("2.0", "1.0"), ("2.0", "0.5")):  # a validator, then a helper's __init__
        with pytest.warns(RegistrationWarning) as caught:
            module = modules.load(CLASS.format(limit=limit, factor=factor))
        assert caught[0].filename == module.__file__  # points at the user's registration
        hashes.append(chash("user_hold"))
    assert len(set(hashes)) == 3


def test_targets_handed_in_hash_beside_user_features() -> None:
    """With a user feature registered, a run of caller targets (the reserved `targets`
    strategy, which reads no feature of its own) still hashes and runs."""
    import numpy as np

    from btlab.features import Params

    @btlab.feature(name="user_code_probe_feature", params=Params, description="a probe")
    def _probe(data: Any, p: Any) -> np.ndarray:
        return np.asarray(data.close, dtype=np.float64)

    base = {"data": {"bars": 200, "seed": 1}, "validation": {"enabled": False}}
    target = np.zeros(200)
    target[50:120] = 1.0
    result = btlab.run(base, targets=target)
    assert result.config.strategy.name == "targets" and result.metrics["fill_count"] > 0
