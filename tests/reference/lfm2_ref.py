#!/usr/bin/python3
"""lfm2_ref.py - independent numpy reference for the starhil runtime.

Written from the LFM2 reference sheet (shared/reference/lfm2-architecture.md,
sections 3 and 4), not from the C runtime.  One command does both halves of a
parity test, from the same arrays:

  lfm2_ref.py --genome TEXT --seed S --wtype f32|f16|bf16|q8_0|q4_0 [--gguf OUT.gguf]
              [--tokens 1,2,3 [--logits OUT.f32] [--logits-actq OUT2.f32 [--act-from TRACE]]]

1. draws random weights for the genome (canonical text form, genome/genome.h),
   stores them in a GGUF v3 file (arch lfm2, or lfm2moe when any layer is MoE;
   llama.cpp tensor names and ne-order shapes of section 4.3; matrices in the
   weight type, norms / conv kernels / routers / biases in F32);
2. runs the forward pass of section 3 in float64 on the weights as stored
   (dequantised), and writes the logits of every position as little-endian
   float32 [T][V] to --logits;
3. with --logits-actq, runs it again rounding every activation that meets a
   q8_0 / q4_0 matrix to q8_0 blocks first (what block-quantised CPU kernels
   do), which isolates the runtime's own arithmetic from that rounding;
4. with --act-from TRACE (the f32 rows a variant rounded, written by
   `variant logits --dump-act TRACE`), rounds the variant's own value of each
   row instead of its float64 one, after checking the two are the same row up
   to f32 noise.  Without it, a value within f32 noise of a rounding boundary
   (x/d near k + 1/2, or the scale amax/127 near the middle between two fp16
   values) may round one way here and the other way in the runtime, and one
   such flip moves later logits by ~5e-3 of the largest on a 3-layer random
   model: a parity test would see noise, not the runtime's arithmetic.

Prints one JSON line: arch, tensor count, weight type, and for MoE the smallest
gap between the k-th and (k+1)-th expert selection scores (a tiny gap would let
rounding flip the routing, which a test must not mistake for a bug); with
--act-from also act_rows (rows rounded), act_unmatched (rows with no variant
row within ACT_MATCH of them: rounded from float64 instead) and act_max_dist
(the largest max|diff| / max|row| of a matched row).
"""
import argparse
import json
import math
import re
import struct
import sys

import numpy as np

# ---------------------------------------------------------------- genome text

def parse_genome(text):
    """Canonical genome text -> dict (globals) with a 'layers' list."""
    if '|' not in text:
        raise ValueError("genome text has no '|' between globals and layers")
    head, body = text.split('|', 1)
    g = {'rope': None, 'tie': 1}
    for tok in head.split():
        key, _, val = tok.partition('=')
        if key == 'rope':
            if val == 'none':
                continue
            m = re.fullmatch(r'llama3\(([^,]+),([^,]+),([^,]+),(\d+)\)', val)
            if not m:
                raise ValueError('bad rope scaling ' + val)
            g['rope'] = (float(m[1]), float(m[2]), float(m[3]), int(m[4]))
        else:
            g[key] = float(val) if key in ('theta', 'eps') else int(val)
    layers = []
    for tok in body.split():
        m = re.fullmatch(r'(\w+)\(([^)]*)\)/(\w+)\(([^)]*)\)(?:\*(\d+))?', tok)
        if not m:
            raise ValueError('bad layer ' + tok)
        margs, fargs = m[2].split(','), m[4].split(',')
        if m[1] == 'conv':
            mixer = {'kind': 'conv', 'L': int(margs[0])}
        elif m[1] == 'gqa':
            mixer = {'kind': 'gqa', 'heads': int(margs[0]), 'kv': int(margs[1]),
                     'qk': len(margs) > 2 and margs[2] == 'qk'}
        else:
            raise ValueError('unknown mixer ' + m[1])
        if m[3] == 'swiglu':
            ffn = {'kind': 'swiglu', 'F': int(fargs[0])}
        elif m[3] == 'moe':
            ffn = {'kind': 'moe', 'E': int(fargs[0]), 'K': int(fargs[1]), 'Fe': int(fargs[2]),
                   'bias': len(fargs) > 3 and fargs[3] == 'bias'}
        else:
            raise ValueError('unknown ffn ' + m[3])
        layers.extend([{'mixer': mixer, 'ffn': ffn}] * int(m[5] or 1))
    g['layers'] = layers
    return g

