#!/usr/bin/env bash
# Drop a test run's throwaway database (the URL scripts/pg-up.sh printed) and every database the tests
# made from it (named after it with a suffix).
set -euo pipefail
URL="$1"
DB="${URL##*/}"
HOSTPORT="${URL#*@}"; HOSTPORT="${HOSTPORT%%/*}"
ADMIN="${URL#postgresql://}"; ADMIN="${ADMIN%%@*}"
case "$DB" in gd_run_*) ;; *) echo "pg-down: refusing to drop $DB (not a test run's database)" >&2; exit 1 ;; esac
for db in $(psql -At -h "${HOSTPORT%%:*}" -p "${HOSTPORT##*:}" -U "$ADMIN" -d postgres \
        -c "SELECT datname FROM pg_database WHERE datname = '$DB' OR datname LIKE '${DB}\_%'"); do
    psql -q -h "${HOSTPORT%%:*}" -p "${HOSTPORT##*:}" -U "$ADMIN" -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >&2
done
