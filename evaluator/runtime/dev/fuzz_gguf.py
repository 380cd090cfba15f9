#!/usr/bin/python3
"""dev/fuzz_gguf.py GOOD.gguf VARIANT N - corrupts a valid GGUF N ways (truncation, byte
flips, absurd counts/lengths) and checks the variant exits 0 or 1 without a sanitizer
report (build VARIANT with -fsanitize=address,undefined)."""
import random, subprocess, sys, os
src = open(sys.argv[1], 'rb').read(); exe = sys.argv[2]; n = int(sys.argv[3])
random.seed(1)
bad = 0
msgs = {}
for i in range(n):
    b = bytearray(src)
    kind = i % 4
    if kind == 0: b = b[:random.randrange(0, len(b))]
    elif kind == 1:
        for _ in range(random.randrange(1, 8)):
            p = random.randrange(0, min(len(b), 4096)); b[p] = random.randrange(256)
    elif kind == 2:
        p = random.randrange(4, min(len(b), 4096) - 8); b[p:p+8] = random.choice([b'\xff'*8, b'\x00'*8, (1<<40).to_bytes(8,'little'), (2**63).to_bytes(8,'little')])
    else:
        p = random.randrange(0, len(b)); b[p] ^= 0xff
    open('/tmp/fz.gguf', 'wb').write(b)
    r = subprocess.run([exe, 'logits', '--tokens', '1,2,3', '--gguf', '/tmp/fz.gguf', '--out', '/tmp/fz.bin'], capture_output=True, text=True, errors='replace')
    if r.returncode not in (0, 1) or 'Sanitizer' in r.stderr or 'runtime error' in r.stderr:
        bad += 1; print('BAD', i, kind, r.returncode, r.stderr[:300]); open('/tmp/bad%d.gguf' % i, 'wb').write(b)
    elif r.returncode: msgs[r.stderr.split('gguf: ')[-1][:40]] = 1
print('cases', n, 'bad', bad)
for m in list(msgs)[:15]: print('  ', m.strip())
