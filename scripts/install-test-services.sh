#!/bin/sh
# Installs the real services the test suite talks to, from Debian's packages, when they are
# missing and we are root. PostgreSQL is expected to be running already (127.0.0.1:5432).
set -eu
missing=""
: "${MAILINTAKE_TEST_PACKAGES:=postgresql-client}"
for pkg in $MAILINTAKE_TEST_PACKAGES; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "install-test-services: missing Debian packages:$missing (not root: install them yourself)" >&2
    exit 0
fi
echo "install-test-services: installing$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
