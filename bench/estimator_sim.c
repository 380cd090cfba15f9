/* estimator_sim.c - simulation behind docs/devices.md "Which estimator": the
 * robust decode estimate's candidates (the minimum of per-repetition medians
 * with a bootstrap interval, the estimator before issue 18's third round, and
 * the Harrell-Davis 10/15/20/25th percentile with a percentile bootstrap, as
 * measure/benchparse.c computes it) replayed through the protocol (3
 * repetitions per invocation up to a cap, then one settle round pooling as
 * many again) on simulated repetition medians: quiet noise, and repetitions
 * slowed by interference nothing detects.  Prints how often each converges,
 * after how many repetitions, and how far the stored figure is from the truth.
 * Build and run from the repository root after `make`:
 *   cc -O2 -std=gnu11 -I. bench/estimator_sim.c build/rel/measure/benchparse.o \
 *      build/rel/measure/mrecord.o build/rel/util/err.o -ljansson -lm -o /tmp/estimator_sim
 *   /tmp/estimator_sim 0.05 12 300     # tolerance, repetition cap, series per row */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include "measure/measure.h"
static uint64_t S = 88172645463325252ull;
static double U(void){ S ^= S << 13; S ^= S >> 7; S ^= S << 17; return (S >> 11) * (1.0/9007199254740992.0); }
static double N01(void){ double u=U(), v=U(); return sqrt(-2*log(u+1e-300))*cos(2*M_PI*v); }
static int cmpd(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return (x>y)-(x<y);}
static void minboot(const double *x,int n,double *e,double*lo,double*hi){ double m=x[0]; for(int i=1;i<n;i++) m=fmin(m,x[i]); *e=m;
  enum{B=1000}; static double b[B]; uint64_t s=0x9E3779B97F4A7C15ull^(uint64_t)n;
  for(int k=0;k<B;k++){double bm=INFINITY; for(int i=0;i<n;i++){s^=s<<13;s^=s>>7;s^=s<<17; bm=fmin(bm,x[s%(uint64_t)n]);} b[k]=bm;}
  qsort(b,B,sizeof *b,cmpd); *lo=b[(int)(0.025*(B-1))]; *hi=b[(int)(0.975*(B-1))]; }
static double P;
static void hdboot(const double *x,int n,double *e,double*lo,double*hi){
  double s[256], w[256]; memcpy(s,x,n*sizeof *s); qsort(s,n,sizeof *s,cmpd);
  /* the Harrell-Davis weights from the library's estimate of indicator data:
   * hd(1[j >= i]) = sum of the weights from rank i on */
  for(int i=0;i<n;i++){ double t[256]; for(int j=0;j<n;j++) t[j]= j>=i ? 1:0; w[i]=sh_hd_quantile(t,n,P); }
  for(int i=0;i<n-1;i++) w[i]-=w[i+1];
  double E=0; for(int i=0;i<n;i++) E+=w[i]*s[i]; *e=E;
  enum{B=1000}; static double b[B]; int cnt[256]; uint64_t st=0x9E3779B97F4A7C15ull^(uint64_t)n;
  for(int k=0;k<B;k++){ memset(cnt,0,sizeof cnt); for(int i=0;i<n;i++){st^=st<<13;st^=st>>7;st^=st<<17;cnt[st%(uint64_t)n]++;}
    double v=0; for(int i=0,q=0;i<n;i++) for(int c=0;c<cnt[i];c++) v+=w[q++]*s[i]; b[k]=v; }
  qsort(b,B,sizeof *b,cmpd); *lo=fmin(b[(int)(0.025*(B-1))],E); *hi=fmax(b[(int)(0.975*(B-1))],E); }
static double draw(int model){
  double base = 1;
  switch(model){
  case 0: return base*(1+0.015*N01());
  case 1: return base*(1+0.04*N01());
  case 2: return base*(1+0.015*N01()) * (U()<0.15 ? 1+0.1+0.4*U() : 1);
  case 3: return base*(1+0.015*N01()) * (U()<0.6 ? 1+0.1+0.4*U() : 1);
  case 4: return base*(1+0.03*fabs(N01())) ;
  }
  return base;
}
int main(int argc,char**argv){
  if(argc!=4||atof(argv[1])<=0||atoi(argv[2])<3||atoi(argv[3])<1||atoi(argv[3])>4000){
    fprintf(stderr,"usage: estimator_sim TOLERANCE CAP SERIES  (e.g. 0.05 12 300; CAP >= 3, SERIES 1-4000)\n");
    return 2;}
  const char *names[]={"quiet sd1.5%","quiet sd4%","15% reps +10..50%","60% reps +10..50%","one-sided |N| 3%"};
  double tol=atof(argv[1]); int cap=atoi(argv[2]); int trials=atoi(argv[3]);
  const char *est[]={"min-boot","hd10","hd15","hd20","hd25"}; double ps[]={0,0.10,0.15,0.20,0.25};
  for(int model=0;model<5;model++){
    printf("%s (tol %.0f%%, cap %d, +1 pooled settle round)\n", names[model], 100*tol, cap);
    for(int k=0;k<5;k++){ P=ps[k]; S=88172645463325252ull+model;
      int conv=0; double reps=0, errs[4000]; int ne=0, far=0;
      for(int t=0;t<trials;t++){ double x[256]; int n=0, ok=0; double e=0,lo=0,hi=0;
        while(n<2*cap){ for(int r=0;r<3;r++) x[n++]=draw(model);
          if(k==0) minboot(x,n,&e,&lo,&hi); else hdboot(x,n,&e,&lo,&hi);
          if(fmax(e-lo,hi-e)<=tol*e){ok=1;break;} }
        if(ok){conv++; reps+=n; errs[ne++]=e-1; if(fabs(e-1)>0.10) far++;}
      }
      qsort(errs,ne,sizeof *errs,cmpd);
      printf("  %-8s converged %5.1f%%  mean reps %4.1f  stored-1: median %+5.1f%%  [p5 %+5.1f%%, p95 %+5.1f%%]  >10%% off: %d\n", est[k], 100.0*conv/trials, conv?reps/conv:0,
        ne?100*errs[ne/2]:0, ne?100*errs[ne/20]:0, ne?100*errs[ne*19/20]:0, far);
    }
  }
}
