#!/bin/sh
# Installs wheels in the image's runtime stage from a local folder only (no index, no cache);
# tests/test_docker.py runs it the same way.
#   install-wheels.sh deps DIR   every dependency wheel build-wheels.sh put in DIR, then removes
#                                the dependencies' own test suites (~90 MB btlab never imports)
#   install-wheels.sh app DIR    the btlab wheel(s) in DIR, then `pip check` that every
#                                requirement is met by what the deps step installed
set -eu
kind=${1:?usage: install-wheels.sh deps|app DIR}
dir=${2:?usage: install-wheels.sh deps|app DIR}
case "$kind" in
deps)
    pip install --no-cache-dir --no-index --find-links "$dir" --requirement "$dir/requirements.txt"
    site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    before=$(du -sm "$site" | cut -f1)
    find "$site" -mindepth 2 -maxdepth 3 -type d -name tests -prune -exec rm -rf {} +
    echo "removed the dependencies' test suites: $before MB -> $(du -sm "$site" | cut -f1) MB"
    ;;
app)
    pip install --no-cache-dir --no-index --no-deps "$dir"/*.whl
    pip check
    ;;
*)
    echo "install-wheels.sh: unknown kind '$kind' (expected deps or app)" >&2
    exit 2
    ;;
esac
