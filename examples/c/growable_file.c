/*
 * growable_file.c: a growable buffer in a SEC_RESERVE section, saved to a file with WriteFile and
 * read back through a view of the file, with virtmem on Linux.
 *
 * Windows cannot commit the pages of a file view a little at a time: a file-backed section is
 * always fully "committed" (its pages are the file's), VirtualAlloc(MEM_COMMIT) on a view of it
 * fails with ERROR_ACCESS_DENIED, and MEM_RESET on it with ERROR_USER_MAPPED_FILE. The Windows
 * way to grow data in place is a pagefile-backed SEC_RESERVE section: reserve the most the data
 * can ever need, and commit pages with VirtualAlloc(MEM_COMMIT) as it grows. This program
 *
 *   1. reserves a 4 MiB SEC_RESERVE section, maps it, and appends text records to it,
 *      committing 16 KiB at a time just ahead of the writer;
 *   2. writes what it has to a new temporary file (GetTempPathA, GetTempFileNameA, CreateFileA,
 *      WriteFile, FlushFileBuffers);
 *   3. maps the file (CreateFileMappingA of the file, size 0 = the file's size, then
 *      MapViewOfFile(FILE_MAP_READ)) and checks every byte against the buffer; checks that
 *      MEM_COMMIT on that view fails with 5 and MEM_RESET with 1224;
 *   4. grows the buffer further, appends the new part to the file (WriteFile at the end), maps
 *      the grown file and checks it again;
 *   5. unmaps, closes and deletes the file.
 *
 * Prints what it does and exits 0 when everything read back is what was written.
 *
 *     cc -std=gnu11 -Wall -Iinclude examples/c/growable_file.c target/release/libvirtmem.a \
 *        -lpthread -ldl -lm -o growable_file && ./growable_file
 */
#include <windows.h>
#include <stdio.h>
#include <string.h>

#define RESERVED (4u << 20) /* the most the buffer may grow to */
#define COMMIT_STEP (16u << 10)

static int failures;

#define EXPECT(cond)                                                                     \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            printf("FAILED: %s (growable_file.c:%d), last error %lu\n", #cond, __LINE__, \
                   (unsigned long)GetLastError());                                       \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

/* A buffer that grows inside a reserved view of a SEC_RESERVE section. */
typedef struct {
    HANDLE section;
    char *data;       /* the view: RESERVED bytes, the first `committed` of them committed */
    SIZE_T used;      /* bytes written */
    SIZE_T committed; /* bytes committed */
} BUFFER;

static BOOL buffer_create(BUFFER *b)
{
    b->section = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_RESERVE, 0,
                                    RESERVED, NULL);
    if (b->section == NULL) {
        printf("CreateFileMappingA(SEC_RESERVE) failed, error %lu\n",
               (unsigned long)GetLastError());
        return FALSE;
    }
    b->data = MapViewOfFile(b->section, FILE_MAP_WRITE, 0, 0, 0);
    if (b->data == NULL) {
        printf("MapViewOfFile failed, error %lu\n", (unsigned long)GetLastError());
        CloseHandle(b->section);
        return FALSE;
    }
    b->used = b->committed = 0;
    return TRUE;
}

/* Appends `len` bytes, committing more of the view first when they would not fit. */
static BOOL buffer_append(BUFFER *b, const char *bytes, SIZE_T len)
{
    while (b->used + len > b->committed) {
        if (b->committed + COMMIT_STEP > RESERVED) {
            printf("the buffer is full\n");
            return FALSE;
        }
        if (VirtualAlloc(b->data + b->committed, COMMIT_STEP, MEM_COMMIT, PAGE_READWRITE) !=
            b->data + b->committed) {
            printf("VirtualAlloc(MEM_COMMIT) failed, error %lu\n",
                   (unsigned long)GetLastError());
            return FALSE;
        }
        b->committed += COMMIT_STEP;
    }
    memcpy(b->data + b->used, bytes, len);
    b->used += len;
    return TRUE;
}

static void buffer_destroy(BUFFER *b)
{
    EXPECT(UnmapViewOfFile(b->data));
    EXPECT(CloseHandle(b->section));
}

