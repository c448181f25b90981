#!/bin/sh
# Builds wheels in the image's builder stage (tests/test_docker.py runs it the same way).
#   build-wheels.sh deps OUT   wheels of the runtime dependencies in pyproject.toml (and theirs),
#                              with those of the extras named in BTLAB_EXTRAS (space-separated;
#                              default "cluster", so the image also serves as a Dask worker),
#                              plus OUT/requirements.txt; reads only pyproject.toml, so the
#                              Dockerfile can run it before copying the source
#   build-wheels.sh app OUT    the btlab wheel alone (run in the project folder)
set -eu
kind=${1:?usage: build-wheels.sh deps|app OUT}
out=${2:?usage: build-wheels.sh deps|app OUT}
mkdir -p "$out"
case "$kind" in
deps)
    python - "$out/requirements.txt" <<'PY'
import os
import sys
import tomllib

with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
extras = os.environ.get("BTLAB_EXTRAS", "cluster").split()
deps = list(project["dependencies"])
for extra in extras:
    deps += project["optional-dependencies"][extra]
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.write("".join(f"{d}\n" for d in deps))
print(f"{len(deps)} runtime dependencies (extras: {' '.join(extras) or 'none'}) -> {sys.argv[1]}")
PY
    pip wheel --wheel-dir "$out" --requirement "$out/requirements.txt"
    ;;
app)
    pip wheel --no-deps --wheel-dir "$out" .
    ;;
*)
    echo "build-wheels.sh: unknown kind '$kind' (expected deps or app)" >&2
    exit 2
    ;;
esac
