#!/usr/bin/env bash
# base-image.sh — make the local Python base image (default tag local/python:3.11-slim) without any
# container registry: Debian bookworm + python3 bootstrapped with mmdebstrap and loaded with `docker import`.
# Pass it to the builds as PYTHON_IMAGE=local/python:3.11-slim.
#
# The result is cached as a zstd-compressed `docker save` tarball in $REYNOLDS_CI_CACHE
# (default /var/cache/reynolds-ci), keyed by the hash of this script and its rootfs hook, so a warm
# run loads it in about a second instead of bootstrapping for half a minute.
#
#   scripts/base-image.sh                 # ensure the image exists (image -> cache -> bootstrap)
#   REBUILD=1 scripts/base-image.sh       # bootstrap again even if cached
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tag=${BASE_TAG:-local/python:3.11-slim}
cache_dir=${REYNOLDS_CI_CACHE:-/var/cache/reynolds-ci}
export SUITE=${SUITE:-bookworm}
key=$(cat "$here/base-image.sh" "$here/base-rootfs-hook.sh" | sha256sum | cut -c1-16)
tarball="$cache_dir/base-$key.tar.zst"

have_current_image() {
  [ "$(docker image inspect -f '{{index .Config.Labels "org.reynolds.base-key"}}' "$tag" 2>/dev/null)" = "$key" ]
}

if [ -z "${REBUILD:-}" ] && have_current_image; then
  echo "base image $tag is current (key $key)"
  exit 0
fi
if [ -z "${REBUILD:-}" ] && [ -f "$tarball" ]; then
  echo "loading base image $tag from $tarball"
  zstd -q -dc "$tarball" | docker load -q
  have_current_image || { echo "cached tarball $tarball did not provide $tag with key $key" >&2; exit 1; }
  exit 0
fi

missing=()
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v zstd >/dev/null || missing+=(zstd)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "missing: ${missing[*]} (apt-get install -y ${missing[*]})" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The archive is whatever the host's apt already uses; nothing is hard-coded.
uris=$(apt-get indextargets --format '$(REPO_URI)' 'Created-By: Packages' | sort -u)
export MIRROR=${MIRROR:-$(grep -v -- '-security' <<<"$uris" | grep -E '/debian/?$' | head -n1 || true)}
export SECURITY_MIRROR=${SECURITY_MIRROR-$(grep -E -- '-security/?$' <<<"$uris" | head -n1 || true)}
[ -n "$MIRROR" ] || { echo "cannot find the Debian mirror in apt's configuration; set MIRROR=" >&2; exit 1; }

hooks=/usr/share/mmdebstrap/hooks
echo "bootstrapping $tag from $MIRROR (key $key)"
# variant apt = essential packages + apt. The merged-usr hook avoids the usrmerge package (and perl).
mmdebstrap --mode=root --variant=apt --format=tar \
  --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
  --hook-dir="$hooks/merged-usr" \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt=force-unsafe-io \
  --customize-hook="$here/base-rootfs-hook.sh \"\$1\"" \
  "$SUITE" - "$MIRROR" |
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
    --change 'ENV PYTHONUNBUFFERED=1' \
    --change 'ENV PIP_DISABLE_PIP_VERSION_CHECK=1' \
    --change 'ENV PIP_ROOT_USER_ACTION=ignore' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change "LABEL org.reynolds.base-key=$key" \
    --change 'CMD ["python3"]' \
    - "$tag" >/dev/null

docker run --rm "$tag" python3 -c 'import ssl, sqlite3, sys, venv; print("python", sys.version.split()[0])'
mkdir -p "$cache_dir"
# Old keys are stale by definition; keep only the current tarball.
rm -f "$cache_dir"/base-*.tar.zst
docker save "$tag" | zstd -q -T0 -o "$tarball.partial"
mv "$tarball.partial" "$tarball"
echo "saved $tag to $tarball ($(du -h "$tarball" | cut -f1))"
