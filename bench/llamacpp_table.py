#!/usr/bin/python3
"""llamacpp_table.py OUTDIR JSON - the table of bench_llamacpp.sh: per model and type,
llama.cpp's and the variant's pp / tg tokens/s (median and min-max over the pairs),
their ratio (variant / llama.cpp, median of the per-pair ratios), the bandwidth read
before each run and decode bytes/s as a share of it, the peak RSS of each side (largest
over the pairs; runs.jsonl of older scripts has none: '?'), the uptime load and the commit."""
import json
import os
import sys


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def main():
    out, as_json = sys.argv[1], sys.argv[2] == '1'
    info = json.load(open(os.path.join(out, 'info.json')))
    runs = [json.loads(l) for l in open(os.path.join(out, 'runs.jsonl')) if l.strip()]
    up0 = open(os.path.join(out, 'uptime_before.txt')).read().strip()
    up1 = open(os.path.join(out, 'uptime_after.txt')).read().strip()
    keys = []
    for r in runs:
        if (r['model'], r['type']) not in keys:
            keys.append((r['model'], r['type']))
    rows = []
    for model, t in keys:
        rs = [r for r in runs if r['model'] == model and r['type'] == t]
        pairs = sorted(set(r['pair'] for r in rs))
        lp, lt, vp, vt, rp, rt, vfrac, lfrac, bws = [], [], [], [], [], [], [], [], []
        wb = rs[0]['gguf_bytes']
        for p in pairs:
            l = [r for r in rs if r['pair'] == p and r['who'] == 'llama']
            v = [r for r in rs if r['pair'] == p and r['who'] == 'variant']
            if not l or not v:
                continue
            l, v = l[0], v[0]
            a, b = l['run']['pp_tok_s'][0], l['run']['tg_tok_s'][0]
            c, d = v['run']['pp']['prefill_tok_s'], v['run']['tg']['decode_tok_s']
            wb = v['run']['tg'].get('weight_bytes', wb)
            lp.append(a); lt.append(b); vp.append(c); vt.append(d)
            rp.append(c / a); rt.append(d / b)
            lbw, vbw = l['bw']['gb_s'], v['bw']['gb_s']
            bws += [lbw, vbw]
            lfrac.append(b * wb / (lbw * 1e9)); vfrac.append(d * wb / (vbw * 1e9))
        lr = [r['peak_rss_bytes'] for r in rs if r['who'] == 'llama' and r.get('peak_rss_bytes')]
        vr = [r['peak_rss_bytes'] for r in rs if r['who'] == 'variant' and r.get('peak_rss_bytes')]
        rows.append(dict(model=model, type=t, made=rs[0].get('made', ''), pairs=len(lp), weight_bytes=wb,
                         llama_peak_rss_bytes=max(lr) if lr else None, variant_peak_rss_bytes=max(vr) if vr else None,
                         load=[r.get('load1') for r in rs],
                         llama_pp=median(lp), llama_pp_range=[min(lp), max(lp)],
                         variant_pp=median(vp), variant_pp_range=[min(vp), max(vp)], pp_ratio=median(rp),
                         llama_tg=median(lt), llama_tg_range=[min(lt), max(lt)],
                         variant_tg=median(vt), variant_tg_range=[min(vt), max(vt)], tg_ratio=median(rt),
                         bw_gb_s=median(bws), llama_tg_of_bw=median(lfrac), variant_tg_of_bw=median(vfrac)))
    res = dict(llamacpp_commit=info.get('commit'), runner=info.get('runner', 'llamacpp_peer'), llamacpp_system_info=info.get('system_info'),
               uptime_before=up0, uptime_after=up1, rows=rows)
    if as_json:
        print(json.dumps(res, indent=1))
        return
    runner = info.get('runner') or 'CPU library via bench/llamacpp_peer.c'
    print('llama.cpp %s (%s), %d pairs per row' % (
        res['llamacpp_commit'], runner, max([r['pairs'] for r in rows] or [0])))
    for r in rows:
        if r.get('made', '').startswith('llama-quantize'):
            print('%s %s: file made by %s' % (r['model'], r['type'], r['made']))
    hdr = ['model', 'type', 'llama pp', 'variant pp', 'pp x', 'llama tg', 'variant tg', 'tg x',
           'GB/s', 'llama tg/bw', 'variant tg/bw', 'llama RSS MiB', 'variant RSS MiB', 'RSS x', 'load']
    print('| ' + ' | '.join(hdr) + ' |')
    print('|' + '---|' * len(hdr))
    for r in rows:
        f = lambda m, rg: '%.1f (%.1f-%.1f)' % (m, rg[0], rg[1])
        ld = [x for x in r['load'] if x is not None]
        lrss, vrss = r['llama_peak_rss_bytes'], r['variant_peak_rss_bytes']
        mib = lambda b: '%.0f' % (b / 1048576.0) if b else '?'
        print('| %s | %s | %s | %s | %.2f | %s | %s | %.2f | %.1f | %.2f | %.2f | %s | %s | %s | %s |' % (
            r['model'], r['type'], f(r['llama_pp'], r['llama_pp_range']), f(r['variant_pp'], r['variant_pp_range']),
            r['pp_ratio'], f(r['llama_tg'], r['llama_tg_range']), f(r['variant_tg'], r['variant_tg_range']),
            r['tg_ratio'], r['bw_gb_s'], r['llama_tg_of_bw'], r['variant_tg_of_bw'],
            mib(lrss), mib(vrss), '%.2f' % (vrss / lrss) if lrss and vrss else '?',
            '%.1f-%.1f' % (min(ld), max(ld)) if ld else '?'))
    print('tokens/s: median (min-max) over the pairs; x = median of per-pair ratios variant/llama.cpp; '
          'tg/bw = weight bytes x tg tok/s / bandwidth read just before that run; '
          'RSS = peak resident set of the process (llama-bench: pp and tg in one process; variant: the larger '
          'of its prefill and decode processes), largest over the pairs; RSS x = variant/llama.cpp; '
          'load = 1-minute load average before each run (min-max)')
    print('uptime before: ' + up0)
    print('uptime after:  ' + up1)


if __name__ == '__main__':
    main()
