#!/bin/sh
# base-rootfs-hook.sh ROOTFS — run by mmdebstrap (customize hook) on a fresh bookworm tree to turn it
# into a slim Python base image that behaves like the official python:*-slim images.
#
# Env (from base-image.sh): MIRROR, SECURITY_MIRROR (may be empty), SUITE.
set -eu
root=$1

# Keep derived images small: whatever a later `apt-get install` unpacks, docs/man/locales stay out.
mkdir -p "$root/etc/dpkg/dpkg.cfg.d" "$root/etc/apt/apt.conf.d"
cat >"$root/etc/dpkg/dpkg.cfg.d/01-slim" <<'CFG'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
CFG

# apt inside builds: no recommends, no translations, gzip-compressed lists, no .deb or binary caches.
# (Not a DPkg::Post-Invoke clean-up hook: mmdebstrap's last apt run uses this configuration from the host
# side and such a hook would empty the host's own apt caches.)
cat >"$root/etc/apt/apt.conf.d/90-container" <<'CFG'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT::Keep-Downloaded-Packages "false";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order:: "gz";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG

# Package scripts must never try to start services while an image is being built.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"

# Derived images run `apt-get update` against the same archive the host uses.
{
  echo "deb $MIRROR $SUITE main"
  echo "deb $MIRROR $SUITE-updates main"
  [ -z "${SECURITY_MIRROR:-}" ] || echo "deb $SECURITY_MIRROR $SUITE-security main"
} >"$root/etc/apt/sources.list"
rm -f "$root"/etc/apt/sources.list.d/*

# Egress here goes through a TLS-inspecting proxy: the image must trust the same extra CAs as the host,
# or pip/apt over HTTPS inside `docker build` fail certificate verification.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null
fi

# Like python:*-slim, `pip install` into the system interpreter is allowed (no PEP 668 marker).
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED

# Trim what the bootstrap left behind. $root/tmp stays: mmdebstrap keeps its own apt config there.
find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root"/var/log/apt/* "$root"/var/log/*.log \
  "$root"/root/.cache
mkdir -p "$root/var/lib/apt/lists/partial"
find "$root/usr" -type d -name __pycache__ -prune -exec rm -rf {} +
# Docker bind-mounts these at run time.
: >"$root/etc/resolv.conf"
echo localhost >"$root/etc/hostname"
