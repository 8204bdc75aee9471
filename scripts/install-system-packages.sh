#!/usr/bin/env bash
# Installs the Debian packages VitalsStream needs, only those missing:
#   unixodbc         - ODBC driver manager that pyodbc links against (SQL Server path)
#   odbc-postgresql  - PostgreSQL ODBC driver, to check the ODBC stack against a real server
#   postgresql       - server binaries (initdb, pg_ctl) for the tests' private PostgreSQL
#   python3-venv     - to create .venv on a fresh Debian
#   sqlite3          - the command line shell the README's tour reads the embedded database with
# Usage: scripts/install-system-packages.sh [package ...]   (default: the list above)
set -euo pipefail

packages=("$@")
[ ${#packages[@]} -gt 0 ] || packages=(unixodbc odbc-postgresql postgresql python3-venv sqlite3)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "missing system packages: ${missing[*]} (install them with your package manager)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing system packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
