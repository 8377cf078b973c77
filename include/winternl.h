/* winternl.h: the native layer (Nt* functions, NTSTATUS, UNICODE_STRING, OBJECT_ATTRIBUTES);
 * declared in virtmem.h, as for windows.h. */
#ifndef VIRTMEM_WINTERNL_H
#define VIRTMEM_WINTERNL_H
#include "virtmem.h"
#endif