# ---------------------------------------------------------------- weights

def make_weights(g, rng):
    """name -> float64 array in PyTorch layout ([out, in]); GGUF names."""
    H, V, hd = g['d'], g['v'], g['hd']
    w = {}
    def mat(out_dim, in_dim, *lead):
        return rng.standard_normal(lead + (out_dim, in_dim)) / math.sqrt(in_dim)
    def gain(n):
        return 1.0 + 0.1 * rng.standard_normal(n)
    w['token_embd.weight'] = 0.5 * rng.standard_normal((V, H))
    for i, layer in enumerate(g['layers']):
        p = 'blk.%d.' % i
        mx, ff = layer['mixer'], layer['ffn']
        w[p + 'attn_norm.weight'] = gain(H)
        if mx['kind'] == 'conv':
            w[p + 'shortconv.in_proj.weight'] = mat(3 * H, H)
            w[p + 'shortconv.conv.weight'] = 0.5 * rng.standard_normal((H, mx['L']))
            w[p + 'shortconv.out_proj.weight'] = mat(H, H)
        else:
            nh, nkv = mx['heads'], mx['kv']
            w[p + 'attn_q.weight'] = mat(nh * hd, H)
            w[p + 'attn_k.weight'] = mat(nkv * hd, H)
            w[p + 'attn_v.weight'] = mat(nkv * hd, H)
            w[p + 'attn_output.weight'] = mat(H, nh * hd)
            if mx['qk']:
                w[p + 'attn_q_norm.weight'] = gain(hd)
                w[p + 'attn_k_norm.weight'] = gain(hd)
        w[p + 'ffn_norm.weight'] = gain(H)
        if ff['kind'] == 'swiglu':
            w[p + 'ffn_gate.weight'] = mat(ff['F'], H)
            w[p + 'ffn_up.weight'] = mat(ff['F'], H)
            w[p + 'ffn_down.weight'] = mat(H, ff['F'])
        else:
            E, Fe = ff['E'], ff['Fe']
            w[p + 'ffn_gate_inp.weight'] = 2.0 * mat(E, H)
            w[p + 'ffn_gate_exps.weight'] = mat(Fe, H, E)
            w[p + 'ffn_up_exps.weight'] = mat(Fe, H, E)
            w[p + 'ffn_down_exps.weight'] = mat(H, Fe, E)
            if ff['bias']:
                w[p + 'exp_probs_b.bias'] = 0.2 * rng.standard_normal(E)
    w['token_embd_norm.weight'] = gain(H)
    if not g['tie']:
        w['output.weight'] = 0.5 * rng.standard_normal((V, H))
    return w

# ---------------------------------------------------------------- ggml types

GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_BF16 = 0, 1, 2, 8, 30
WTYPES = {'f32': GGML_F32, 'f16': GGML_F16, 'q8_0': GGML_Q8_0, 'q4_0': GGML_Q4_0, 'bf16': GGML_BF16}

def to_bf16(x):
    """ggml_compute_fp32_to_bf16: round to nearest even on the top 16 bits
    (NaN kept quiet). Returns (uint16 array, float64 values)."""
    u = np.ascontiguousarray(x, dtype='<f4').view('<u4').astype(np.uint64)
    h = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    h[nan] = ((u[nan] >> 16) | 64).astype(np.uint16)
    back = (h.astype(np.uint32) << 16).view('<f4').astype(np.float64)
    return h, back

def keeps_f32(name, arr):
    """llama.cpp converter rule: 1-D tensors, norms, conv kernels, routers stay F32."""
    return (arr.ndim == 1 or name.endswith('_norm.weight') or 'shortconv.conv' in name
            or 'ffn_gate_inp' in name)

def quant_q8_0(x):
    """ggml quantize_row_q8_0_ref: blocks of 32 along the last axis.
    Returns (bytes, dequantised float64 array)."""
    b = x.reshape(-1, 32).astype(np.float32)
    amax = np.abs(b).max(axis=1)
    d = amax / 127.0
    idv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0.0).astype(np.float32)
    v = (b * idv[:, None]).astype(np.float64)
    q = (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int8)   # roundf: ties away from 0
    d16 = d.astype(np.float16)
    blocks = np.zeros(b.shape[0], dtype=[('d', '<f2'), ('q', 'i1', 32)])
    blocks['d'] = d16
    blocks['q'] = q
    deq = q.astype(np.float64) * d16.astype(np.float64)[:, None]
    return blocks.tobytes(), deq.reshape(x.shape)

