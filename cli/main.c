/* main.c - the `starhil` entry point: global options and git-style dispatch to
 * the subcommands declared in commands.h. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "util/cliopt.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

/* search, then report: the search prints its front, the report module writes
 * the HTML page of the finished run. */
static int cmd_search(int argc, char **argv)
{
    int64_t finished = 0;
    int rc = sh_cmd_search_run(argc, argv, &finished);
    if (rc == 0 && finished > 0) sh_report_run_end(finished);
    return rc;
}

static const command COMMANDS[] = {
    {"genome",  sh_cmd_genome,  "list, show, compare, validate, convert and import genomes"},
    {"build",   sh_cmd_build,   "compile a genome into a runtime variant for a target"},
    {"score",   sh_cmd_score,   "capability score of a genome (built-in synthetic tasks or external)"},
    {"device",  sh_cmd_device,  "add, list, probe, check and remove measurement devices"},
    {"measure", sh_cmd_measure, "measure a genome's latency and memory on a device"},
    {"profile", sh_cmd_profile, "sweep block kinds on a device into a chip profile"},
    {"search",  cmd_search,     "run (or resume) a multi-objective architecture search"},
    {"front",   sh_cmd_front,   "print a run's current Pareto front"},
    {"runs",    sh_cmd_runs,    "list and show runs stored in the database"},
    {"report",  sh_cmd_report,  "write an HTML/CSV/JSON/Markdown report of a run"},
    {"export",  sh_cmd_export,  "export a genome as a Hugging Face config.json or a GGUF file"},
    {"compare", sh_cmd_compare, "measure presets side by side on a device"},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *f)
{
    fprintf(f,
        "usage: starhil [--db FILE] COMMAND [ARGS]\n\n"
        "Hardware-in-the-loop search of edge language-model architectures.\n\n"
        "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-9s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f,
        "\nglobal options:\n"
        "  --db FILE   run database (default $STARHIL_DB or ./starhil.db)\n"
        "  --help      this text; `starhil COMMAND --help` for a command\n"
        "  --version   print the version\n");
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        if (!strcmp(argv[i], "--version")) { printf("starhil 0.1.0\n"); return 0; }
        if (!strcmp(argv[i], "--db")) {
            if (i + 1 >= argc) { fprintf(stderr, "starhil: --db needs a file name\n"); return 2; }
            sh_cli_set_db_path(argv[++i]);
        } else if (!strncmp(argv[i], "--db=", 5)) {
            sh_cli_set_db_path(argv[i] + 5);
        } else {
            fprintf(stderr, "starhil: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) { usage(stderr); return 2; }
    if (!strcmp(argv[i], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[i], "genome") && i + 1 < argc && !strcmp(argv[i + 1], "import"))
        return sh_cmd_genome_import(argc - i - 1, argv + i + 1);
    for (size_t c = 0; c < N_COMMANDS; c++)
        if (!strcmp(argv[i], COMMANDS[c].name))
            return COMMANDS[c].run(argc - i, argv + i);
    fprintf(stderr, "starhil: unknown command '%s' (see starhil --help)\n", argv[i]);
    return 2;
}
