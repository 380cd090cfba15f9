/* device_rec.c - releasing device records (device_rec.h). */
#include "devices/device_rec.h"

#include <stdlib.h>

void sh_device_rec_free(sh_device_rec *d)
{
    if (!d) return;
    free(d->options_json);
    free(d->topology_json);
    d->options_json = d->topology_json = NULL;
}

void sh_device_recs_free(sh_device_rec *d, int n)
{
    if (!d) return;
    for (int i = 0; i < n; i++) sh_device_rec_free(&d[i]);
    free(d);
}