def quant_q4_0(x):
    """ggml quantize_row_q4_0_ref: d = (signed value of largest magnitude) / -8,
    q = min(15, int(x/d + 8.5)); low nibbles hold elements 0..15, high 16..31."""
    b = x.reshape(-1, 32).astype(np.float32)
    idx = np.abs(b).argmax(axis=1)
    mx = b[np.arange(b.shape[0]), idx]
    d = (mx / -8.0).astype(np.float32)
    idv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0.0).astype(np.float32)
    q = np.minimum(15, (b * idv[:, None] + np.float32(8.5)).astype(np.int8)).astype(np.uint8)
    packed = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
    d16 = d.astype(np.float16)
    blocks = np.zeros(b.shape[0], dtype=[('d', '<f2'), ('q', 'u1', 16)])
    blocks['d'] = d16
    blocks['q'] = packed
    deq = (q.astype(np.float64) - 8.0) * d16.astype(np.float64)[:, None]
    return blocks.tobytes(), deq.reshape(x.shape)

def encode(name, arr, wtype):
    """-> (ggml type, raw bytes, the values the file really holds as float64)."""
    t = GGML_F32 if keeps_f32(name, arr) else WTYPES[wtype]
    if t == GGML_F32:
        a = arr.astype('<f4')
        return t, a.tobytes(), a.astype(np.float64)
    if t == GGML_F16:
        a = arr.astype('<f2')
        return t, a.tobytes(), a.astype(np.float64)
    if t == GGML_BF16:
        h, back = to_bf16(arr)
        return t, h.astype('<u2').tobytes(), back.reshape(arr.shape)
    if arr.shape[-1] % 32:
        raise ValueError('%s: row length %d not a multiple of 32' % (name, arr.shape[-1]))
    raw, deq = (quant_q8_0 if t == GGML_Q8_0 else quant_q4_0)(arr)
    return t, raw, deq

# ---------------------------------------------------------------- GGUF writer

GT_U32, GT_I32, GT_F32, GT_BOOL, GT_STR, GT_ARR = 4, 5, 6, 7, 8, 9

def gguf_str(s):
    b = s.encode()
    return struct.pack('<Q', len(b)) + b

def gguf_kv(key, gtype, val):
    out = gguf_str(key) + struct.pack('<I', gtype)
    if gtype == GT_U32:
        out += struct.pack('<I', val)
    elif gtype == GT_I32:
        out += struct.pack('<i', val)
    elif gtype == GT_F32:
        out += struct.pack('<f', val)
    elif gtype == GT_BOOL:
        out += struct.pack('<B', 1 if val else 0)
    elif gtype == GT_STR:
        out += gguf_str(val)
    elif gtype == GT_ARR:
        etype, items = val
        out += struct.pack('<IQ', etype, len(items))
        out += b''.join(struct.pack('<i' if etype == GT_I32 else '<I', v) for v in items)
    return out

def metadata(g):
    layers = g['layers']
    moe = any(l['ffn']['kind'] == 'moe' for l in layers)
    arch = 'lfm2moe' if moe else 'lfm2'
    attn = [l['mixer'] for l in layers if l['mixer']['kind'] == 'gqa']
    convs = [l['mixer'] for l in layers if l['mixer']['kind'] == 'conv']
    dense = [l['ffn'] for l in layers if l['ffn']['kind'] == 'swiglu']
    n_dense_lead = 0
    while n_dense_lead < len(layers) and layers[n_dense_lead]['ffn']['kind'] == 'swiglu':
        n_dense_lead += 1
    kv = [(arch + '.context_length', GT_U32, g['ctx']),
          (arch + '.embedding_length', GT_U32, g['d']),
          (arch + '.block_count', GT_U32, len(layers)),
          (arch + '.feed_forward_length', GT_U32, dense[0]['F'] if dense else 0),
          (arch + '.attention.head_count', GT_U32, attn[0]['heads'] if attn else 0),
          (arch + '.attention.head_count_kv', GT_ARR,
           (GT_U32, [l['mixer']['kv'] if l['mixer']['kind'] == 'gqa' else 0 for l in layers])),
          (arch + '.attention.key_length', GT_U32, g['hd']),
          (arch + '.attention.value_length', GT_U32, g['hd']),
          (arch + '.attention.layer_norm_rms_epsilon', GT_F32, g['eps']),
          (arch + '.shortconv.l_cache', GT_U32, convs[0]['L'] if convs else 3),
          (arch + '.rope.freq_base', GT_F32, g['theta']),
          (arch + '.vocab_size', GT_U32, g['v'])]
    if moe:
        m = [l['ffn'] for l in layers if l['ffn']['kind'] == 'moe'][0]
        kv += [(arch + '.expert_count', GT_U32, m['E']),
               (arch + '.expert_used_count', GT_U32, m['K']),
               (arch + '.expert_feed_forward_length', GT_U32, m['Fe']),
               (arch + '.leading_dense_block_count', GT_U32, n_dense_lead),
               (arch + '.expert_gating_func', GT_U32, 2)]
    kv = [('general.architecture', GT_STR, arch), ('general.alignment', GT_U32, 32)] + kv
    kv += [('tokenizer.ggml.model', GT_STR, 'no_vocab')]
    return arch, kv

