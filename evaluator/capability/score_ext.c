/* score_ext.c - external capability scorers: `cmd:PROGRAM ARGS` (run through
 * util/proc.h, never a shell, genome JSON on stdin, JSON scores on stdout) and
 * http(s):// URLs (libcurl POST with timeouts, retries with backoff on
 * connection errors and 5xx, TLS verification on unless disabled, optional
 * bearer token from an environment variable, reply size cap). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "evaluator/capability/score_ext.h"
#include "util/proc.h"

/* ---- argv splitting ------------------------------------------------------------- */
void sh_score_argv_free(char **argv)
{
    if (!argv) return;
    for (char **a = argv; *a; a++) free(*a);
    free(argv);
}

char **sh_score_split_argv(const char *cmd, int *argc_out, sh_err *err)
{
    size_t len = strlen(cmd);
    if (len > 8192) { sh_err_set(err, "cmd scorer: command longer than 8192 characters"); return NULL; }
    char **argv = calloc(len / 2 + 2, sizeof *argv);
    char *word = malloc(len + 1);
    if (!argv || !word) { free(argv); free(word); sh_err_set(err, "cmd scorer: out of memory"); return NULL; }
    int argc = 0;
    const char *p = cmd;
    for (;;) {
        while (*p && isspace((unsigned char)*p)) p++;
        if (!*p) break;
        size_t n = 0;
        while (*p && !isspace((unsigned char)*p)) {
            if (*p == '\'') {
                const char *e = strchr(p + 1, '\'');
                if (!e) goto unterminated;
                memcpy(word + n, p + 1, (size_t)(e - p - 1));
                n += (size_t)(e - p - 1);
                p = e + 1;
            } else if (*p == '"') {
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) p++;
                    word[n++] = *p++;
                }
                if (!*p) goto unterminated;
                p++;
            } else if (*p == '\\' && p[1]) {
                word[n++] = p[1];
                p += 2;
            } else {
                word[n++] = *p++;
            }
        }
        word[n] = 0;
        argv[argc] = strdup(word);
        if (!argv[argc]) { free(word); sh_score_argv_free(argv); sh_err_set(err, "cmd scorer: out of memory"); return NULL; }
        argc++;
    }
    free(word);
    if (argc == 0) { sh_score_argv_free(argv); sh_err_set(err, "cmd scorer: empty command (use cmd:PROGRAM ARGS)"); return NULL; }
    if (argc_out) *argc_out = argc;
    return argv;
unterminated:
    free(word);
    sh_score_argv_free(argv);
    sh_err_set(err, "cmd scorer: unterminated quote in command");
    return NULL;
}

