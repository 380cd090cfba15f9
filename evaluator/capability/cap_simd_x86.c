/* cap_simd_x86.c - the trainer (cap_model_impl.h + cap_train_impl.h) compiled a second
 * time for x86-64 CPUs with AVX2: 32-byte vectors instead of 16.  cap_dispatch.c
 * uses it when the CPU supports AVX2 (checked at run time), so the library
 * itself still runs on any x86-64. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#else
#pragma GCC target("avx2")
#endif
#define CAP_REAL float
#define CAP_FN(n) n##_avx2
#define CAP_VBYTES 32
#define CAP_TRAIN_FN(n) n##_avx2
#include "evaluator/capability/cap_model_impl.h"
#include "evaluator/capability/cap_train_impl.h"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
typedef int cap_simd_x86_unused;   /* ISO C: a translation unit must not be empty */
#endif
