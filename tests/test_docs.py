"""Every example in the docs runs, so the docs cannot rot.

The docs are README.md and docs/*.md. Their fenced code blocks are run as the fence says:

- ```python      blocks of one file run in order in one namespace (later blocks see earlier names);
- ```bash        blocks run with `bash -euo pipefail` in the same scratch folder, whose `.venv` is
                 a link to this test's virtualenv, so `.venv/bin/btlab ...` works as written; in a
                 file with curl examples a real server is started first and `127.0.0.1:8000`
                 points at it;
- ```json        blocks must parse; ```json request blocks must be valid run requests;
- ```<lang> no-run  blocks are shown, not run; each must say why on its fence line
                 (`no-run: <reason>`), and the README's set-up command must be what .ci/run runs.

The configuration reference in docs/configuration.md is generated from the pydantic models, and
the metrics table of docs/concepts.md from `btlab.metric_registry`; both are checked here
against their source (regenerate them with `python -m tests.test_docs --write`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest

from tests.api.conftest import Server

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\S*)(.*)$")
DOC_PORT = "127.0.0.1:8000"


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    flags: str
    code: str

    @property
    def runs(self) -> bool:
        return not self.flags.startswith("no-run")

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, with their language and fence flags."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match and match.group(1):
            start = i
            body: list[str] = []
            i += 1
            while i < len(lines) and lines[i].rstrip() != "```":
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise AssertionError(f"{path.name}:{start + 1}: unclosed code fence")
            out.append(
                Block(path, start + 1, match.group(1), match.group(2).strip(), "\n".join(body))
            )
        i += 1
    return out


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A scratch folder with `.venv` linked to this interpreter's environment and its own home."""
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def _env(scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTLAB_")}
    env["BTLAB_HOME"] = str(scratch / "home")
    env["PATH"] = f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run_bash(block: Block, scratch: Path, env: dict[str, str], url: str | None) -> None:
    code = block.code if url is None else block.code.replace(DOC_PORT, url)
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (
        f"{block.where}: bash example failed ({proc.returncode})\n{code}\n"
        f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    )


def _run_python(block: Block, namespace: dict[str, Any]) -> None:
    try:
        exec(compile(block.code, block.where, "exec", dont_inherit=True), namespace)
    except Exception as exc:
        raise AssertionError(f"{block.where}: python example failed: {exc!r}") from exc


@pytest.fixture
def docs_server(scratch: Path) -> Iterator[Callable[[], Server]]:
    """Starts `btlab serve` (as tests/api does) on demand; stopped at the end of the test."""
    started: list[Server] = []

    def start() -> Server:
        home = scratch / "home"
        home.mkdir(exist_ok=True)
        started.append(Server(home).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.mark.parametrize("path", DOC_FILES, ids=_ids(DOC_FILES))
def test_examples_run(path: Path, scratch: Path, docs_server: Callable[[], Server]) -> None:
    found = blocks(path)
    env = _env(scratch)
    url: str | None = None
    if any(b.runs and b.lang == "bash" and "curl " in b.code for b in found):
        url = docs_server().url.removeprefix("http://")
    namespace: dict[str, Any] = {"__name__": f"docs_{path.stem}"}
    for block in found:
        if not block.runs:
            assert block.flags.startswith("no-run:") and len(block.flags) > len("no-run: "), (
                f"{block.where}: a block that does not run must say why (`no-run: reason`)"
            )
            continue
        if block.lang == "python":
            _run_python(block, namespace)
        elif block.lang == "bash":
            _run_bash(block, scratch, env, url)
        elif block.lang == "json":
            value = json.loads(block.code)
            if block.flags == "request":
                from btlab.presets import resolve_request

                resolve_request(value)
        elif block.lang not in ("text", "console", "http"):
            raise AssertionError(f"{block.where}: no runner for ```{block.lang} blocks")


def _setup_commands() -> list[str]:
    readme = blocks(ROOT / "README.md")
    quick = [b for b in readme if b.lang == "bash" and "pip install" in b.code]
    assert quick, "README.md has no set-up command"
    return [line for b in quick for line in b.code.splitlines() if "pip install" in line]


def test_readme_quickstart_is_what_ci_runs() -> None:
    """The set-up command and the test command of the README are the ones .ci/run executes."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    # .ci/run's commands as words, quiet flags dropped (CI may be quieter than the README)
    ci_commands = [
        [w for w in shlex.split(part, comments=True) if w != "-q"]
        for line in ci.splitlines()
        for part in line.split("&&")
    ]
    for line in _setup_commands():
        for command in line.split("&&"):
            words = shlex.split(command)
            if words[:1] == [".venv/bin/btlab"]:
                assert ".venv/bin/btlab run" in ci
                continue
            assert words in ci_commands, f".ci/run does not run the README's {command.strip()!r}"
    tests = [
        line.strip()
        for b in blocks(ROOT / "README.md")
        for line in b.code.splitlines()
        if "-m pytest" in line
    ]
    assert tests, "README.md shows no test command"
    assert all(t.split("#")[0].strip() in ci for t in tests)


# ------------------------------------------------------------ configuration reference


def configuration_reference() -> str:
    """The request reference as Markdown: one table per section of RunConfig, from the models."""
    from pydantic import BaseModel

    from btlab.config import FileData, FileListData, RunConfig, StoredData, SyntheticData

    def bounds(info: Any) -> str:
        """A field's bounds (ge/gt/le/lt), or the values a Literal allows."""
        if get_origin(info.annotation) is Literal:
            return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in get_args(info.annotation))
        return ", ".join(
            f"{key} {value}"
            for m in info.metadata
            for key, value in (
                ("≥", getattr(m, "ge", None)),
                (">", getattr(m, "gt", None)),
                ("≤", getattr(m, "le", None)),
                ("<", getattr(m, "lt", None)),
            )
            if value is not None
        )

    def describe(model: type[BaseModel], prefix: str) -> list[str]:
        rows: list[str] = []
        nested: list[tuple[type[BaseModel], str]] = []
        for name, info in model.model_fields.items():
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                nested.append((annotation, f"{prefix}{name}."))
                continue
            default = info.get_default(call_default_factory=True)
            shown = "required" if info.is_required() else f"`{json.dumps(default, default=str)}`"
            doc = (info.description or "").replace("|", "\\|")
            rows.append(f"| `{prefix}{name}` | {shown} | {bounds(info)} | {doc} |")
        for sub, sub_prefix in nested:
            rows += describe(sub, sub_prefix)
        return rows

    header = ["| field | default | bounds | meaning |", "|---|---|---|---|"]
    parts = [
        "<!-- generated from btlab.config by `python -m tests.test_docs --write`; do not edit -->"
    ]
    sections: list[tuple[str, type[BaseModel], str]] = [
        ("data (source: synthetic, the default)", SyntheticData, "data."),
        ("data (source: csv or parquet)", FileData, "data."),
        ("data (source: csv or parquet, with paths: a portfolio)", FileListData, "data."),
        ("data (source: dataset)", StoredData, "data."),
    ]
    for name, info in RunConfig.model_fields.items():
        annotation = info.annotation
        if name == "data":
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            sections.append((name, annotation, f"{name}."))
    for title, model, prefix in sections:
        parts += ["", f"### `{title}`", "", *header, *describe(model, prefix)]
    top = [
        (n, i)
        for n, i in RunConfig.model_fields.items()
        if not (isinstance(i.annotation, type) and issubclass(i.annotation, BaseModel))
        and n != "data"
    ]
    parts += ["", "### top level", "", *header]
    for name, info in top:
        default = info.get_default(call_default_factory=True)
        parts.append(
            f"| `{name}` | `{json.dumps(default, default=str)}` | {bounds(info)} "
            f"| {info.description or ''} |"
        )
    return "\n".join(parts) + "\n"


def test_top_level_fields_show_their_bounds() -> None:
    """The reference lists a bound wherever the model has one, top-level fields included."""
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert f"| `seed` | `0` | ≥ 0, ≤ {2**63 - 1} |" in doc


def test_every_service_setting_is_documented() -> None:
    from btlab.api.settings import Settings

    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [n for n in Settings.model_fields if f"| `BTLAB_{n.upper()}` |" not in doc]
    assert not missing, f"docs/configuration.md's service settings lack {missing}"


REFERENCE_START = "<!-- reference:start -->"
REFERENCE_END = "<!-- reference:end -->"


def _reference_span(text: str) -> tuple[int, int]:
    start = text.index(REFERENCE_START) + len(REFERENCE_START)
    return start, text.index(REFERENCE_END)


def test_configuration_reference_matches_the_models() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    start, end = _reference_span(doc)
    assert doc[start:end].strip() == configuration_reference().strip(), (
        "docs/configuration.md is out of date: run `python -m tests.test_docs --write`"
    )


# ------------------------------------------------------------ metrics table

METRICS_START = "<!-- metrics:start -->"
METRICS_END = "<!-- metrics:end -->"


def _metrics_span(text: str) -> tuple[int, int]:
    start = text.index(METRICS_START) + len(METRICS_START)
    return start, text.index(METRICS_END)


def test_metrics_table_matches_the_registry() -> None:
    """docs/concepts.md's metrics table is `metric_registry.metrics_reference()`, and the registry
    names every key of metrics.json, in its order."""
    from btlab.metric_registry import METRIC_NAMES, metrics_reference

    doc = (ROOT / "docs" / "concepts.md").read_text(encoding="utf-8")
    start, end = _metrics_span(doc)
    assert doc[start:end].strip() == metrics_reference().strip(), (
        "docs/concepts.md's metrics table is out of date: run `python -m tests.test_docs --write`"
    )
    assert all(f"| `{name}` |" in doc[start:end] for name in METRIC_NAMES)


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    from btlab.metric_registry import metrics_reference

    target = ROOT / "docs" / "configuration.md"
    text = target.read_text(encoding="utf-8")
    a, b = _reference_span(text)
    target.write_text(text[:a] + "\n" + configuration_reference() + text[b:], encoding="utf-8")
    print(f"wrote {target}")
    target = ROOT / "docs" / "concepts.md"
    text = target.read_text(encoding="utf-8")
    a, b = _metrics_span(text)
    target.write_text(text[:a] + "\n" + metrics_reference() + text[b:], encoding="utf-8")
    print(f"wrote {target}")
