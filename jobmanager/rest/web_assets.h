/* The web status page's files, compiled into the jobmanager by tools/embed.c. */
#ifndef FLINT_WEB_ASSETS_H
#define FLINT_WEB_ASSETS_H

#include <stddef.h>

typedef struct web_asset {
    const char *path;          /* "/index.html" */
    const char *content_type;
    const unsigned char *data;
    size_t len;
} web_asset;

extern const web_asset web_assets[];
extern const int web_assets_count;

#endif