/* Appends `count` text records numbered from `first`. */
static BOOL add_records(BUFFER *b, int first, int count)
{
    char line[96];
    int i;
    for (i = first; i < first + count; i++) {
        int n = snprintf(line, sizeof line, "record %06d: %.*s\n", i, 10 + i % 50,
                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
        if (!buffer_append(b, line, (SIZE_T)n))
            return FALSE;
    }
    return TRUE;
}

/* Writes `len` bytes to the file at its current position. */
static BOOL write_all(HANDLE file, const char *bytes, SIZE_T len)
{
    while (len > 0) {
        DWORD chunk = len > (1u << 20) ? (1u << 20) : (DWORD)len, written = 0;
        if (!WriteFile(file, bytes, chunk, &written, NULL) || written != chunk) {
            printf("WriteFile failed, error %lu\n", (unsigned long)GetLastError());
            return FALSE;
        }
        bytes += chunk;
        len -= chunk;
    }
    return TRUE;
}

/* Maps the whole file read-only and compares it with `expected`. */
static void check_file_through_a_view(HANDLE file, const char *expected, SIZE_T len)
{
    LARGE_INTEGER size;
    HANDLE mapping;
    char *view;
    MEMORY_BASIC_INFORMATION mbi;

    EXPECT(GetFileSizeEx(file, &size));
    EXPECT((SIZE_T)size.QuadPart == len);
    mapping = CreateFileMappingA(file, NULL, PAGE_READONLY, 0, 0, NULL);
    EXPECT(mapping != NULL);
    if (mapping == NULL)
        return;
    view = MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0);
    EXPECT(view != NULL);
    if (view != NULL) {
        EXPECT(memcmp(view, expected, len) == 0);
        EXPECT(VirtualQuery(view, &mbi, sizeof mbi) == sizeof mbi);
        EXPECT(mbi.Type == MEM_MAPPED && mbi.State == MEM_COMMIT &&
               mbi.Protect == PAGE_READONLY);
        printf("mapped the %zu-byte file at %p (a %zu-byte view): same bytes as the buffer\n",
               (size_t)len, (void *)view, (size_t)mbi.RegionSize);
        {
            /* The last record, found from the end of the view. */
            const char *start = view + len - 1;
            while (start > view && start[-1] != '\n')
                start--;
            printf("  its last record: %.*s", (int)(view + len - start), start);
        }

        /* A file view's pages are the file's: no commit, no reset. */
        SetLastError(0);
        EXPECT(VirtualAlloc(view, 4096, MEM_COMMIT, PAGE_READONLY) == NULL);
        EXPECT(GetLastError() == ERROR_ACCESS_DENIED);
        printf("  VirtualAlloc(MEM_COMMIT) on the file view: error %lu (ERROR_ACCESS_DENIED)\n",
               (unsigned long)GetLastError());
        SetLastError(0);
        EXPECT(VirtualAlloc(view, 4096, MEM_RESET, PAGE_NOACCESS) == NULL);
        EXPECT(GetLastError() == ERROR_USER_MAPPED_FILE);
        printf("  VirtualAlloc(MEM_RESET) on the file view: error %lu (ERROR_USER_MAPPED_FILE)\n",
               (unsigned long)GetLastError());
        EXPECT(UnmapViewOfFile(view));
    }
    EXPECT(CloseHandle(mapping));
}

int main(void)
{
    BUFFER buf;
    char dir[MAX_PATH], path[MAX_PATH];
    HANDLE file;
    MEMORY_BASIC_INFORMATION mbi;
    SIZE_T saved;

    /* 1. The growable buffer. */
    if (!buffer_create(&buf))
        return 1;
    EXPECT(VirtualQuery(buf.data, &mbi, sizeof mbi) == sizeof mbi);
    EXPECT(mbi.State == MEM_RESERVE && mbi.RegionSize == RESERVED);
    printf("reserved a %u KiB SEC_RESERVE section, view at %p: nothing committed yet\n",
           RESERVED / 1024, (void *)buf.data);
    if (!add_records(&buf, 0, 2000))
        return 1;
    EXPECT(VirtualQuery(buf.data, &mbi, sizeof mbi) == sizeof mbi);
    EXPECT(mbi.State == MEM_COMMIT && mbi.RegionSize == buf.committed);
    EXPECT(VirtualQuery(buf.data + buf.committed, &mbi, sizeof mbi) == sizeof mbi);
    EXPECT(mbi.State == MEM_RESERVE && mbi.RegionSize == RESERVED - buf.committed);
    printf("appended 2000 records: %zu bytes used, %zu KiB committed, the other %zu KiB still "
           "reserved\n",
           (size_t)buf.used, (size_t)(buf.committed / 1024),
           (size_t)((RESERVED - buf.committed) / 1024));

    /* 2. Save it to a new file. */
    EXPECT(GetTempPathA(sizeof dir, dir) > 0);
    EXPECT(GetTempFileNameA(dir, "vmg", 0, path) != 0);
    file = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, CREATE_ALWAYS,
                       FILE_ATTRIBUTE_TEMPORARY, NULL);
    if (file == INVALID_HANDLE_VALUE) {
        printf("CreateFileA(%s) failed, error %lu\n", path, (unsigned long)GetLastError());
        return 1;
    }
    EXPECT(write_all(file, buf.data, buf.used));
    EXPECT(FlushFileBuffers(file));
    saved = buf.used;
    printf("wrote %zu bytes to %s\n", (size_t)saved, path);

    /* 3. Read it back through a view of the file. */
    check_file_through_a_view(file, buf.data, saved);

    /* 4. Grow the buffer and the file. */
    if (!add_records(&buf, 2000, 6000))
        return 1;
    printf("appended 6000 more records: %zu bytes used, %zu KiB committed\n", (size_t)buf.used,
           (size_t)(buf.committed / 1024));
    {
        LARGE_INTEGER zero, pos;
        zero.QuadPart = 0;
        EXPECT(SetFilePointerEx(file, zero, &pos, FILE_END));
        EXPECT((SIZE_T)pos.QuadPart == saved);
    }
    EXPECT(write_all(file, buf.data + saved, buf.used - saved));
    printf("appended the new %zu bytes to the file\n", (size_t)(buf.used - saved));
    check_file_through_a_view(file, buf.data, buf.used);

    /* 5. Clean up. */
    EXPECT(CloseHandle(file));
    EXPECT(DeleteFileA(path));
    buffer_destroy(&buf);
    printf("closed and deleted the file, unmapped the buffer\n");

    if (failures) {
        printf("growable_file: %d check(s) failed\n", failures);
        return 1;
    }
    printf("growable_file: ok\n");
    return 0;
}
