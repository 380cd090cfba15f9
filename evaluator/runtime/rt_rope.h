/* rt_rope.h - the divisors of llama3 RoPE scaling per frequency, as llama.cpp's
 * converter computes them from a Hugging Face config and stores them in a
 * llama GGUF (rope_freqs.weight): 1 for wavelengths below orig/hi, factor
 * above orig/lo, smoothly between.  Shared, not copied, by the runtime (which
 * checks a file's divisors and writes them on export) and the tool's GGUF
 * exporter (reports/gguf_write.c); plain C, no genome. */
#ifndef RT_ROPE_H
#define RT_ROPE_H

#include <math.h>

static inline void rt_llama3_divisors(double theta, int hd, double factor, double lo, double hi, double orig,
                                      float *out)
{
    for (int i = 0; i < hd / 2; i++) {
        float freq = 1.0f / powf((float)theta, (float)(2 * i) / (float)hd);
        double wl = 2.0 * 3.141592653589793 / freq;
        if (wl < orig / hi) out[i] = 1.0f;
        else if (wl > orig / lo) out[i] = (float)factor;
        else {
            double s = (orig / wl - lo) / (hi - lo);
            out[i] = (float)(1.0 / ((1.0 - s) / factor + s));
        }
    }
}

#endif
