#!/bin/sh
# Installs the real services the test suite talks to, from Debian's packages, when they are
# missing and we are root. PostgreSQL is expected to be running already (127.0.0.1:5432).
# tinyproxy is the authenticating HTTP proxy of the proxy tests; the tests start their own
# tinyproxy process on a free port (tests/support/proxy.py), so the system service that
# Debian's postinst would start is kept from starting (a busy port 8888 would fail the install)
# and, when we installed it, is disabled.
# chromium is the browser of the web-admin journeys (Playwright drives /usr/bin/chromium).
# Dovecot (dovecot-core, -imapd, -pop3d) is the IMAP/POP3 server of the mail tests; they run
# their own `dovecot -F -c CONFIG` on free ports (sandbox/dovecot/launch.py), so the system
# Dovecot (ports 143/110/993/995) is likewise kept from starting and disabled.
# prometheus brings promtool, which checks and unit-tests deploy/prometheus's alerting rules;
# no Prometheus server is needed, so the system service (port 9090) is kept from starting
# and disabled too.
set -eu
missing=""
: "${MAILINTAKE_TEST_PACKAGES:=postgresql-client tinyproxy dovecot-core dovecot-imapd dovecot-pop3d chromium fonts-dejavu-core prometheus}"
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
# No service starts during the install (invoke-rc.d and deb-systemd-invoke ask policy-rc.d);
# an existing policy-rc.d (as in Docker images) is left alone.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    trap 'rm -f "$policy"' EXIT
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
case " $missing " in
*" tinyproxy "*)
    if [ -d /run/systemd/system ]; then
        systemctl disable --now tinyproxy.service >/dev/null 2>&1 || true
    else
        update-rc.d tinyproxy disable >/dev/null 2>&1 || true
    fi
    ;;
esac
case " $missing " in
*" dovecot-core "* | *" dovecot-imapd "* | *" dovecot-pop3d "*)
    if [ -d /run/systemd/system ]; then
        systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
    else
        update-rc.d dovecot disable >/dev/null 2>&1 || true
    fi
    ;;
esac
case " $missing " in
*" prometheus "*)
    if [ -d /run/systemd/system ]; then
        systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    else
        update-rc.d prometheus disable >/dev/null 2>&1 || true
    fi
    ;;
esac
