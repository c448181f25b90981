"""The public surface of `btlab` and `btlab.kernels` is pinned: a change to it is deliberate."""

from __future__ import annotations

import subprocess
import sys

import btlab
import btlab.kernels

BTLAB = {
    "BtlabError", "ConfigError", "DataError", "Dataset", "NotFoundError", "RunCache",
    "PortfolioDataset", "PortfolioResult", "RunCancelled", "RunConfig", "RunError", "RunResult", "RunWarning", "Signals", "SweepRequest", "SweepResult",
    "WalkForwardRequest", "WalkForwardResult", "run_walkforward",
    "__version__", "config_hash", "from_dataframe", "list_presets", "load", "load_csv", "load_file",
    "load_parquet", "load_preset", "parse_config", "resolve_config", "resolve_request", "run",
    "run_sweep", "signals", "synthetic", "verify_artifacts", "write_artifacts",
    "RegistrationWarning", "Strategy", "feature", "strategy",
}  # fmt: skip


def test_btlab_exports_exactly_its_public_api() -> None:
    assert set(btlab.__all__) == BTLAB
    for name in btlab.__all__:
        assert getattr(btlab, name) is not None, name


def test_kernels_exports_resolve() -> None:
    for name in btlab.kernels.__all__:
        assert getattr(btlab.kernels, name) is not None, name


def test_sweep_api_is_lazy_and_the_same_objects() -> None:
    from btlab import sweep

    assert btlab.run_sweep is sweep.run_sweep and btlab.SweepRequest is sweep.SweepRequest
    code = "import sys, btlab; print('btlab.sweep' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # import btlab does not load the sweep kernels


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        btlab.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_the_error_tree_in_errors_py_names_every_btlab_error() -> None:
    """errors.py draws the exception tree: every BtlabError subclass anywhere in btlab is on it,
    under its base."""
    import importlib
    import pkgutil

    from btlab import errors

    for module in pkgutil.walk_packages(btlab.__path__, "btlab."):
        importlib.import_module(module.name)
    lines = (errors.__doc__ or "").splitlines()

    def depth(name: str) -> int:
        (line,) = [ln for ln in lines if f"── {name} " in ln or ln.endswith(f"── {name}")]
        return line.index(name)

    def walk(cls: type, level: int) -> None:
        for sub in cls.__subclasses__():
            assert depth(sub.__name__) > level, sub.__name__
            walk(sub, depth(sub.__name__))

    walk(errors.BtlabError, 0)