/* ---- reply parsing ------------------------------------------------------------------ */
int sh_score_parse_reply(const char *text, size_t len, char **scores_json, double *aggregate, sh_err *err)
{
    *scores_json = NULL;
    if (len > SH_SCORER_MAX_REPLY) return sh_err_set(err, "reply larger than %d bytes", SH_SCORER_MAX_REPLY);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return sh_err_set(err, "reply is not JSON (line %d: %.120s)", je.line, je.text);
    if (!json_is_object(root)) { json_decref(root); return sh_err_set(err, "reply is JSON but not an object of scores"); }
    if (json_object_size(root) == 0) { json_decref(root); return sh_err_set(err, "reply holds no scores"); }
    if (json_object_size(root) > 10000) { json_decref(root); return sh_err_set(err, "reply holds too many scores"); }
    json_t *scores = json_object();
    const char *key;
    json_t *v;
    double sum = 0, agg = NAN;
    int n = 0;
    json_object_foreach(root, key, v) {
        if (!json_is_number(v) || !isfinite(json_number_value(v))) {
            sh_err_set(err, "reply score '%.64s' is not a finite number", key);
            json_decref(root); json_decref(scores);
            return -1;
        }
        if (strlen(key) > 128 || !*key) {
            json_decref(root); json_decref(scores);
            return sh_err_set(err, "reply has a score name that is empty or longer than 128 characters");
        }
        double x = json_number_value(v);
        if (!strcmp(key, "aggregate")) { agg = x; continue; }
        json_object_set_new(scores, key, json_real(x));
        sum += x;
        n++;
    }
    json_decref(root);
    if (n == 0 && isnan(agg)) { json_decref(scores); return sh_err_set(err, "reply holds no scores"); }
    if (isnan(agg)) agg = sum / n;
    if (n == 0) json_object_set_new(scores, "aggregate", json_real(agg));
    *aggregate = agg;
    *scores_json = json_dumps(scores, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(scores);
    return *scores_json ? 0 : sh_err_set(err, "out of memory");
}

/* The genome JSON an external scorer receives, plus what the caller asked for:
 * "proxy_scale" (width factor), "rung", "rungs" and "rung_fraction" (share of
 * the full training budget), so an external trainer can honour them. */
static char *request_json(const sh_genome *g, const sh_score_opts *o, sh_err *err)
{
    char *gj = sh_genome_to_json(g, false, err);
    if (!gj) return NULL;
    json_t *root = json_loads(gj, 0, NULL);
    free(gj);
    if (!json_is_object(root)) { json_decref(root); sh_err_set(err, "genome JSON: not an object"); return NULL; }
    int R = sh_score_rungs(o), r = sh_score_rung(o);
    json_object_set_new(root, "proxy_scale", json_real(o->scale > 0 ? o->scale : SH_SCORE_DEFAULT_SCALE));
    json_object_set_new(root, "rung", json_integer(r));
    json_object_set_new(root, "rungs", json_integer(R));
    json_object_set_new(root, "rung_fraction", json_real(sh_score_rung_fraction(r, R)));
    char *out = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (!out) sh_err_set(err, "out of memory");
    return out;
}

/* ---- cmd: --------------------------------------------------------------------------- */
int sh_score_run_cmd(const sh_genome *g, const char *cmd, const sh_score_opts *o,
                     char **scores_json, double *aggregate, sh_err *err)
{
    int argc;
    char **argv = sh_score_split_argv(cmd, &argc, err);
    if (!argv) return -1;
    char *gj = request_json(g, o, err);
    if (!gj) { sh_score_argv_free(argv); return sh_err_prefix(err, "cmd scorer"); }
    sh_proc_opts po = {.timeout_s = o->timeout_s > 0 ? o->timeout_s : 600, .stdin_data = gj,
                       .stdin_len = strlen(gj), .max_out = SH_SCORER_MAX_REPLY + 1, .max_err = 4096};
    sh_proc_result pr;
    int rc = sh_proc_run(argv, &po, &pr, err);
    free(gj);
    if (rc) {
        sh_err_prefix(err, "cmd scorer '%.64s'", argv[0]);
        sh_score_argv_free(argv);
        return -1;
    }
    char how[128];
    sh_proc_describe(&pr, how, sizeof how);
    if (pr.timed_out || !pr.exited || pr.exit_code != 0) {
        const char *e = pr.err ? pr.err : "";
        size_t el = strlen(e);
        while (el && isspace((unsigned char)e[el - 1])) el--;
        sh_err_set(err, "cmd scorer '%.64s' failed (%s)%s%.300s", argv[0], how, el ? ": " : "", e + (el > 300 ? el - 300 : 0));
        rc = -1;
    } else if (pr.out_truncated || pr.out_len > SH_SCORER_MAX_REPLY) {
        sh_err_set(err, "cmd scorer '%.64s': output larger than %d bytes", argv[0], SH_SCORER_MAX_REPLY);
        rc = -1;
    } else if (sh_score_parse_reply(pr.out ? pr.out : "", pr.out_len, scores_json, aggregate, err)) {
        sh_err_prefix(err, "cmd scorer '%.64s'", argv[0]);
        rc = -1;
    }
    sh_proc_result_free(&pr);
    sh_score_argv_free(argv);
    return rc;
}

/* ---- http(s) -------------------------------------------------------------------------- */
typedef struct buf { char *p; size_t n; int over; } buf;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    buf *b = ud;
    size_t add = size * nmemb;
    if (b->n + add > SH_SCORER_MAX_REPLY) { b->over = 1; return 0; }    /* aborts the transfer */
    char *np = realloc(b->p, b->n + add + 1);
    if (!np) return 0;
    b->p = np;
    memcpy(b->p + b->n, data, add);
    b->n += add;
    b->p[b->n] = 0;
    return add;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* One POST. Returns 0 with *status set when an HTTP reply arrived, -1 on a
 * transport error (message in err). */
static int post_once(const char *url, const char *body, const sh_score_opts *o, const char *auth,
                     buf *reply, long *status, sh_err *err)
{
    CURL *c = curl_easy_init();
    if (!c) return sh_err_set(err, "cannot initialise libcurl");
    char ebuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Accept: application/json");
    if (auth) hdr = curl_slist_append(hdr, auth);
    long tmo = (long)((o->timeout_s > 0 ? o->timeout_s : 600) * 1000);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, tmo);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, tmo < 30000 ? tmo : 30000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, o->insecure ? 0L : 2L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE, (long)SH_SCORER_MAX_REPLY);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    if (reply->over) return sh_err_set(err, "reply larger than %d bytes", SH_SCORER_MAX_REPLY);
    if (rc != CURLE_OK) {
        if (rc == CURLE_FILESIZE_EXCEEDED) return sh_err_set(err, "reply larger than %d bytes", SH_SCORER_MAX_REPLY);
        return sh_err_set(err, "%s", ebuf[0] ? ebuf : curl_easy_strerror(rc));
    }
    return 0;
}

