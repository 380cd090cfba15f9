#!/bin/sh
# check_layers.sh [ROOT] - fails when a module includes a header of a module it
# may not call.  The allowed calls are read from ROOT/ARCHITECTURE.md, table
# "Who owns what" (first column the module, third "may call"), so the document
# and the check cannot drift apart.  Every `#include "dir/file.h"` of every .c
# and .h below ROOT (tests/, bench/ and build/ left out) is checked: a file of
# module A may include its own module's headers and those of the modules named
# in A's "may call" cell (a folder below a module, e.g. evaluator/capability,
# counts as that module).  The one exception is the command layer: a
# `*_cli.c` file may include cli/ (commands.h, clidb.h), which composes them.
# A module folder without a row in the table is an error too.
# Prints one line per offending include (file:line: ...) and exits 1; 0 and
# "layers: N includes checked, no arrow against ARCHITECTURE.md" otherwise.
root=${1:-.}
doc="$root/ARCHITECTURE.md"
[ -f "$doc" ] || { echo "check_layers: $doc: not found" >&2; exit 2; }
table=$(awk '
    /^## Who owns what/ { on = 1; next }
    on && /^## / { exit }
    on && /^\| `[a-z_\/]+\/?`/ {
        n = split($0, cell, "|")
        mod = cell[2]; gsub(/[` ]/, "", mod); sub(/\/$/, "", mod)
        calls = cell[4]
        if (calls ~ /every module/) { print mod " *"; next }
        gsub(/[^a-z_\/.]+/, " ", calls)
        print mod " " calls
    }' "$doc")
[ -n "$table" ] || { echo "check_layers: $doc: no \"Who owns what\" table" >&2; exit 2; }
cd "$root" || exit 2
find . \( -path ./tests -o -path ./bench -o -path ./build -o -path ./.git \) -prune -o \
     -type f \( -name '*.c' -o -name '*.h' \) -print | sed 's#^\./##' | sort |
awk -v table="$table" '
    BEGIN {
        n = split(table, rows, "\n")
        for (i = 1; i <= n; i++) {
            k = split(rows[i], w, " ")
            known[w[1]] = 1
            for (j = 2; j <= k; j++) { m = w[j]; sub(/\/.*/, "", m); may[w[1], m] = 1 }
        }
    }
    {
        file = $0; mod = file; sub(/\/.*/, "", mod)
        if (file !~ /\//) next
        if (!(mod in known)) { printf "%s: module %s/ has no row in ARCHITECTURE.md \"Who owns what\"\n", file, mod; bad++; next }
        line = 0
        while ((getline l < file) > 0) {
            line++
            if (l !~ /^[ \t]*#[ \t]*include[ \t]*"[a-z_]+\//) continue
            inc = l; sub(/^[^"]*"/, "", inc); sub(/".*/, "", inc)
            to = inc; sub(/\/.*/, "", to)
            checked++
            if (to == mod || !(to in known) || may[mod, "*"] || may[mod, to]) continue
            if (to == "cli" && file ~ /_cli\.c$/) continue
            printf "%s:%d: %s/ includes %s, but ARCHITECTURE.md says %s/ may not call %s/\n", file, line, mod, inc, mod, to
            bad++
        }
        close(file)
    }
    END {
        if (bad) exit 1
        printf "layers: %d includes checked, no arrow against ARCHITECTURE.md\n", checked
    }'
