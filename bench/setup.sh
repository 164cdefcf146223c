#!/usr/bin/env bash
# Bench setup: the load generators and the LDAP peer (Debian packages), py-spy, and the C LDAP load client.
# Idempotent; non-interactive. Needs root (apt-get). Nothing here starts a service: the system slapd is
# left unconfigured (debconf: slapd/no_configuration) and the bench runs its own slapd instance from a temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for bin in wrk slapd ldapmodify ldapcompare; do
    command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || need+=("$bin")
done
[ -f /usr/include/ldap.h ] || need+=("libldap-dev")
if [ "${#need[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    # Do not let the package configure or start the system slapd; the bench runs its own instance.
    echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends wrk slapd ldap-utils libldap-dev gcc libc6-dev >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import graphdir, click" 2>/dev/null || [ ! -x .venv/bin/py-spy ]; then
    .venv/bin/python -m pip install -q -e . py-spy
fi

# The C LDAP load client (libldap's async API, one operation in flight per connection).
mkdir -p bench/.build
if [ ! -x bench/.build/ldapload ] || [ bench/ldapload.c -nt bench/.build/ldapload ]; then
    gcc -O2 -Wall -o bench/.build/ldapload bench/ldapload.c -lldap -llber
fi
echo "bench setup ok: $(wrk -v 2>&1 | head -1 | cut -c1-40); slapd $(/usr/sbin/slapd -VV 2>&1 | grep -o 'slapd [0-9.]*' | head -1)"