int sh_score_run_http(const sh_genome *g, const char *url, const sh_score_opts *o,
                      char **scores_json, double *aggregate, sh_err *err)
{
    char auth[4200];
    const char *authp = NULL;
    if (o->token_env && *o->token_env) {
        const char *tok = getenv(o->token_env);
        if (!tok || !*tok) return sh_err_set(err, "http scorer: environment variable %.64s (bearer token) is not set", o->token_env);
        if (strlen(tok) > 4096 || strpbrk(tok, "\r\n"))
            return sh_err_set(err, "http scorer: token in %.64s is too long or holds a line break", o->token_env);
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
        authp = auth;
    }
    char *body = request_json(g, o, err);
    if (!body) return sh_err_prefix(err, "http scorer");
    int attempts = 1 + (o->retries > 0 ? o->retries : 0);
    double delay = o->backoff_s > 0 ? o->backoff_s : 0.5;
    int rc = -1;
    for (int a = 0; a < attempts; a++) {
        if (a) { sleep_s(delay); delay *= 2; }
        buf reply = {0};
        long status = 0;
        sh_err e = {{0}};
        int transport = post_once(url, body, o, authp, &reply, &status, &e);
        int retry = 0;
        if (transport) {
            sh_err_set(err, "http scorer %.100s: %s", url, e.msg);
            retry = !strstr(e.msg, "larger than");
        } else if (status >= 500) {
            sh_err_set(err, "http scorer %.100s: HTTP %ld", url, status);
            retry = 1;
        } else if (status < 200 || status >= 300) {
            sh_err_set(err, "http scorer %.100s: HTTP %ld (not retried)", url, status);
        } else if (sh_score_parse_reply(reply.p ? reply.p : "", reply.n, scores_json, aggregate, &e)) {
            sh_err_set(err, "http scorer %.100s: %s", url, e.msg);
        } else {
            rc = 0;
        }
        free(reply.p);
        if (rc == 0 || !retry) break;
        if (a + 1 < attempts) continue;
        sh_err_prefix(err, "after %d attempts", attempts);
    }
    free(body);
    return rc;
}
