/* report_html.c - the self-contained HTML pages (run report, chip-profile
 * comparison): the data as JSON inside the page, drawn by inline JavaScript
 * (reports/assets/report.js) with the inlined Observable Plot + d3 build
 * (reports/assets/vendor/, licences kept), all embedded via report_assets.h.
 * No external resource is referenced, so the page works offline. */
#include <stdlib.h>
#include <string.h>

#include "reports/report_assets.h"
#include "reports/report_data.h"

/* window.onerror is installed first, so any script error shows up in the page
 * (div#errors, body[data-errors]) where a headless browser's DOM dump sees it. */
static const char ERROR_TRAP[] =
    "<script>(function(){var n=0;function show(m){n++;var e=document.getElementById('errors');"
    "e.style.display='block';e.textContent+=m+'\\n';document.body.setAttribute('data-errors',String(n));}"
    "window.onerror=function(msg,src,line,col){show('error: '+msg+' (line '+line+':'+col+')');};"
    "window.addEventListener('unhandledrejection',function(ev){show('unhandled rejection: '+ev.reason);});"
    "})();</script>\n";

static void page_head(FILE *f, const char *title)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n<title>", f);
    sh_rep_html_escape(f, title);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body data-drawn=\"0\">\n", SH_REPORT_CSS);
    fputs("<div id=\"errors\"></div>\n", f);
    fputs(ERROR_TRAP, f);
    fputs("<h1>", f);
    sh_rep_html_escape(f, title);
    fputs("</h1>\n", f);
}

static int page_tail(FILE *f, const char *json, sh_err *err)
{
    char *safe = sh_rep_json_for_script(json);
    if (!safe) return sh_err_set(err, "report: out of memory");
    fputs("<div id=\"tip\" class=\"tip\"></div>\n<script type=\"application/json\" id=\"report-data\">", f);
    fputs(safe, f);
    free(safe);
    fputs("</script>\n<script>\n", f);
    fputs(SH_REPORT_VENDOR_JS, f);
    fprintf(f, "</script>\n<script>\n%s</script>\n</body>\n</html>\n", SH_REPORT_JS);
    return ferror(f) ? sh_err_set(err, "report: write error") : 0;
}

int sh_report_write_html(const sh_report *r, FILE *f, sh_err *err)
{
    char *json = sh_report_json(r, false, err);
    if (!json) return -1;
    char title[256];
    snprintf(title, sizeof title, "starhil run %lld: %s", (long long)r->run.id, r->run.name);
    page_head(f, title);
    fputs("<div id=\"summary\"></div>\n"
          "<h2>Front: capability against decode latency, peak memory and cache</h2>\n"
          "<p>Each point is a genome measured on a device; points off the front are faded, "
          "diamonds are presets measured on the same device. Move the latency budget to see which front "
          "genome is best under it; hover or click a point to see its genome, layer pattern and "
          "measurements.</p>\n"
          "<div id=\"plots\"></div>\n"
          "<h2>Hypervolume over evaluations</h2>\n<div id=\"hv\"></div>\n"
          "<h2>Devices</h2>\n<div id=\"topology\"></div>\n"
          "<h2>Tables</h2>\n<p>Click a column header to sort.</p>\n<div id=\"tables\"></div>\n", f);
    int rc = page_tail(f, json, err);
    free(json);
    return rc;
}

int sh_prof_write_html(const sh_prof_table *t, FILE *f, sh_err *err)
{
    char *json = sh_prof_json(t, err);
    if (!json) return -1;
    char title[512] = "starhil chip profiles:";
    for (int k = 0; k < t->n_devices; k++) {
        size_t n = strlen(title);
        snprintf(title + n, sizeof title - n, "%s %s", k ? "," : "", t->devices[k]);
    }
    page_head(f, title);
    fputs("<p>Latency of each profiled block per device, with the ratio to the first device "
          "(click a column header to sort).</p>\n<div id=\"profiles\"></div>\n", f);
    int rc = page_tail(f, json, err);
    free(json);
    return rc;
}
