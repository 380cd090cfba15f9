#!/usr/bin/python3
"""runtime_table.py - the table of bench_runtime.sh: variant bench JSON vs the
llama.cpp reference numbers and the decode roofline (bandwidth / weight bytes)."""
import json
import os
import sys

# llama.cpp reference (tok/s, 2 threads), in the order given in the project brief:
# LFM2-350M q8_0 300/62, q4_0 427/130; LFM2-1.2B q4_0 120/42, q8_0 80/20 (prefill/decode).
REF = {('lfm2-350m', 'q8_0'): (300, 62), ('lfm2-350m', 'q4_0'): (427, 130),
       ('lfm2-1.2b', 'q4_0'): (120, 42), ('lfm2-1.2b', 'q8_0'): (80, 20)}
ROOFLINE_TARGET = 0.80
MiB = 1024.0 * 1024.0


def main():
    out, models, types = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
    bw = json.load(open(os.path.join(out, 'membw.json')))['gb_s']
    cols = ['model', 'type', 'pre t/s', 'llama', 'ratio', 'dec t/s', 'llama', 'ratio',
            'weights MiB', 'GB/s', 'roof t/s', 'of roof', 'RSS MiB', 'overhead MiB']
    rows = []
    below = 0
    for m in models:
        for t in types:
            b = json.load(open(os.path.join(out, '%s-%s.json' % (m, t))))
            ref_p, ref_d = REF.get((m, t), (None, None))
            wb = b['weight_bytes']
            roof = bw * 1e9 / wb
            frac = b['decode_tok_s'] / roof
            below += frac < ROOFLINE_TARGET
            over = (b['peak_rss_bytes'] - wb - b['kv_bytes'] - b['conv_state_bytes']) / MiB
            rows.append([m, t, '%.1f' % b['prefill_tok_s'], str(ref_p or '-'),
                         '%.2f' % (b['prefill_tok_s'] / ref_p) if ref_p else '-',
                         '%.1f' % b['decode_tok_s'], str(ref_d or '-'),
                         '%.2f' % (b['decode_tok_s'] / ref_d) if ref_d else '-',
                         '%.1f' % (wb / MiB), '%.1f' % bw, '%.1f' % roof, '%.2f' % frac,
                         '%.1f' % (b['peak_rss_bytes'] / MiB), '%.1f' % over])
    width = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    print('  '.join(c.rjust(w) for c, w in zip(cols, width)))
    for r in rows:
        print('  '.join(v.rjust(w) for v, w in zip(r, width)))
    print('roofline decode = bandwidth / weight bytes per token; target fraction >= %.2f '
          '(%d of %d rows below)' % (ROOFLINE_TARGET, below, len(rows)))
    print('overhead = peak RSS - (weights + KV cache + conv state)')


if __name__ == '__main__':
    main()