def write_gguf(path, g, weights, wtype):
    """Writes the GGUF; returns (arch, {name: stored float64 values},
    names stored in a block-quantised type)."""
    arch, kv = metadata(g)
    align = 32
    infos, blobs, stored, offset, quantised = [], [], {}, 0, []
    for name, arr in weights.items():
        t, raw, deq = encode(name, arr, wtype)
        stored[name] = deq
        if t in (GGML_Q8_0, GGML_Q4_0):
            quantised.append(name)
        ne = list(reversed(arr.shape))
        infos.append(gguf_str(name) + struct.pack('<I', len(ne)) +
                     b''.join(struct.pack('<Q', n) for n in ne) + struct.pack('<IQ', t, offset))
        pad = (-len(raw)) % align
        blobs.append(raw + b'\0' * pad)
        offset += len(raw) + pad
    head = b'GGUF' + struct.pack('<IQQ', 3, len(weights), len(kv))
    head += b''.join(gguf_kv(*k) for k in kv) + b''.join(infos)
    head += b'\0' * ((-len(head)) % align)
    if path:
        with open(path, 'wb') as f:
            f.write(head)
            for b in blobs:
                f.write(b)
    return arch, stored, quantised

# ---------------------------------------------------------------- forward pass

def rmsnorm(x, gamma, eps):
    return gamma * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))

def silu(u):
    return u / (1.0 + np.exp(-u))

def rope_inv_freq(g):
    hd = g['hd']
    inv = g['theta'] ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    if g['rope']:
        # Llama 3 frequency-dependent scaling (HF _compute_llama3_parameters)
        factor, lo, hi, orig = g['rope']
        wavelen = 2 * math.pi / inv
        lo_wl, hi_wl = orig / lo, orig / hi
        scaled = np.where(wavelen > lo_wl, inv / factor, inv)
        smooth = (orig / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < hi_wl) & ~(wavelen > lo_wl)
        inv = np.where(medium, smoothed, scaled)
    return inv

def rope(x, pos, inv):
    """x [T, heads, hd], half-split (NeoX / rotate_half) rotation."""
    half = x.shape[-1] // 2
    ang = pos[:, None] * inv[None, :]                  # [T, hd/2]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)

# --act-from: the variant's f32 rows by row length, and what matching found
ACT_ROWS = {}
ACT_STATS = {'act_rows': 0, 'act_unmatched': 0, 'act_max_dist': 0.0}
ACT_MATCH = 1e-4   # f32 noise is ~1e-7 of the row; other rows differ by O(1)

def load_act_trace(path):
    raw = open(path, 'rb').read()
    off, rows = 0, {}
    while off < len(raw):
        if off + 8 > len(raw):
            sys.exit('lfm2_ref: %s: truncated header at byte %d' % (path, off))
        T, K = struct.unpack_from('<ii', raw, off)
        off += 8
        if T <= 0 or K <= 0 or off + 4 * T * K > len(raw):
            sys.exit('lfm2_ref: %s: bad record T=%d K=%d at byte %d' % (path, T, K, off - 8))
        rows.setdefault(K, []).append(np.frombuffer(raw, '<f4', T * K, off).reshape(T, K))
        off += 4 * T * K
    return {K: np.concatenate(v) for K, v in rows.items()}

