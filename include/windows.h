/*
 * windows.h for Linux: the part of the Windows API that virtmem implements, so Windows C
 * code that says `#include <windows.h>` builds unchanged with `cc -I<virtmem>/include`.
 * Everything is declared in virtmem.h; this file only includes it.
 */
#ifndef VIRTMEM_WINDOWS_H
#define VIRTMEM_WINDOWS_H

#include "virtmem.h"

#endif /* VIRTMEM_WINDOWS_H */
