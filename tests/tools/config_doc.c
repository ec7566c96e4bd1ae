/* Prints docs/config.md from the config key table (make docs). */
#include <stdio.h>

#include "config/config.h"

int main(void) {
    config_write_markdown(stdout);
    return 0;
}