def variant_rows(x):
    """x [n, K] float64 -> the same rows as the variant computed them (f32)
    where the trace holds a row that close, else x itself in f32."""
    xf = x.astype(np.float32)
    R = ACT_ROWS.get(x.shape[1])
    for i in range(x.shape[0]):
        ACT_STATS['act_rows'] += 1
        if R is None:
            ACT_STATS['act_unmatched'] += 1
            continue
        scale = max(float(np.abs(x[i]).max()), 1e-30)
        dist = np.abs(R.astype(np.float64) - x[i]).max(axis=1) / scale
        j = int(dist.argmin())
        if dist[j] <= ACT_MATCH:
            xf[i] = R[j]
            ACT_STATS['act_max_dist'] = max(ACT_STATS['act_max_dist'], float(dist[j]))
        else:
            ACT_STATS['act_unmatched'] += 1
    return xf

def act_q8_0(x):
    """Activation rounding of a q8_0 dot product as ggml does it: blocks of 32
    along the last axis, values rounded to int8 with the f32 scale amax/127,
    the block keeping that scale as fp16 (the product uses the rounded one)."""
    if ACT_ROWS:
        x = variant_rows(x.reshape(-1, x.shape[-1])).reshape(x.shape)
    b = x.reshape(-1, 32).astype(np.float32)
    d = np.abs(b).max(axis=1) / np.float32(127.0)
    idv = np.where(d > 0, np.float32(1.0) / np.where(d > 0, d, 1), 0).astype(np.float32)
    v = (b * idv[:, None]).astype(np.float64)
    q = np.sign(v) * np.floor(np.abs(v) + 0.5)
    return (q * d.astype(np.float16).astype(np.float64)[:, None]).reshape(x.shape)

class Linear:
    """y = x W^T; with act_q set, x is rounded like a q8_0 activation block
    whenever W is stored in a block-quantised type (what ggml-style CPU
    kernels do), so only that rounding is simulated, never the weights."""
    def __init__(self, w, quantised, act_q):
        self.w, self.quantised, self.act_q = w, quantised, act_q
    def __call__(self, x, name, e=None):
        W = self.w[name] if e is None else self.w[name][e]
        if self.act_q and name in self.quantised:
            x = act_q8_0(x)
        return x @ W.T

def short_conv(a, w, p, H, mm):
    T = a.shape[0]
    bcx = mm(a, p + 'shortconv.in_proj.weight')
    B, C, X = bcx[:, :H], bcx[:, H:2 * H], bcx[:, 2 * H:]
    v = B * X
    k = w[p + 'shortconv.conv.weight']                 # [H, L]
    L = k.shape[1]
    vpad = np.concatenate([np.zeros((L - 1, H)), v], axis=0)
    z = np.zeros((T, H))
    for j in range(L):                                  # k[:, L-1] hits the current token
        z += k[:, j] * vpad[j:j + T]
    return mm(C * z, p + 'shortconv.out_proj.weight')

def attention(a, w, p, mx, g, inv, mm):
    T, hd, nh, nkv = a.shape[0], g['hd'], mx['heads'], mx['kv']
    q = mm(a, p + 'attn_q.weight').reshape(T, nh, hd)
    k = mm(a, p + 'attn_k.weight').reshape(T, nkv, hd)
    v = mm(a, p + 'attn_v.weight').reshape(T, nkv, hd)
    if mx['qk']:
        q = rmsnorm(q, w[p + 'attn_q_norm.weight'], g['eps'])
        k = rmsnorm(k, w[p + 'attn_k_norm.weight'], g['eps'])
    pos = np.arange(T, dtype=np.float64)
    q, k = rope(q, pos, inv), rope(k, pos, inv)
    out = np.zeros((T, nh, hd))
    mask = np.triu(np.ones((T, T), dtype=bool), 1)
    for h in range(nh):
        kh = h // (nh // nkv)
        s = (q[:, h, :] @ k[:, kh, :].T) / math.sqrt(hd)
        s[mask] = -np.inf
        s = np.exp(s - s.max(axis=1, keepdims=True))
        s /= s.sum(axis=1, keepdims=True)
        out[:, h, :] = s @ v[:, kh, :]
    return mm(out.reshape(T, nh * hd), p + 'attn_output.weight')

