/* ldapload: a closed-loop LDAP load generator (the LDAP side's wrk), built by bench/setup.sh.
 *
 * C connections, one operation in flight on each (like wrk's connections), for a fixed time;
 * every operation takes the next line of a file of member DNs, so a delete never repeats.
 * Modes (all against one group entry -g):
 *   delmember  modify: delete one value of "member"      (expects success)
 *   addmember  modify: add one value of "member"         (expects success)
 *   compare    compare member=<dn>                       (expects compareTrue)
 *   search     base-scope search (member=<dn>), attrs 1.1 (expects one entry)
 * Prints one line: BENCHJSON {...} with ops, errors, duration and latency percentiles (µs).
 * Usage: ldapload -H ldap://127.0.0.1:PORT -D binddn -w pw -g groupdn -f dns.txt -m mode
 *                 [-c 64] [-d seconds] [-n max_ops] [-s skip_lines]
 * Stops starting operations after -d seconds or -n operations, whichever comes first.
 */
#define _GNU_SOURCE
#define LDAP_DEPRECATED 0
#include <ldap.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static char **lines; static long nlines, next_line, max_ops = -1;
static const char *mode, *group;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int start_op(LDAP *ld, int *msgid) {
    if (max_ops >= 0 && next_line >= max_ops) return -3; /* op budget spent */
    if (next_line >= nlines) return -2; /* pool exhausted */
    char *dn = lines[next_line++];
    struct berval bv = { strlen(dn), dn };
    if (!strcmp(mode, "delmember") || !strcmp(mode, "addmember")) {
        struct berval *vals[2] = { &bv, NULL };
        LDAPMod mod = { (mode[0] == 'd' ? LDAP_MOD_DELETE : LDAP_MOD_ADD) | LDAP_MOD_BVALUES, "member", { NULL } };
        mod.mod_bvalues = vals;
        LDAPMod *mods[2] = { &mod, NULL };
        return ldap_modify_ext(ld, group, mods, NULL, NULL, msgid);
    } else if (!strcmp(mode, "compare")) {
        return ldap_compare_ext(ld, group, "member", &bv, NULL, NULL, msgid);
    } else {
        char filter[1024];
        snprintf(filter, sizeof filter, "(member=%s)", dn);
        char *attrs[] = { "1.1", NULL };
        return ldap_search_ext(ld, group, LDAP_SCOPE_BASE, filter, attrs, 0, NULL, NULL, NULL, 0, msgid);
    }
}

