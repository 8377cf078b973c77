/* A malloc for the whole process built on virtmem, as allocators replace the C runtime's heap
 * on Windows: every malloc, free, calloc and realloc of this program — glibc's own (stdio,
 * strdup, pthread) and the Rust runtime inside libvirtmem included — is served from memory
 * obtained with VirtualAlloc and given back with VirtualFree. If virtmem itself called malloc
 * from inside one of those calls, the allocator would be re-entered mid-operation: it detects
 * that and aborts loudly. Then four threads allocate, free and reallocate while querying and
 * protecting memory through virtmem.
 *
 * Build: cc -Iinclude malloc_on_virtmem.c libvirtmem.a -lpthread -ldl -lm
 * Prints "malloc_on_virtmem: N passed, 0 failed" and exits 0 on success. */
#include <windows.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SMALL 4096
#define CLASSES (MAX_SMALL / 16)
#define SLAB (1 << 20)

struct header { void *base; size_t size; };     /* just before every block handed out */

static __thread int inside_virtmem;              /* this thread is inside a virtmem call */
static volatile int lock_word;
static void *free_list[CLASSES];
static char *slab_next, *slab_end;
static long virtmem_calls;

static void fail(const char *msg) {
    write(2, msg, strlen(msg));
    abort();
}

static void lock(void) { while (__atomic_exchange_n(&lock_word, 1, __ATOMIC_ACQUIRE)) { } }
static void unlock(void) { __atomic_store_n(&lock_word, 0, __ATOMIC_RELEASE); }

static void *vm_alloc(size_t n) {
    inside_virtmem = 1;
    void *p = VirtualAlloc(NULL, n, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    inside_virtmem = 0;
    __atomic_add_fetch(&virtmem_calls, 1, __ATOMIC_RELAXED);
    return p;
}

static void vm_free(void *p) {
    inside_virtmem = 1;
    BOOL ok = VirtualFree(p, 0, MEM_RELEASE);
    inside_virtmem = 0;
    if (!ok) fail("malloc_on_virtmem: VirtualFree of a large block failed\n");
}

static void *allocate(size_t size, size_t align) {
    if (inside_virtmem) fail("malloc_on_virtmem: virtmem called malloc from inside a virtmem call\n");
    if (align < 16) align = 16;
    if (size == 0) size = 1;
    if (size + sizeof(struct header) <= MAX_SMALL && align == 16) {
        size_t c = (size + sizeof(struct header) + 15) / 16 - 1, bytes = (c + 1) * 16;
        lock();
        char *b = free_list[c];
        if (b) {
            free_list[c] = *(void **)b;
        } else {
            if (!slab_next || slab_next + bytes > slab_end) {
                char *s = vm_alloc(SLAB);     /* under the lock: a re-entry is caught above */
                if (!s) { unlock(); return NULL; }
                slab_next = s;
                slab_end = s + SLAB;
            }
            b = slab_next;
            slab_next += bytes;
        }
        unlock();
        struct header *h = (struct header *)b;
        h->base = b;
        h->size = bytes;
        return h + 1;
    }
    size_t total = size + align + sizeof(struct header);
    char *base = vm_alloc(total);
    if (!base) return NULL;
    char *user = (char *)(((size_t)base + sizeof(struct header) + align - 1) & ~(align - 1));
    struct header *h = (struct header *)user - 1;
    h->base = base;
    h->size = total;
    return user;
}

void *malloc(size_t size) { return allocate(size, 16); }

void free(void *p) {
    if (!p) return;
    if (inside_virtmem) fail("malloc_on_virtmem: virtmem called free from inside a virtmem call\n");
    struct header *h = (struct header *)p - 1;
    if (h->size <= MAX_SMALL && h->base == (void *)h) {
        size_t c = h->size / 16 - 1;
        lock();
        *(void **)h->base = free_list[c];
        free_list[c] = h->base;
        unlock();
    } else {
        vm_free(h->base);
    }
}

void *calloc(size_t n, size_t m) {
    if (m && n > (size_t)-1 / m) return NULL;
    void *p = malloc(n * m);
    if (p) memset(p, 0, n * m);
    return p;
}

size_t malloc_usable_size(void *p) {
    if (!p) return 0;
    struct header *h = (struct header *)p - 1;
    return h->size - (size_t)((char *)p - (char *)h->base);
}

void *realloc(void *p, size_t size) {
    if (!p) return malloc(size);
    if (size == 0) { free(p); return NULL; }
    size_t have = malloc_usable_size(p);
    if (size <= have) return p;
    void *q = malloc(size);
    if (!q) return NULL;
    memcpy(q, p, have);
    free(p);
    return q;
}

int posix_memalign(void **out, size_t align, size_t size) {
    void *p = allocate(size, align);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t size) { return allocate(size, align); }
void *memalign(size_t align, size_t size) { return allocate(size, align); }

/* ---- the workload ------------------------------------------------------------------- */

static int failures;

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "FAILED: %s\n", what);
        __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
    }
}

