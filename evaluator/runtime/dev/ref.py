#!/usr/bin/python3
"""dev/ref.py GGUF TOKENS [all] - numpy reference forward pass of an lfm2/lfm2moe
GGUF written by `variant export` (f32/f16/q8_0/q4_0/q4_K/q5_K/q6_K tensors
dequantised), following the reference sheet section 3 (HF math).  Prints
last-position logits as JSON.  With ACTQ=1 in the environment every input of a
product with a block-quantised weight is rounded the way ggml's CPU path rounds
it: q8_0 blocks (fp16 scale) for q8_0/q4_0 weights, q8_K blocks (f32 scale
-127/max, ties to even) for the k-quants; nothing else is simulated."""
import os, sys, struct, json
import numpy as np

def read_gguf(path):
    b = open(path, 'rb').read()
    o = 0
    def u32():
        nonlocal o; v = struct.unpack_from('<I', b, o)[0]; o += 4; return v
    def u64():
        nonlocal o; v = struct.unpack_from('<Q', b, o)[0]; o += 8; return v
    def s():
        nonlocal o; n = u64(); v = b[o:o+n].decode(); o += n; return v
    fmt = {0:'B',1:'b',2:'H',3:'h',4:'I',5:'i',6:'f',7:'?',10:'Q',11:'q',12:'d'}
    def val(t):
        nonlocal o
        if t == 8: return s()
        if t == 9:
            et = u32(); n = u64(); return [val(et) for _ in range(n)]
        v = struct.unpack_from('<' + fmt[t], b, o)[0]; o += struct.calcsize(fmt[t]); return v
    assert b[:4] == b'GGUF'; o = 4; u32(); nt = u64(); nkv = u64()
    kv = {}
    for _ in range(nkv):
        k = s(); kv[k] = val(u32())
    ts = []
    for _ in range(nt):
        name = s(); nd = u32(); ne = [u64() for _ in range(nd)]; ty = u32(); off = u64()
        ts.append((name, ne, ty, off))
    al = kv.get('general.alignment', 32)
    data = (o + al - 1) // al * al
    out = {}
    for name, ne, ty, off in ts:
        n = int(np.prod(ne)); p = data + off
        if ty == 0: a = np.frombuffer(b, np.float32, n, p)
        elif ty == 1: a = np.frombuffer(b, np.float16, n, p).astype(np.float32)
        elif ty == 8:
            blk = np.frombuffer(b, np.uint8, n // 32 * 34, p).reshape(-1, 34)
            d = blk[:, :2].copy().view(np.float16).astype(np.float32)
            a = (blk[:, 2:].view(np.int8).astype(np.float32) * d).reshape(-1)
        elif ty == 2:
            blk = np.frombuffer(b, np.uint8, n // 32 * 18, p).reshape(-1, 18)
            d = blk[:, :2].copy().view(np.float16).astype(np.float32)
            q = blk[:, 2:]
            v = np.concatenate([(q & 15).astype(np.int32) - 8, (q >> 4).astype(np.int32) - 8], axis=1)
            a = (v.astype(np.float32) * d).reshape(-1)
        elif ty in (12, 13):
            bb = 144 if ty == 12 else 176
            blk = np.frombuffer(b, np.uint8, n // 256 * bb, p).reshape(-1, bb)
            a = deq_k45(blk, ty == 13).reshape(-1)
        elif ty == 14:
            blk = np.frombuffer(b, np.uint8, n // 256 * 210, p).reshape(-1, 210)
            a = deq_k6(blk).reshape(-1)
        else: raise SystemExit('type %d' % ty)
        out[name] = a.reshape(list(reversed(ne))).astype(np.float64)
        TYPES[name] = ty
    return kv, out

TYPES = {}

def deq_k45(blk, five):
    """q4_K / q5_K super-blocks -> [nb, 256] (ggml-common.h layout)"""
    d = blk[:, 0:2].copy().view(np.float16).astype(np.float64)[:, 0]
    dm = blk[:, 2:4].copy().view(np.float16).astype(np.float64)[:, 0]
    sc = blk[:, 4:16].astype(np.int32)
    S = np.zeros((blk.shape[0], 8)); M = np.zeros((blk.shape[0], 8))
    for j in range(8):
        if j < 4: S[:, j] = sc[:, j] & 63; M[:, j] = sc[:, j + 4] & 63
        else:
            S[:, j] = (sc[:, j + 4] & 15) | ((sc[:, j - 4] >> 6) << 4)
            M[:, j] = (sc[:, j + 4] >> 4) | ((sc[:, j] >> 6) << 4)
    qs = blk[:, 48:176] if five else blk[:, 16:144]
    qh = blk[:, 16:48].astype(np.int32)
    y = np.zeros((blk.shape[0], 256))
    for c in range(4):
        lo = (qs[:, 32*c:32*c+32] & 15).astype(np.int32); hi = (qs[:, 32*c:32*c+32] >> 4).astype(np.int32)
        if five: lo = lo + (((qh >> (2*c)) & 1) << 4); hi = hi + (((qh >> (2*c+1)) & 1) << 4)
        y[:, 64*c:64*c+32] = (d * S[:, 2*c])[:, None] * lo - (dm * M[:, 2*c])[:, None]
        y[:, 64*c+32:64*c+64] = (d * S[:, 2*c+1])[:, None] * hi - (dm * M[:, 2*c+1])[:, None]
    return y

def deq_k6(blk):
    """q6_K super-blocks -> [nb, 256]"""
    ql = blk[:, 0:128].astype(np.int32); qh = blk[:, 128:192].astype(np.int32)
    sc = blk[:, 192:208].view(np.int8).astype(np.float64)
    d = blk[:, 208:210].copy().view(np.float16).astype(np.float64)[:, 0]
    y = np.zeros((blk.shape[0], 256))
    for n in range(2):
        for k in range(4):
            part = ql[:, 64*n + (32 if k & 1 else 0):][:, :32]
            nib = part & 15 if k < 2 else part >> 4
            q = (nib | (((qh[:, 32*n:32*n+32] >> (2*k)) & 3) << 4)) - 32
            for l in range(32):
                g = 8*n + 2*k + l // 16
                y[:, 128*n + 32*k + l] = d * sc[:, g] * q[:, l]
    return y

def act_round(x, name):
    """x as ggml's CPU path feeds it to a product with weight `name` (ACTQ=1)"""
    ty = TYPES.get(name, 0)
    if not os.environ.get('ACTQ') or ty in (0, 1): return x
    shp = x.shape
    if ty in (2, 8):
        b = x.reshape(-1, 32).astype(np.float32)
        dd = np.abs(b).max(axis=1) / np.float32(127.0)
        idv = np.where(dd > 0, np.float32(1.0) / np.where(dd > 0, dd, 1), 0).astype(np.float32)
        v = (b * idv[:, None]).astype(np.float64)
        q = np.sign(v) * np.floor(np.abs(v) + 0.5)
        return (q * dd.astype(np.float16).astype(np.float64)[:, None]).reshape(shp)
    b = x.reshape(-1, 256).astype(np.float32)
    mx = b[np.arange(b.shape[0]), np.abs(b).argmax(axis=1)]
    nz = mx != 0
    isc = np.where(nz, np.float32(-127.0) / np.where(nz, mx, 1), 0).astype(np.float32)
    q = np.minimum(127, np.rint((b * isc[:, None]).astype(np.float32)))
    dk = np.where(nz, np.float32(1.0) / np.where(nz, isc, 1), 0).astype(np.float32)
    return (q.astype(np.float64) * dk.astype(np.float64)[:, None]).reshape(shp)

def rms(x, g, eps): return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

def main():
    kv, W = read_gguf(sys.argv[1])
    toks = [int(t) for t in sys.argv[2].split(',')]
    arch = kv['general.architecture']; A = lambda k, d=None: kv.get(arch + '.' + k, d)
    H = A('embedding_length'); nl = A('block_count'); eps = A('attention.layer_norm_rms_epsilon')
    theta = A('rope.freq_base'); kvh = A('attention.head_count_kv'); nh = A('attention.head_count')
    hd = A('attention.key_length', H // nh)
    T = len(toks)
    h = W['token_embd.weight'][toks]
    for l in range(nl):
        p = 'blk.%d.' % l
        a = rms(h, W[p + 'attn_norm.weight'], eps)
        if kvh[l] == 0:
            bcx = act_round(a, p + 'shortconv.in_proj.weight') @ W[p + 'shortconv.in_proj.weight'].T
            B, C, X = bcx[:, :H], bcx[:, H:2*H], bcx[:, 2*H:]
            v = B * X
            w = W[p + 'shortconv.conv.weight'].reshape(H, -1); L = w.shape[1]
            vp = np.concatenate([np.zeros((L - 1, H)), v])
            z = np.stack([sum(w[:, k] * vp[t + k] for k in range(L)) for t in range(T)])
            h = h + act_round(C * z, p + 'shortconv.out_proj.weight') @ W[p + 'shortconv.out_proj.weight'].T
        else:
            nq = W[p + 'attn_q.weight'].shape[0] // hd; nk = kvh[l]
            q = (act_round(a, p + 'attn_q.weight') @ W[p + 'attn_q.weight'].T).reshape(T, nq, hd)
            k = (act_round(a, p + 'attn_k.weight') @ W[p + 'attn_k.weight'].T).reshape(T, nk, hd)
            v = (act_round(a, p + 'attn_v.weight') @ W[p + 'attn_v.weight'].T).reshape(T, nk, hd)
            if p + 'attn_q_norm.weight' in W:
                q = rms(q, W[p + 'attn_q_norm.weight'], eps); k = rms(k, W[p + 'attn_k_norm.weight'], eps)
            inv = 1.0 / theta ** (np.arange(0, hd, 2) / hd)
            if os.environ.get('LLAMA3'):
                fac, lo, hi, old = [float(x) for x in os.environ['LLAMA3'].split(',')]
                wl = 2 * np.pi / inv
                f = np.where(wl > old / lo, inv / fac, inv)
                sm = (old / wl - lo) / (hi - lo)
                smoothed = (1 - sm) * f / fac + sm * f
                med = ~(wl < old / hi) & ~(wl > old / lo)
                inv = np.where(med, smoothed, f)
            ang = np.arange(T)[:, None] * inv[None, :]
            cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
            def rope(x):
                x0, x1 = x[..., :hd//2], x[..., hd//2:]
                return np.concatenate([x0 * cos - x1 * sin, x1 * cos + x0 * sin], -1)
            q, k = rope(q), rope(k)
            g = nq // nk
            out = np.zeros((T, nq, hd))
            for hh in range(nq):
                s = q[:, hh] @ k[:, hh // g].T / np.sqrt(hd)
                s = s + np.triu(np.full((T, T), -np.inf), 1)
                s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
                out[:, hh] = s @ v[:, hh // g]
            h = h + act_round(out.reshape(T, -1), p + 'attn_output.weight') @ W[p + 'attn_output.weight'].T
        b = rms(h, W[p + 'ffn_norm.weight'], eps)
        silu = lambda x: x / (1 + np.exp(-x))
        if p + 'ffn_gate.weight' in W:
            h = h + act_round(silu(act_round(b, p + 'ffn_gate.weight') @ W[p + 'ffn_gate.weight'].T) * (act_round(b, p + 'ffn_up.weight') @ W[p + 'ffn_up.weight'].T), p + 'ffn_down.weight') @ W[p + 'ffn_down.weight'].T
        else:
            E = A('expert_count'); K = A('expert_used_count')
            sc = 1 / (1 + np.exp(-(b @ W[p + 'ffn_gate_inp.weight'].T)))
            bias = W.get(p + 'exp_probs_b.bias', np.zeros(E))
            y = np.zeros_like(h)
            for t in range(T):
                sel = np.argsort(-(sc[t] + bias), kind='stable')[:K]
                wts = sc[t, sel] / (sc[t, sel].sum() + 1e-6)
                for e, wt in zip(sel, wts):
                    g1 = W[p + 'ffn_gate_exps.weight'][e]; u1 = W[p + 'ffn_up_exps.weight'][e]; d1 = W[p + 'ffn_down_exps.weight'][e]
                    bg = act_round(b[t], p + 'ffn_gate_exps.weight'); bu = act_round(b[t], p + 'ffn_up_exps.weight')
                    y[t] += wt * (act_round(silu(g1 @ bg) * (u1 @ bu), p + 'ffn_down_exps.weight') @ d1.T)
            h = h + y
        if os.environ.get('RT_DEBUG'): print('L%d' % l, h[-1, :3], file=sys.stderr)
    hf = rms(h, W['token_embd_norm.weight'], eps)
    oname = 'output.weight' if 'output.weight' in W else 'token_embd.weight'
    out = W[oname]
    lg = act_round(hf, oname) @ out.T
    res = lg if len(sys.argv) > 3 else lg[-1]
    print(json.dumps(res.tolist()))

if __name__ == '__main__':
    main()