int main(int argc, char **argv) {
    const char *uri = "ldap://127.0.0.1:3890", *binddn = NULL, *pw = "", *file = NULL;
    int conns = 64; double dur = 5; long skip = 0; int opt;
    mode = "compare";
    while ((opt = getopt(argc, argv, "H:D:w:g:f:m:c:d:s:n:")) != -1) {
        switch (opt) {
        case 'H': uri = optarg; break;      case 'D': binddn = optarg; break;
        case 'w': pw = optarg; break;       case 'g': group = optarg; break;
        case 'f': file = optarg; break;     case 'm': mode = optarg; break;
        case 'c': conns = atoi(optarg); break; case 'd': dur = atof(optarg); break;
        case 's': skip = atol(optarg); break;
        case 'n': max_ops = atol(optarg); break;
        default: fprintf(stderr, "bad option\n"); return 2;
        }
    }
    if (!group || !file) { fprintf(stderr, "-g and -f are required\n"); return 2; }
    FILE *fh = fopen(file, "r");
    if (!fh) { perror(file); return 2; }
    long cap = 1 << 16; lines = malloc(cap * sizeof *lines);
    char buf[1024]; long seen = 0;
    while (fgets(buf, sizeof buf, fh)) {
        if (seen++ < skip) continue;
        buf[strcspn(buf, "\n")] = 0;
        if (nlines == cap) { cap *= 2; lines = realloc(lines, cap * sizeof *lines); }
        lines[nlines++] = strdup(buf);
    }
    fclose(fh);

    LDAP **lds = calloc(conns, sizeof *lds);
    int *msgids = calloc(conns, sizeof *msgids);
    double *started = calloc(conns, sizeof *started);
    struct pollfd *pfds = calloc(conns, sizeof *pfds);
    int version = LDAP_VERSION3;
    for (int i = 0; i < conns; i++) {
        if (ldap_initialize(&lds[i], uri) != LDAP_SUCCESS) { fprintf(stderr, "ldap_initialize failed\n"); return 1; }
        ldap_set_option(lds[i], LDAP_OPT_PROTOCOL_VERSION, &version);
        struct berval cred = { strlen(pw), (char *)pw };
        int rc = ldap_sasl_bind_s(lds[i], binddn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
        if (rc != LDAP_SUCCESS) { fprintf(stderr, "bind: %s\n", ldap_err2string(rc)); return 1; }
        ldap_get_option(lds[i], LDAP_OPT_DESC, &pfds[i].fd);
        pfds[i].events = POLLIN;
    }
    long lat_cap = 1 << 20, nlat = 0, ops = 0, errors = 0, exhausted = 0;
    double *lat = malloc(lat_cap * sizeof *lat);
    int first_err = 0;
    double t0 = now_us(), end = t0 + dur * 1e6;
    int active = 0;
    for (int i = 0; i < conns; i++) {
        int rc = start_op(lds[i], &msgids[i]);
        if (rc == LDAP_SUCCESS) { started[i] = now_us(); active++; } else { msgids[i] = -1; if (rc == -2) exhausted = 1; }
    }
    struct timeval zero = { 0, 0 };
    while (active > 0) {
        int n = poll(pfds, conns, 100);
        if (n < 0) { perror("poll"); break; }
        for (int i = 0; i < conns && n > 0; i++) {
            if (msgids[i] < 0 || !(pfds[i].revents & (POLLIN | POLLERR | POLLHUP))) continue;
            LDAPMessage *res = NULL;
            int got;
            while ((got = ldap_result(lds[i], msgids[i], LDAP_MSG_ALL, &zero, &res)) > 0) {
                int err = 0, entries = 0;
                for (LDAPMessage *m = ldap_first_message(lds[i], res); m; m = ldap_next_message(lds[i], m)) {
                    int t = ldap_msgtype(m);
                    if (t == LDAP_RES_SEARCH_ENTRY) entries++;
                    else {
                        ldap_parse_result(lds[i], m, &err, NULL, NULL, NULL, NULL, 0);
                    }
                }
                ldap_msgfree(res);
                int ok;
                if (!strcmp(mode, "compare")) ok = err == LDAP_COMPARE_TRUE;
                else if (!strcmp(mode, "search")) ok = err == LDAP_SUCCESS && entries == 1;
                else ok = err == LDAP_SUCCESS;
                double t = now_us();
                ops++;
                if (!ok) { errors++; if (!first_err) first_err = err ? err : -1; }
                if (nlat == lat_cap) { lat_cap *= 2; lat = realloc(lat, lat_cap * sizeof *lat); }
                lat[nlat++] = t - started[i];
                active--; msgids[i] = -1;
                if (t < end) {
                    int rc = start_op(lds[i], &msgids[i]);
                    if (rc == LDAP_SUCCESS) { started[i] = now_us(); active++; }
                    else { msgids[i] = -1; if (rc == -2) exhausted = 1; else if (rc != -3) { errors++; } }
                }
                break;
            }
            if (got < 0) { fprintf(stderr, "ldap_result failed on connection %d\n", i); return 1; }
        }
    }
    double el = now_us() - t0;
    qsort(lat, nlat, sizeof *lat, cmp_double);
#define PCT(p) (nlat ? lat[(long)((p) / 100.0 * (nlat - 1))] : 0)
    printf("BENCHJSON {\"requests\":%ld,\"duration_us\":%.0f,\"consumed\":%ld,\"exhausted\":%ld,\"errors\":%ld,\"first_error\":%d,"
           "\"p50_us\":%.0f,\"p90_us\":%.0f,\"p99_us\":%.0f,\"p999_us\":%.0f,\"lat_max_us\":%.0f}\n",
           ops, el, next_line, exhausted, errors, first_err, PCT(50), PCT(90), PCT(99), PCT(99.9), nlat ? lat[nlat - 1] : 0);
    for (int i = 0; i < conns; i++) ldap_unbind_ext_s(lds[i], NULL, NULL);
    return 0;
}
