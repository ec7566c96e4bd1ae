/* File system helpers shared by the daemons: making directory trees. */
#ifndef FLINT_FSUTIL_H
#define FLINT_FSUTIL_H

#include <sys/types.h>

/* mkdir -p: make path and every missing parent with mode (less the umask). 0 when path is a
 * directory afterwards; -1 with errno otherwise (ENOTDIR when path or a parent exists and is not
 * a directory), and *failed (when not NULL) set to a malloc'ed copy of the path that could not be
 * made, which the caller frees. */
int fs_mkdirs(const char *path, mode_t mode, char **failed);

#endif
