/* Flint's version, shown by `flint --version`, /overview and /config. */
#ifndef FLINT_VERSION_H
#define FLINT_VERSION_H
#define FLINT_VERSION "0.1.0"
#endif