static void *worker(void *arg) {
    long t = (long)arg;
    char *keep[256] = {0};
    unsigned x = 12345u + (unsigned)t;
    for (int i = 0; i < 20000; i++) {
        x = x * 1103515245u + 12345u;
        int k = (int)(x >> 8) % 256;
        size_t n = (x >> 4) % 3000 + 1;
        if (i % 97 == 0) n = 100000 + (x % 50000); /* a large block: its own reservation */
        if (keep[k]) {
            check(keep[k][0] == (char)t, "block contents");
            if (i % 5 == 0) {
                keep[k] = realloc(keep[k], n);
                check(keep[k] != NULL && keep[k][0] == (char)t, "realloc keeps contents");
                memset(keep[k], (char)t, n);
                continue;
            }
            free(keep[k]);
        }
        keep[k] = malloc(n);
        check(keep[k] != NULL, "malloc");
        memset(keep[k], (char)t, n);
        if (i % 1000 == 0) {
            MEMORY_BASIC_INFORMATION mbi;
            inside_virtmem = 1;
            SIZE_T q = VirtualQuery(keep[k], &mbi, sizeof mbi);
            inside_virtmem = 0;
            check(q == sizeof mbi && mbi.State == MEM_COMMIT, "VirtualQuery of a heap block");
            char *d = strdup("glibc's strdup allocates through our malloc");
            check(d && strlen(d) > 10, "strdup");
            free(d);
        }
    }
    for (int k = 0; k < 256; k++) free(keep[k]);
    return NULL;
}

int main(void) {
    SYSTEM_INFO si;
    inside_virtmem = 1;
    GetSystemInfo(&si);
    SIZE_T large = GetLargePageMinimum();
    inside_virtmem = 0;
    check(si.dwAllocationGranularity == 65536, "GetSystemInfo");
    check(large % 4096 == 0, "GetLargePageMinimum");

    pthread_t th[4];
    for (long t = 0; t < 4; t++) check(pthread_create(&th[t], NULL, worker, (void *)(t + 1)) == 0, "pthread_create");
    for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);

    /* VirtualProtect and VirtualFree of a region of our own. */
    inside_virtmem = 1;
    void *p = VirtualAlloc(NULL, 4096, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    DWORD old = 0;
    BOOL prot = p && VirtualProtect(p, 4096, PAGE_READONLY, &old);
    BOOL freed = p && VirtualFree(p, 0, MEM_RELEASE);
    inside_virtmem = 0;
    check(prot && old == PAGE_READWRITE && freed, "VirtualProtect/VirtualFree");
    check(virtmem_calls > 10, "the heap came from VirtualAlloc");

    printf("malloc_on_virtmem: %d passed, %d failed\n", failures ? 0 : 1, failures);
    return failures != 0;
}
