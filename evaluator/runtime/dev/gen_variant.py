#!/usr/bin/python3
"""dev/gen_variant.py - writes a sample sh_variant.h for developing the runtime
without the host side (same macros as evaluator/build.c generates).
usage: gen_variant.py PRESET OUTDIR   (presets: tiny, tinymoe, kq, lfm2-350m, lfm2-1.2b, qwen-ish)"""
import sys, os

def lfm2(d, F, heads, n=16, attn=(2, 5, 8, 10, 12, 14)):
    return dict(d=d, v=65536, hd=64, theta=1e6, eps=1e-5, ctx=128000, tie=1, layers=[
        ('gqa', 0, heads, 8, 1) if i in attn else ('conv', 3, 0, 0, 0) for i in range(n)], ffn=[('swiglu', F, 0, 0, 0, 0)] * n)

P = {
    'lfm2-350m': lfm2(1024, 4608, 16),
    'lfm2-1.2b': lfm2(2048, 8192, 32),
    'tiny': dict(d=128, v=512, hd=32, theta=1e6, eps=1e-5, ctx=4096, tie=1,
                 layers=[('conv', 3, 0, 0, 0), ('gqa', 0, 4, 2, 1), ('conv', 3, 0, 0, 0), ('gqa', 0, 8, 2, 0)],
                 ffn=[('swiglu', 256, 0, 0, 0, 0), ('swiglu', 384, 0, 0, 0, 0), ('swiglu', 256, 0, 0, 0, 0), ('swiglu', 256, 0, 0, 0, 0)]),
    'tconv': dict(d=128, v=512, hd=32, theta=1e6, eps=1e-5, ctx=4096, tie=1,
                  layers=[('conv', 3, 0, 0, 0)], ffn=[('swiglu', 256, 0, 0, 0, 0)]),
    'tattn': dict(d=128, v=512, hd=32, theta=1e6, eps=1e-5, ctx=4096, tie=1,
                  layers=[('gqa', 0, 4, 2, 1)], ffn=[('swiglu', 256, 0, 0, 0, 0)]),
    'small': dict(d=512, v=2048, hd=64, theta=1e6, eps=1e-5, ctx=4096, tie=1,
                  layers=[('conv', 3, 0, 0, 0), ('gqa', 0, 8, 2, 1), ('conv', 3, 0, 0, 0), ('gqa', 0, 8, 4, 1)],
                  ffn=[('swiglu', 1536, 0, 0, 0, 0), ('swiglu', 1536, 0, 0, 0, 0), ('moe', 0, 8, 2, 544, 1), ('moe', 0, 8, 2, 544, 1)]),
    'tinymoe': dict(d=128, v=512, hd=32, theta=1e6, eps=1e-5, ctx=4096, tie=0,
                    layers=[('conv', 3, 0, 0, 0), ('gqa', 0, 4, 2, 1), ('conv', 3, 0, 0, 0), ('gqa', 0, 4, 4, 1)],
                    ffn=[('swiglu', 256, 0, 0, 0, 0), ('moe', 0, 8, 2, 64, 1), ('moe', 0, 8, 2, 64, 1), ('moe', 0, 8, 2, 64, 1)]),
    'kq': dict(d=256, v=512, hd=64, theta=1e6, eps=1e-5, ctx=4096, tie=1,   # every row a multiple of 256 (k-quants)
               layers=[('conv', 3, 0, 0, 0), ('gqa', 0, 4, 2, 1), ('conv', 3, 0, 0, 0), ('gqa', 0, 4, 4, 1)],
               ffn=[('swiglu', 512, 0, 0, 0, 0), ('swiglu', 768, 0, 0, 0, 0), ('moe', 0, 4, 2, 256, 1), ('moe', 0, 4, 2, 256, 1)]),
    'llama3ish': dict(d=128, v=512, hd=32, theta=5e5, eps=1e-5, ctx=4096, tie=1, rope=(32.0, 1.0, 4.0, 64),
                      layers=[('gqa', 0, 8, 2, 0)] * 2, ffn=[('swiglu', 256, 0, 0, 0, 0)] * 2),
}

def main():
    name, out = sys.argv[1], sys.argv[2]
    g = P[name]
    os.makedirs(out, exist_ok=True)
    rows = []
    for (m, L, h, kv, qk), (f, F, E, K, Fe, rb) in zip(g['layers'], g['ffn']):
        rows.append('    { %s, %d, %d, %d, %d, %s, %d, %d, %d, %d, %d }' % (
            'SHV_CONV' if m == 'conv' else 'SHV_GQA', L, h, kv, qk, 'SHV_SWIGLU' if f == 'swiglu' else 'SHV_MOE', F, E, K, Fe, rb))
    rope = g.get('rope')
    with open(os.path.join(out, 'sh_variant.h'), 'w') as fh:
        fh.write('/* sh_variant.h - dev sample (%s) */\n' % name)
        fh.write('#define SHV_GENOME_HASH "dev%-13s"\n' % name.replace('-', '')[:13].ljust(13, '0'))
        fh.write('#define SHV_GENOME_TEXT "dev preset %s"\n' % name)
        for k, m in (('v', 'VOCAB'), ('d', 'HIDDEN'), ('hd', 'HEAD_DIM')):
            fh.write('#define SHV_%s %d\n' % (m, g[k]))
        fh.write('#define SHV_ROPE_THETA %r\n#define SHV_NORM_EPS %r\n' % (float(g['theta']), g['eps']))
        fh.write('#define SHV_MAX_CONTEXT %d\n#define SHV_TIED %d\n' % (g['ctx'], g['tie']))
        if rope:
            fh.write('#define SHV_ROPE_SCALING 1\n#define SHV_ROPE_FACTOR %r\n#define SHV_ROPE_LOW_FREQ %r\n'
                     '#define SHV_ROPE_HIGH_FREQ %r\n#define SHV_ROPE_ORIG_CTX %d\n' % rope)
        else:
            fh.write('#define SHV_ROPE_SCALING 0\n#define SHV_ROPE_FACTOR 1.0\n#define SHV_ROPE_LOW_FREQ 1.0\n'
                     '#define SHV_ROPE_HIGH_FREQ 4.0\n#define SHV_ROPE_ORIG_CTX 8192\n')
        fh.write('#define SHV_N_LAYERS %d\n' % len(rows))
        fh.write('#define SHV_LAYER_TABLE { \\\n' + ', \\\n'.join(rows) + ' }\n')

main()