def swiglu(b, mm, gate, up, down, e=None):
    return mm(silu(mm(b, gate, e)) * mm(b, up, e), down, e)

def moe(b, w, p, ff, gaps, mm):
    E, K = ff['E'], ff['K']
    s = 1.0 / (1.0 + np.exp(-mm(b, p + 'ffn_gate_inp.weight')))   # [T, E]
    sel = s + (w[p + 'exp_probs_b.bias'] if ff['bias'] else 0.0)
    y = np.zeros_like(b)
    for t in range(b.shape[0]):
        order = np.argsort(-sel[t], kind='stable')
        top = order[:K]
        if K < E:
            gaps.append(sel[t, order[K - 1]] - sel[t, order[K]])
        wt = s[t, top] / (s[t, top].sum() + 1e-6)
        for e, we in zip(top, wt):
            y[t] += we * swiglu(b[t:t + 1], mm, p + 'ffn_gate_exps.weight',
                                p + 'ffn_up_exps.weight', p + 'ffn_down_exps.weight', e)[0]
    return y

def forward(g, w, tokens, quantised=(), act_q=False):
    """Logits [T, V] (float64) for the whole token sequence; MoE gaps list."""
    H, eps = g['d'], g['eps']
    mm = Linear(w, set(quantised), act_q)
    inv = rope_inv_freq(g)
    h = w['token_embd.weight'][np.array(tokens)]
    gaps = []
    for i, layer in enumerate(g['layers']):
        p = 'blk.%d.' % i
        mx, ff = layer['mixer'], layer['ffn']
        a = rmsnorm(h, w[p + 'attn_norm.weight'], eps)
        h = h + (short_conv(a, w, p, H, mm) if mx['kind'] == 'conv'
                 else attention(a, w, p, mx, g, inv, mm))
        b = rmsnorm(h, w[p + 'ffn_norm.weight'], eps)
        if ff['kind'] == 'swiglu':
            h = h + swiglu(b, mm, p + 'ffn_gate.weight', p + 'ffn_up.weight', p + 'ffn_down.weight')
        else:
            h = h + moe(b, w, p, ff, gaps, mm)
    hf = rmsnorm(h, w['token_embd_norm.weight'], eps)
    return mm(hf, 'token_embd.weight' if g['tie'] else 'output.weight'), gaps

# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--genome', required=True, help='canonical genome text')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--wtype', default='f32', choices=sorted(WTYPES))
    ap.add_argument('--gguf', help='GGUF file to write')
    ap.add_argument('--tokens', help='comma-separated token ids')
    ap.add_argument('--logits', help='write reference logits [T][V] float32 here')
    ap.add_argument('--logits-actq', help='same, with activations rounded to q8_0 blocks '
                    'before every product with a block-quantised matrix')
    ap.add_argument('--act-from', help="with --logits-actq: round the variant's own f32 rows "
                    '(a `variant logits --dump-act` trace) instead of float64 ones')
    a = ap.parse_args()
    g = parse_genome(a.genome)
    rng = np.random.default_rng(a.seed)
    if a.act_from:
        if not a.logits_actq:
            sys.exit('lfm2_ref: --act-from needs --logits-actq')
        ACT_ROWS.update(load_act_trace(a.act_from))
    arch, stored, quantised = write_gguf(a.gguf, g, make_weights(g, rng), a.wtype)
    info = {'arch': arch, 'tensors': len(stored), 'wtype': a.wtype}
    if a.tokens:
        tokens = [int(t) for t in a.tokens.split(',')]
        if any(t < 0 or t >= g['v'] for t in tokens):
            sys.exit('lfm2_ref: token id out of range')
        info['positions'] = len(tokens)
        gaps = []
        if a.logits or not a.logits_actq:
            logits, gaps = forward(g, stored, tokens)
            info['max_abs_logit'] = float(np.abs(logits).max())
            if a.logits:
                logits.astype('<f4').tofile(a.logits)
        if a.logits_actq:
            logits_q, gaps_q = forward(g, stored, tokens, quantised, act_q=True)
            logits_q.astype('<f4').tofile(a.logits_actq)
            gaps += gaps_q
            if a.act_from:
                info.update(ACT_STATS)
        info['min_moe_gap'] = float(min(gaps)) if gaps else None
    print(json.dumps(info))

if __name__ == '__main__':
    main()
