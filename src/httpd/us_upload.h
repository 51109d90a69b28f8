/*
 * us_upload.h - the upload target's startup duty (its endpoint is declared
 * in endpoints.h).
 */
#ifndef US_UPLOAD_H
#define US_UPLOAD_H

#include "us_module.h"

/* Removes temp files a crash left in the session directories. */
void us_upload_sweep_temp(apr_pool_t *p, server_rec *s, const char *data_dir);

#endif
