# syntax=docker/dockerfile:1
#
# The btlab HTTP service (SPEC §7), with every numba kernel compiled into the image.
#
#   docker build -t btlab .
#   docker run -d -p 8000:8000 -v btlab-data:/data -e BTLAB_TOKEN=change-me btlab
#
# Runs, artifacts and datasets live in the /data volume (BTLAB_HOME). Other BTLAB_* settings
# (BTLAB_TOKEN, BTLAB_RETENTION, BTLAB_CLUSTER, ...) are read from the environment at start.
#
# The same image is a worker of a Dask cluster for sweeps (docs/cluster.md; the kernels come
# compiled, so a worker starts without compiling anything):
#
#   docker run -d btlab dask worker tcp://SCHEDULER:8786 --nthreads 1
#
# tests/test_docker.py runs this file's steps outside Docker (no engine on the CI machines): it
# reads the FROM/ARG/ENV/WORKDIR/COPY/RUN/USER/HEALTHCHECK/CMD lines and runs them in order on a
# clean virtualenv, with the image's folders (/src, /wheels, /opt/btlab, /data) mapped to
# temporary ones. RUN steps marked "image-only" set up the operating system and are not run there.

ARG PYTHON_IMAGE=python:3.11-slim
# A dependency without a wheel for the target platform needs compilers: e.g.
# --build-arg BUILDER_IMAGE=python:3.11 (same Python, full Debian image).
ARG BUILDER_IMAGE=${PYTHON_IMAGE}

# ---- builder: wheels of the dependencies, then of btlab --------------------------------------
FROM ${BUILDER_IMAGE} AS builder
ARG PIP_DISABLE_PIP_VERSION_CHECK=1
ARG PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# The dependency wheels depend on pyproject.toml alone: a code change does not rebuild them.
COPY pyproject.toml ./
COPY docker/build-wheels.sh docker/
RUN --mount=type=cache,target=/root/.cache/pip \
    sh docker/build-wheels.sh deps /wheels/deps
COPY docker/ docker/
COPY README.md ./
COPY kernels/ kernels/
COPY presets/ presets/
COPY src/ src/
RUN --mount=type=cache,target=/root/.cache/pip \
    sh docker/build-wheels.sh app /wheels/app

# ---- runtime: no compilers, no pip cache, no wheels left behind ------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG PIP_DISABLE_PIP_VERSION_CHECK=1
ARG PIP_ROOT_USER_ACTION=ignore
# NUMBA_CPU_NAME=generic: the cached machine code targets any x86-64 (or aarch64) CPU, so the
# cache built here is valid on whatever host runs the image (numba keys its cache by CPU; the
# kernels measured no slower than host-tuned code). NUMBA_THREADING_LAYER=threadsafe: the
# service calls parallel kernels from several threads, which numba's fallback "workqueue" layer
# aborts on; libgomp1 (below) provides the thread-safe OpenMP layer. MPLCONFIGDIR: matplotlib's
# font cache for the HTML reports, built by the warm-up too. XDG_CACHE_HOME: where numba compiles
# to instead if NUMBA_CACHE_DIR is not writable (another --user, a read-only root filesystem).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BTLAB_HOME=/data \
    NUMBA_CACHE_DIR=/opt/btlab/numba-cache \
    NUMBA_CPU_NAME=generic \
    NUMBA_THREADING_LAYER=threadsafe \
    MPLCONFIGDIR=/opt/btlab/matplotlib \
    XDG_CACHE_HOME=/data/.cache
# image-only: the OpenMP runtime, the service user and the folders it owns. libgomp1 is left
# unpinned (DL3008): the base image's Debian release decides its version.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 btlab \
    && useradd --system --uid 10001 --gid btlab --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin btlab \
    && mkdir -p /data /opt/btlab/numba-cache /opt/btlab/matplotlib \
    && chown btlab:btlab /data /opt/btlab/numba-cache /opt/btlab/matplotlib
# Dependencies in their own layer, from the builder's wheels (bind-mounted: no copy stays).
RUN --mount=type=bind,from=builder,source=/wheels/deps,target=/wheels/deps \
    --mount=type=bind,from=builder,source=/src/docker,target=/opt/btlab/docker \
    sh /opt/btlab/docker/install-wheels.sh deps /wheels/deps
RUN --mount=type=bind,from=builder,source=/wheels/app,target=/wheels/app \
    --mount=type=bind,from=builder,source=/src/docker,target=/opt/btlab/docker \
    sh /opt/btlab/docker/install-wheels.sh app /wheels/app
# From here on everything runs as the service user, the warm-up included: the numba cache it
# writes is owned by the user that reads it (numba uses a cache folder only where it can write).
USER 10001:10001
# Compile every kernel the service uses into NUMBA_CACHE_DIR (and build matplotlib's font
# cache), then prove that a fresh process loads them all from there without compiling anything.
RUN python -m btlab.tools.warmup && python -m btlab.tools.warmup --check --quiet
VOLUME ["/data"]
EXPOSE 8000
# No curl in the slim image: Python asks /health (with the bearer token when one is set).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; t = os.environ.get('BTLAB_TOKEN'); u.urlopen(u.Request('http://127.0.0.1:8000/health', headers={'Authorization': 'Bearer ' + t} if t else {}), timeout=4)"]
CMD ["btlab", "serve", "--host", "0.0.0.0", "--port", "8000"]
