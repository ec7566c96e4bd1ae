/* Internal to common/row: the layout of flint_schema, shared by the schema parser, the row code
 * and the key helpers. Everything outside common/row uses the accessors of flint/row.h. */
#ifndef FLINT_ROW_INTERNAL_H
#define FLINT_ROW_INTERNAL_H

#include "flint/row.h"

/* struct flint_schema is defined in flint/row.h (the inline builder operations read it). */

/* Whether type t keeps its value in the row's variable part (STRING, BYTES). */
static inline bool row_type_is_var(flint_type t) {
    return t == FLINT_STRING || t == FLINT_BYTES;
}

#endif
