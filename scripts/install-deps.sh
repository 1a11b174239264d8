#!/usr/bin/env bash
# Installs everything Ignis needs to build, run and test on Debian 12 (run as root).
# Used by the README's quick start and by CI (.ci/run), so both see the same machine.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(
  build-essential pkg-config clang libclang-rt-14-dev
  libmicrohttpd-dev libjansson-dev libsqlite3-dev libssl-dev libzip-dev
  libseccomp-dev libcmocka-dev libcurl4-openssl-dev libxml2-dev zlib1g-dev libcbor-dev e2fsprogs
  python3 python3-dev python3-pytest python3-boto3 python3-pycurl python3-pil python3-prometheus-client python3-cbor2 awscli nodejs zip unzip curl
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm comes with NodeSource's nodejs; Debian packages it separately.
command -v npm >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends npm

# The AWS SDK for JavaScript v3, pinned, for the integration tests.
here=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$here/tests/js/node_modules/@aws-sdk/client-lambda" ]; then
  (cd "$here/tests/js" && npm ci --silent --no-audit --no-fund)
fi
