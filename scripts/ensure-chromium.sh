#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver from Debian's packages when either is
# missing: the dashboard's browser test (tests/api/ui.rs) drives them.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
echo "chromium or chromedriver is not installed; installing them..." >&2
sudo=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
else
  echo "Please install Chromium and its chromedriver (Debian: chromium chromium-driver) and run this again." >&2
  exit 1
fi
command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
