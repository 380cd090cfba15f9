/* resolve.c - turn a user's GENOME argument into a genome: a preset name, a
 * path to a file holding the text or JSON form, or inline canonical text. */
#include "genome/genome.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GENOME_FILE_MAX (1u << 20)

static int read_small_file(const char *path, char **out, sh_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sh_err_set(err, "%s: %s", path, strerror(errno));
    char *buf = malloc(GENOME_FILE_MAX + 1);
    if (!buf) { fclose(f); return sh_err_set(err, "%s: out of memory", path); }
    size_t n = fread(buf, 1, GENOME_FILE_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); return sh_err_set(err, "%s: read error", path); }
    if (n > GENOME_FILE_MAX) { free(buf); return sh_err_set(err, "%s: larger than %u bytes", path, GENOME_FILE_MAX); }
    if (memchr(buf, '\0', n)) { free(buf); return sh_err_set(err, "%s: contains a NUL byte (not a genome file)", path); }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

static int parse_any(const char *text, sh_genome *out, sh_err *err)
{
    const char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (*p == '{') return sh_genome_from_json(text, out, err);
    /* text files may carry comment lines starting with '#' and a trailing newline */
    size_t len_all = strlen(text);
    char *copy = malloc(len_all + 2);          /* each line gains one separating space */
    if (!copy) return sh_err_set(err, "out of memory");
    char *w = copy;
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        const char *s = line;
        while (s < line + len && (*s == ' ' || *s == '\t')) s++;
        if (*s != '#') { memcpy(w, line, len); w += len; *w++ = ' '; }
        line += len + (nl ? 1 : 0);
    }
    *w = '\0';
    int rc = sh_genome_parse(copy, out, err);
    free(copy);
    return rc;
}

int sh_genome_resolve(const char *arg, sh_genome *out, sh_err *err)
{
    if (!arg || !*arg) return sh_err_set(err, "empty genome argument");
    sh_err tmp;
    if (sh_preset_get(arg, out, &tmp) == 0) return 0;
    struct stat st;
    if (stat(arg, &st) == 0) {
        if (!S_ISREG(st.st_mode)) return sh_err_set(err, "%s: not a regular file", arg);
        char *text = NULL;
        if (read_small_file(arg, &text, err)) return -1;
        int rc = parse_any(text, out, err);
        free(text);
        if (rc) sh_err_prefix(err, "%s", arg);
        return rc;
    }
    if (strchr(arg, '|') || arg[0] == '{') return parse_any(arg, out, err);
    return sh_err_set(err, "'%.80s' is not a preset, a file or genome text (%s)", arg, tmp.msg);
}
