#!/bin/sh
# fetch.sh - (re)fetch the plotting library the HTML report embeds, through npm.
#
# The report inlines Observable Plot (https://observablehq.com/plot/, ISC) and
# the d3 build it needs (https://d3js.org/, ISC), so a report is one file that
# works offline.  The minified files and their licences are committed next to
# this script, so building starhil never needs npm or the network; run this
# only to change the pinned versions (then rerun reports/assets/embed.py).
# `npm pack` checks each tarball against the registry's sha512 integrity; the
# sha256 of what we keep is written to SHA256SUMS and checked by embed.py.
set -eu
PLOT_VERSION=0.6.17
D3_VERSION=7.9.0        # the exact d3 Plot $PLOT_VERSION's UMD build names

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "@observablehq/plot@$PLOT_VERSION" "d3@$D3_VERSION" >/dev/null
mkdir plot d3
tar xzf "observablehq-plot-$PLOT_VERSION.tgz" -C plot
tar xzf "d3-$D3_VERSION.tgz" -C d3
cp plot/package/dist/plot.umd.min.js "$here/plot.umd.min.js"
cp plot/package/LICENSE "$here/LICENSE.plot"
cp d3/package/dist/d3.min.js "$here/d3.min.js"
cp d3/package/LICENSE "$here/LICENSE.d3"
cd "$here"
printf '@observablehq/plot %s\nd3 %s\n' "$PLOT_VERSION" "$D3_VERSION" > VERSIONS
sha256sum plot.umd.min.js d3.min.js LICENSE.plot LICENSE.d3 > SHA256SUMS
echo "fetched Plot $PLOT_VERSION and d3 $D3_VERSION into $here; now run python3 reports/assets/embed.py"
