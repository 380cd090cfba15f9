/* dev/f16bench.c - single-thread f16 prefill throughput in GFLOP per CPU-second
 * (thread CPU clock): rt_mm_rows over all T tokens (the AVX-512 / AVX2 panel kernel
 * when T >= 16) against the same product in calls of 12 tokens (the 4x4 tile; AVX2: 2x6),
 * with the largest difference between the two relative to the largest output.
 * usage: f16bench ROWS K T [ITERS=3]
 * build: gcc -std=c11 -O3 -march=native -I<variant dir> -I.. f16bench.c ../rt_quant.c ../rt_kernels.c ../rt_pool.c -lm -pthread */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <math.h>
#include "rt.h"
static double cpu_now(void){struct timespec ts;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&ts);return ts.tv_sec+ts.tv_nsec*1e-9;}
int main(int argc,char**argv){
  if(argc<4){fprintf(stderr,"usage: f16bench ROWS K T [ITERS]\n");return 2;}
  int rows=atoi(argv[1]),K=atoi(argv[2]),T=atoi(argv[3]),it=argc>4?atoi(argv[4]):3;
  float *x=malloc((size_t)T*K*4),*y=malloc((size_t)T*rows*4),*y2=malloc((size_t)T*rows*4),*row=malloc((size_t)K*4);
  for(size_t i=0;i<(size_t)T*K;i++)x[i]=(float)((i*7919)%1000)/1000.0f-0.5f;
  rt_act a={0}; a.T=T;a.K=K;a.x=x;a.ldx=K;
  rt_mat w={RT_F16,rows,K,rt_row_bytes(RT_F16,K),NULL,0};
  uint8_t*d=malloc(w.row_bytes*rows);
  for(int r=0;r<rows;r++){for(int k=0;k<K;k++)row[k]=(float)(((r*31+k*17)%200)-100)/3000.0f; rt_quantize_row(RT_F16,row,d+(size_t)r*w.row_bytes,K);}
  w.data=d;
  rt_mm_rows(&w,&a,0,rows,0,T,y,rows);
  for(int t=0;t<T;t+=12) rt_mm_rows(&w,&a,0,rows,t,t+12<T?t+12:T,y2,rows);
  double md=0,mx=0; for(size_t i=0;i<(size_t)T*rows;i++){double e=fabs(y[i]-y2[i]); if(e>md)md=e; if(fabs(y2[i])>mx)mx=fabs(y2[i]);}
  double t0=cpu_now(); for(int i=0;i<it;i++) rt_mm_rows(&w,&a,0,rows,0,T,y,rows); double dn=cpu_now()-t0;
  t0=cpu_now(); for(int i=0;i<it;i++) for(int t=0;t<T;t+=12) rt_mm_rows(&w,&a,0,rows,t,t+12<T?t+12:T,y2,rows); double dold=cpu_now()-t0;
  double fl=2.0*rows*K*T*it;
  printf("rows %d K %d T %d: new %.1f GFLOP/cpu-s  old %.1f  ratio %.2f  maxdiff/max %.2g\n",rows,K,T,fl/dn*1e-9,fl/dold*1e-9,dold/dn,md/mx);
  return 0;}
