#!/usr/bin/python3
"""dev/fuzz_gguf.py VARIANT N GOOD.gguf [GOOD2.gguf ...] - corrupts valid GGUFs N ways
(truncation, byte flips in the header and metadata, absurd counts/lengths, tensor types
rewritten to other ggml types incl. the k-quants q4_K/q5_K/q6_K and unsupported ones,
flips inside k-quant super-blocks) and checks the variant exits 0 or 1 without a
sanitizer report (build VARIANT with -fsanitize=address,undefined).  Prints the
number of executions, failures and the distinct error messages seen."""
import os, random, struct, subprocess, sys, tempfile, time

def tensor_type_offsets(b):
    """byte offsets of every tensor-info type field, and the end of the header"""
    o = 4
    def u32():
        nonlocal o; v = struct.unpack_from('<I', b, o)[0]; o += 4; return v
    def u64():
        nonlocal o; v = struct.unpack_from('<Q', b, o)[0]; o += 8; return v
    def skip_val(t):
        nonlocal o
        if t == 8: ln = u64(); o += ln
        elif t == 9:
            et = u32(); n = u64()
            for _ in range(n): skip_val(et)
        else: o += {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}[t]
    u32(); nt = u64(); nkv = u64()
    for _ in range(nkv):
        ln = u64(); o += ln; skip_val(u32())
    offs = []
    for _ in range(nt):
        ln = u64(); o += ln; nd = u32(); o += 8 * nd; offs.append(o); o += 4 + 8
    return offs, o

def main():
    exe, n, goods = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    srcs = [open(g, 'rb').read() for g in goods]
    meta = [tensor_type_offsets(s) for s in srcs]
    random.seed(int(os.environ.get('FUZZ_SEED', '1')))
    tmp = tempfile.mkdtemp(prefix='fuzz_gguf_')
    path, out = os.path.join(tmp, 'fz.gguf'), os.path.join(tmp, 'fz.bin')
    bad, msgs, t0 = 0, {}, time.time()
    types = [0, 1, 2, 8, 12, 13, 14, 10, 11, 15, 16, 30, 39, 255, 0x7fffffff, 0xffffffff]
    for i in range(n):
        k = i % len(srcs)
        b = bytearray(srcs[k]); offs, hend = meta[k]
        kind = i % 7
        if kind == 0: b = b[:random.randrange(0, len(b))]
        elif kind == 1:
            for _ in range(random.randrange(1, 8)):
                p = random.randrange(0, hend); b[p] = random.randrange(256)
        elif kind == 2:
            p = random.randrange(4, hend - 8)
            b[p:p+8] = random.choice([b'\xff'*8, b'\x00'*8, (1 << 40).to_bytes(8, 'little'), (2**63).to_bytes(8, 'little')])
        elif kind == 3:
            p = random.randrange(0, len(b)); b[p] ^= 0xff
        elif kind == 4 and offs:   # retype one or more tensors
            for _ in range(random.randrange(1, 4)):
                struct.pack_into('<I', b, random.choice(offs), random.choice(types))
        elif kind == 5:            # flips inside the data (scales, nibbles, fp16 d)
            for _ in range(random.randrange(1, 64)):
                p = random.randrange(hend, len(b)); b[p] = random.randrange(256)
        else:                      # retype and truncate
            if offs: struct.pack_into('<I', b, random.choice(offs), random.choice([12, 13, 14]))
            b = b[:random.randrange(hend, len(b))]
        open(path, 'wb').write(b)
        r = subprocess.run([exe, 'logits', '--tokens', '1,2,3', '--gguf', path, '--out', out],
                           capture_output=True, text=True, errors='replace')
        if r.returncode not in (0, 1) or 'Sanitizer' in r.stderr or 'runtime error' in r.stderr:
            bad += 1
            print('BAD', i, kind, r.returncode, r.stderr[:300])
            open(os.path.join(tmp, 'bad%d.gguf' % i), 'wb').write(b)
        elif r.returncode:
            msgs[r.stderr.split('gguf: ')[-1][:50].strip()] = msgs.get(r.stderr.split('gguf: ')[-1][:50].strip(), 0) + 1
    print('execs', n, 'bad', bad, 'seconds %.0f' % (time.time() - t0), 'kept in', tmp if bad else '(removed)')
    for m in sorted(msgs, key=lambda m: -msgs[m])[:20]: print('  %5d  %s' % (msgs[m], m))
    if not bad:
        for f in os.listdir(tmp): os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    sys.exit(1 if bad else 0)

if __name__ == '__main__':
    main()
