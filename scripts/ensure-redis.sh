#!/usr/bin/env bash
# Installs redis-server when it is missing (Debian/Ubuntu, Fedora/RHEL, Alpine, macOS).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
echo "redis-server is not installed; installing it..." >&2
sudo=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
elif command -v dnf >/dev/null 2>&1; then
  $sudo dnf install -y redis
elif command -v apk >/dev/null 2>&1; then
  $sudo apk add --no-cache redis
elif command -v brew >/dev/null 2>&1; then
  brew install redis
else
  echo "Please install redis-server (Redis 7) and run this again." >&2
  exit 1
fi
command -v redis-server >/dev/null 2>&1
