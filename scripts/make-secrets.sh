#!/usr/bin/env bash
# make-secrets.sh [DIR] — create the Compose secrets (default ./secrets next to the compose file).
#
# Passwords and tokens get fresh random values; external credentials (GitHub, LLM, Microsoft 365) get the
# word "unset" (reynolds/config.py UNSET_SECRET), which the tools report as "not configured": Docker Swarm
# refuses empty secrets, and an empty file from an older run is given the marker too. Each agent pool's token is derived from
# agent_key (README, Security: `<pool>.<hmac>`), so agents of one pool can join only that pool. Existing
# files are never overwritten, so running it again only fills in what is missing (after replacing agent_key,
# delete the agent_token_* files so they are derived again).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$repo/secrets}
random_names=(postgres_password client_token agent_key grafana_admin_password)
pools=(devops docker platform code workbench)
optional_names=(github_token openai_api_key m365_credentials tenant_id)
unset=unset # = reynolds.config.UNSET_SECRET

# The directory keeps other host users out; the files themselves must stay readable by the containers'
# non-root user, because Compose bind-mounts them as they are.
umask 077
mkdir -p "$dir"
chmod 0700 "$dir"
umask 022

created=0
for name in "${random_names[@]}"; do
  [ -e "$dir/$name" ] && continue
  # the first client token is the operator's: tenant "operator", admin scope (scale_pool, every task)
  suffix=$([ "$name" = client_token ] && echo " operator admin" || true)
  python3 -c 'import secrets, sys; print(secrets.token_urlsafe(32) + sys.argv[1])' "$suffix" >"$dir/$name"
  created=$((created + 1))
done
for pool in "${pools[@]}"; do
  [ -e "$dir/agent_token_$pool" ] && continue
  python3 - "$dir/agent_key" "$pool" >"$dir/agent_token_$pool" <<'PY'
import hashlib, hmac, sys
key, pool = open(sys.argv[1]).read().strip().encode(), sys.argv[2]
print(pool + "." + hmac.new(key, f"reynolds pool token\n{pool}".encode(), hashlib.sha256).hexdigest())
PY
  created=$((created + 1))
done
for name in "${optional_names[@]}"; do
  [ -s "$dir/$name" ] && continue # a value (or the marker) is kept; a missing or empty file gets the marker
  echo "$unset" >"$dir/$name"
  created=$((created + 1))
done
chmod 0644 "$dir"/*
echo "secrets in $dir: $created created, $((${#random_names[@]} + ${#pools[@]} + ${#optional_names[@]} - created)) kept"
