#!/usr/bin/python3
"""runtime_table.py - the table of bench_runtime.sh: variant bench JSON vs the
llama.cpp reference numbers and the decode roofline (bandwidth / weight bytes)."""
import json
import os
import sys

# llama.cpp reference (tok/s, 2 threads), in the order given in the project brief:
# LFM2-350M q8_0 300/62, q4_0 427/130; LFM2-1.2B q4_0 120/42, q8_0 80/20
# (llama-bench pp512 / tg: decode from an empty context).
REF = {('lfm2-350m', 'q8_0'): (300, 62), ('lfm2-350m', 'q4_0'): (427, 130),
       ('lfm2-1.2b', 'q4_0'): (120, 42), ('lfm2-1.2b', 'q8_0'): (80, 20)}
ROOFLINE_TARGET = 0.80
MiB = 1024.0 * 1024.0


def load(path):
    with open(path) as f:
        return json.load(f)


def load_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def main():
    out, models, types = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
    prompt, gen = sys.argv[4], sys.argv[5]
    cols = ['model', 'type', 'pp%s t/s' % prompt, 'llama', 'ratio', 'tg%s t/s' % gen, 'llama', 'ratio',
            'tg@%s' % prompt, 'weights MiB', 'GB/s', 'roof t/s', 'of roof', 'RSS MiB', 'overhead MiB']
    rows = []
    missed = []
    for m in models:
        for t in types:
            row = os.path.join(out, '%s-%s' % (m, t))
            pp = load(row + '.pp.json')
            tgs = load_lines(row + '.tg.jsonl')
            bws = [b['gb_s'] for b in load_lines(row + '.bw.jsonl')]
            if len(bws) != len(tgs) + 1:
                sys.exit('runtime_table: %s: %d bandwidth readings for %d tg runs' % (row, len(bws), len(tgs)))
            wb = pp['weight_bytes']
            # each tg run against the mean bandwidth just before and after it
            pair_bw = [0.5 * (bws[i] + bws[i + 1]) for i in range(len(tgs))]
            fracs = [tg['decode_tok_s'] * wb / (bw * 1e9) for tg, bw in zip(tgs, pair_bw)]
            dec, bw, frac = median([tg['decode_tok_s'] for tg in tgs]), median(pair_bw), median(fracs)
            roof = bw * 1e9 / wb
            ref_p, ref_d = REF.get((m, t), (None, None))
            if frac < ROOFLINE_TARGET:
                missed.append('%s %s roofline %.2f' % (m, t, frac))
            if ref_p and pp['prefill_tok_s'] < ref_p:
                missed.append('%s %s prefill %.1f < %d' % (m, t, pp['prefill_tok_s'], ref_p))
            if ref_d and dec < ref_d:
                missed.append('%s %s decode %.1f < %d' % (m, t, dec, ref_d))
            over = (pp['peak_rss_bytes'] - wb - pp['kv_bytes'] - pp['conv_state_bytes']) / MiB
            rows.append([m, t, '%.1f' % pp['prefill_tok_s'], str(ref_p or '-'),
                         '%.2f' % (pp['prefill_tok_s'] / ref_p) if ref_p else '-',
                         '%.1f' % dec, str(ref_d or '-'),
                         '%.2f' % (dec / ref_d) if ref_d else '-',
                         '%.1f' % pp['decode_tok_s'],
                         '%.1f' % (wb / MiB), '%.1f' % bw, '%.1f' % roof, '%.2f' % frac,
                         '%.1f' % (pp['peak_rss_bytes'] / MiB), '%.1f' % over])
    width = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    print('  '.join(c.rjust(w) for c, w in zip(cols, width)))
    for r in rows:
        print('  '.join(v.rjust(w) for v, w in zip(r, width)))
    print('pp = prefill of a %s-token prompt; tg = decode of %s tokens from an empty context '
          '(llama-bench protocol); tg@%s = the same decode after the %s-token prompt' % (prompt, gen, prompt, prompt))
    print('tg, GB/s and of roof are medians over the tg runs; each run is paired with the mean '
          'bandwidth read just before and after it (median of 5 reads, the better of 4 KiB and huge pages)')
    print('roofline decode = bandwidth / weight bytes per token; target fraction >= %.2f' % ROOFLINE_TARGET)
    print('overhead = peak RSS - (weights + KV cache + conv state), from the pp run')
    print('targets: ' + ('all met' if not missed else 'missed: ' + '; '.join(missed)))


if __name__ == '__main__':
    main()
