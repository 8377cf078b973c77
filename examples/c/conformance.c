/*
 * Conformance cases from shared/spec/windows-cases.md (sections A-G, J, K, plus the NULL
 * output-pointer and system-information cases), run through libvirtmem's C symbols exactly as
 * a Windows C program would call them. Each case is numbered as in windows-cases.md.
 *
 * Prints one line per failed check and ends with "N passed, M failed" (N, M count cases);
 * exits 1 if any case failed.
 *
 *     cargo build --release -p virtmem
 *     cc -std=gnu11 -Wall -Iinclude examples/c/conformance.c target/release/libvirtmem.a \
 *        -lpthread -ldl -lm -o conformance && ./conformance
 */
#include <windows.h>
#include <stdio.h>
#include <string.h>

#define P 0x1000
#define G 0x10000
#define ANY ((ULONG_PTR)-2) /* "do not check this field" in check_mbi */

static int passed, failed;
static const char *current_case;
static int current_ok;

static void begin(const char *name)
{
    current_case = name;
    current_ok = 1;
}

static void end(void)
{
    if (current_ok)
        passed++;
    else
        failed++;
}

static void check_(int ok, const char *what, int line)
{
    if (!ok) {
        printf("FAIL case %s (conformance.c:%d): %s\n", current_case, line, what);
        current_ok = 0;
    }
}

static void check_eq_(ULONGLONG got, ULONGLONG want, const char *expr, int line)
{
    if (got != want) {
        printf("FAIL case %s (conformance.c:%d): %s = 0x%llx, expected 0x%llx\n", current_case,
               line, expr, got, want);
        current_ok = 0;
    }
}

#define CHECK(cond) check_((cond) != 0, #cond, __LINE__)
#define CHECK_EQ(got, want) check_eq_((ULONGLONG)(got), (ULONGLONG)(want), #got, __LINE__)
#define CHECK_PTR(got, want) \
    check_eq_((ULONGLONG)(ULONG_PTR)(got), (ULONGLONG)(ULONG_PTR)(want), #got, __LINE__)

/* A call that must fail: `failed_value` is what it returns, `err` the last error it sets. */
#define CHECK_FAILS(call, failed_value, err)                                                 \
    do {                                                                                     \
        SetLastError(0xdeadbeef);                                                            \
        ULONGLONG r_ = (ULONGLONG)(ULONG_PTR)(call);                                         \
        DWORD e_ = GetLastError();                                                           \
        check_eq_(r_, (ULONGLONG)(ULONG_PTR)(failed_value), #call, __LINE__);                \
        check_eq_(e_, (err), "GetLastError() after " #call, __LINE__);                       \
    } while (0)

/* VirtualQuery(addr) compared field by field; ANY skips a field. */
static void check_mbi_(const void *addr, ULONG_PTR base, ULONG_PTR ab, ULONG_PTR ap,
                       ULONG_PTR rs, ULONG_PTR st, ULONG_PTR pr, ULONG_PTR ty, int line)
{
    MEMORY_BASIC_INFORMATION mbi;
    memset(&mbi, 0xcc, sizeof mbi);
    SIZE_T n = VirtualQuery(addr, &mbi, sizeof mbi);
    check_eq_(n, sizeof mbi, "VirtualQuery() return value", line);
    if (n != sizeof mbi)
        return;
    if (base != ANY)
        check_eq_((ULONG_PTR)mbi.BaseAddress, base, "mbi.BaseAddress", line);
    if (ab != ANY)
        check_eq_((ULONG_PTR)mbi.AllocationBase, ab, "mbi.AllocationBase", line);
    if (ap != ANY)
        check_eq_(mbi.AllocationProtect, ap, "mbi.AllocationProtect", line);
    if (rs != ANY)
        check_eq_(mbi.RegionSize, rs, "mbi.RegionSize", line);
    if (st != ANY)
        check_eq_(mbi.State, st, "mbi.State", line);
    if (pr != ANY)
        check_eq_(mbi.Protect, pr, "mbi.Protect", line);
    if (ty != ANY)
        check_eq_(mbi.Type, ty, "mbi.Type", line);
}
#define CHECK_MBI(addr, base, ab, ap, rs, st, pr, ty)                                         \
    check_mbi_((addr), (ULONG_PTR)(base), (ULONG_PTR)(ab), (ULONG_PTR)(ap), (ULONG_PTR)(rs), \
               (ULONG_PTR)(st), (ULONG_PTR)(pr), (ULONG_PTR)(ty), __LINE__)

#define AT(p, off) ((void *)((char *)(p) + (off)))

/* An address that is free: reserved and released at once. */
static char *free_address(void)
{
    char *p = VirtualAlloc(NULL, 4 * G, MEM_RESERVE, PAGE_NOACCESS);
    VirtualFree(p, 0, MEM_RELEASE);
    return p + G; /* G-aligned, nothing of ours around it */
}

static const DWORD valid_protections[] = { PAGE_NOACCESS, PAGE_READONLY, PAGE_READWRITE,
                                           PAGE_EXECUTE, PAGE_EXECUTE_READ,
                                           PAGE_EXECUTE_READWRITE };
static const DWORD exec_protections[] = { PAGE_EXECUTE, PAGE_EXECUTE_READ,
                                          PAGE_EXECUTE_READWRITE, PAGE_EXECUTE_WRITECOPY };
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------------------------------- */
/* A. VirtualAlloc: argument validation                                                      */
/* ---------------------------------------------------------------------------------------- */

static void section_a(void)
{
    size_t i;
    char *p;

    begin("1: VA(NULL, 0, MEM_RESERVE) -> 87");
    CHECK_FAILS(VirtualAlloc(NULL, 0, MEM_RESERVE, PAGE_NOACCESS), NULL, ERROR_INVALID_PARAMETER);
    end();

    begin("2: VA(NULL, 0x1000, MEM_RESERVE, 0) -> 87");
    CHECK_FAILS(VirtualAlloc(NULL, 0x1000, MEM_RESERVE, 0), NULL, ERROR_INVALID_PARAMETER);
    end();

    begin("3: VA(NULL, 0x1000, MEM_COMMIT, 0) -> 87");
    CHECK_FAILS(VirtualAlloc(NULL, 0x1000, MEM_COMMIT, 0), NULL, ERROR_INVALID_PARAMETER);
    end();

    begin("4: commit with PAGE_READONLY|PAGE_EXECUTE -> 87");
    p = VirtualAlloc(NULL, G, MEM_RESERVE, PAGE_NOACCESS);
    CHECK(p != NULL);
    CHECK_FAILS(VirtualAlloc(p, 0x1000, MEM_COMMIT, PAGE_READONLY | PAGE_EXECUTE), NULL,
                ERROR_INVALID_PARAMETER);
    CHECK(VirtualFree(p, 0, MEM_RELEASE));
    end();

    begin("5: MEM_COMMIT alone at NULL reserves and commits, each valid protection");
    for (i = 0; i < COUNT(valid_protections); i++) {
        DWORD x = valid_protections[i];
        char *b = VirtualAlloc(NULL, P, MEM_COMMIT, x);
        CHECK(b != NULL);
        if (!b)
            continue;
        CHECK_MBI(b, b, b, x, 0x1000, MEM_COMMIT, x, MEM_PRIVATE);
        CHECK(VirtualFree(b, 0, MEM_RELEASE));
    }
    end();

    begin("6: PAGE_WRITECOPY on private memory -> 87");
    CHECK_FAILS(VirtualAlloc(NULL, P, MEM_COMMIT, PAGE_WRITECOPY), NULL, ERROR_INVALID_PARAMETER);
    end();

    begin("7: PAGE_EXECUTE_WRITECOPY on private memory -> 87");
    CHECK_FAILS(VirtualAlloc(NULL, P, MEM_COMMIT, PAGE_EXECUTE_WRITECOPY), NULL,
                ERROR_INVALID_PARAMETER);
    end();

    begin("8: zero or two base protections -> 87");
    {
        DWORD bad[32];
        size_t n = 0;
        DWORD x;
        bad[n++] = 0;
        bad[n++] = 0x03;
        bad[n++] = 0x05;
        bad[n++] = 0x06;
        bad[n++] = 0x07;
        for (x = 0x09; x <= 0x0f; x++)
            bad[n++] = x;
        bad[n++] = 0x30;
        bad[n++] = 0x50;
        bad[n++] = 0x60;
        bad[n++] = 0x70;
        for (x = 0x90; x <= 0xf0; x += 0x10)
            bad[n++] = x;
        for (i = 0; i < n; i++)
            CHECK_FAILS(VirtualAlloc(NULL, P, MEM_COMMIT, bad[i]), NULL, ERROR_INVALID_PARAMETER);
    }
    end();

    begin("11: MEM_WRITE_WATCH without MEM_RESERVE -> 87");
    CHECK_FAILS(VirtualAlloc(NULL, 0x10000, MEM_WRITE_WATCH, PAGE_READWRITE), NULL,
                ERROR_INVALID_PARAMETER);
    end();

    begin("12: AT_ROUND_TO_PAGE -> 87");
    CHECK_FAILS(VirtualAlloc(free_address(), 0x1000,
                             MEM_RESERVE | MEM_COMMIT | AT_ROUND_TO_PAGE, PAGE_EXECUTE_READWRITE),
                NULL, ERROR_INVALID_PARAMETER);
    end();

    begin("13: VirtualAllocEx(NULL handle) -> 6");
    CHECK_FAILS(VirtualAllocEx(NULL, NULL, 0x8000, MEM_COMMIT, PAGE_EXECUTE_READWRITE), NULL,
                ERROR_INVALID_HANDLE);
    end();

    begin("13b: VirtualAllocEx(GetCurrentProcess()) works");
    p = VirtualAllocEx(GetCurrentProcess(), NULL, 0x8000, MEM_COMMIT, PAGE_READWRITE);
    CHECK(p != NULL);
    if (p) {
        p[0x7fff] = 1;
        CHECK(VirtualFreeEx(GetCurrentProcess(), p, 0, MEM_RELEASE));
    }
    end();

    begin("14: VirtualAllocFromApp success leaves the last error untouched");
    SetLastError(0xdeadbeef);
    p = VirtualAllocFromApp(NULL, 0x1000, MEM_RESERVE, PAGE_READWRITE);
    CHECK(p != NULL);
    CHECK_EQ(GetLastError(), 0xdeadbeef);
    if (p)
        VirtualFree(p, 0, MEM_RELEASE);
    end();

    begin("15: VirtualAllocFromApp with execute protections -> 87");
    for (i = 0; i < COUNT(exec_protections); i++)
        CHECK_FAILS(VirtualAllocFromApp(NULL, 0x1000, MEM_RESERVE, exec_protections[i]), NULL,
                    ERROR_INVALID_PARAMETER);
    end();

    begin("16: VirtualAlloc2FromApp: RW works, execute -> 87");
    p = VirtualAlloc2FromApp(NULL, NULL, 0x1000, MEM_COMMIT, PAGE_READWRITE, NULL, 0);
    CHECK(p != NULL);
    if (p)
        VirtualFree(p, 0, MEM_RELEASE);
    for (i = 0; i < COUNT(exec_protections); i++)
        CHECK_FAILS(VirtualAlloc2FromApp(NULL, NULL, 0x1000, MEM_COMMIT, exec_protections[i],
                                         NULL, 0),
                    NULL, ERROR_INVALID_PARAMETER);
    end();

    begin("17: VirtualAlloc2 with a NULL process is the current process");
    p = VirtualAlloc2(NULL, NULL, 0x80000, MEM_COMMIT, PAGE_EXECUTE_READWRITE, NULL, 0);
    CHECK(p != NULL);
    if (p)
        VirtualFree(p, 0, MEM_RELEASE);
    end();
}

/* ---------------------------------------------------------------------------------------- */
/* B. Reserve / commit state; D. VirtualProtect; E. VirtualFree; F. MEM_RESET; G. VirtualQuery */
/* (one reservation followed through cases 19, 20, 37, 38, 39, 74, 21, 25, 54-63, 79)        */
/* ---------------------------------------------------------------------------------------- */

static void reservation_walk(void)
{
    char *p;
    DWORD old;

    begin("19: reserve 0xFFFC bytes -> one 0x10000 reserved region, Protect 0");
    p = VirtualAlloc(NULL, 0xFFFC, MEM_RESERVE, PAGE_NOACCESS);
    CHECK(p != NULL);
    if (!p) {
        end();
        return;
    }
    CHECK_EQ((ULONG_PTR)p % G, 0);
    CHECK_MBI(p, p, p, PAGE_NOACCESS, 0x10000, MEM_RESERVE, 0, MEM_PRIVATE);
    end();

    begin("35: VirtualProtect on reserved pages -> 487, old = PAGE_NOACCESS");
    old = 0xdeadbeef;
    CHECK_FAILS(VirtualProtect(p, 0xFFFC, PAGE_READONLY, &old), FALSE, ERROR_INVALID_ADDRESS);
    CHECK_EQ(old, PAGE_NOACCESS);
    end();

    begin("20: commit one NOACCESS page -> Protect 1");
    CHECK_PTR(VirtualAlloc(p, 0x1000, MEM_COMMIT, PAGE_NOACCESS), p);
    CHECK_MBI(p, p, p, PAGE_NOACCESS, 0x1000, MEM_COMMIT, PAGE_NOACCESS, MEM_PRIVATE);
    end();

    begin("37: VirtualProtect NOACCESS -> READONLY -> READWRITE reports the old values");
    old = 0;
    CHECK(VirtualProtect(p, 0x1000, PAGE_READONLY, &old));
    CHECK_EQ(old, PAGE_NOACCESS);
    CHECK(VirtualProtect(p, 0x1000, PAGE_READWRITE, &old));
    CHECK_EQ(old, PAGE_READONLY);
    CHECK_MBI(p, p, p, ANY, 0x1000, MEM_COMMIT, PAGE_READWRITE, MEM_PRIVATE);
    end();

    begin("38: VirtualProtect(PAGE_READWRITE|PAGE_EXECUTE_WRITECOPY) -> 87");
    CHECK_FAILS(VirtualProtect(p, 0x1000, PAGE_READWRITE | PAGE_EXECUTE_WRITECOPY, &old), FALSE,
                ERROR_INVALID_PARAMETER);
    end();

    begin("39: VirtualProtect(0) -> 87");
    CHECK_FAILS(VirtualProtect(p, 0x1000, 0, &old), FALSE, ERROR_INVALID_PARAMETER);
    end();

    begin("74: MEM_RESET keeps the page committed RW; contents 0x55 or 0");
    memset(p, 0x55, 0x1000);
    CHECK_PTR(VirtualAlloc(p, 0x1000, MEM_RESET, PAGE_NOACCESS), p);
    {
        DWORD first;
        memcpy(&first, p, sizeof first);
        CHECK(first == 0x55555555 || first == 0);
    }
    CHECK_MBI(p, p, p, ANY, 0x1000, MEM_COMMIT, PAGE_READWRITE, MEM_PRIVATE);
    end();

    begin("21: the rest of the reservation is one reserved region to its end");
    CHECK_MBI(p + 0x1000, p + 0x1000, p, PAGE_NOACCESS, 0xF000, MEM_RESERVE, 0, MEM_PRIVATE);
    end();

    begin("25: AllocationProtect keeps its allocation-time value");
    CHECK_MBI(p, p, p, PAGE_NOACCESS, ANY, ANY, PAGE_READWRITE, ANY);
    end();

    begin("54: VirtualFree type 0 -> 87");
    CHECK_FAILS(VirtualFree(p, 0x10000, 0), FALSE, ERROR_INVALID_PARAMETER);
    end();

    begin("56: VirtualFree(MEM_FREE) -> 87");
    CHECK_FAILS(VirtualFree(p, 0, MEM_FREE), FALSE, ERROR_INVALID_PARAMETER);
    end();

    begin("58: MEM_RELEASE with a size -> 87");
    CHECK_FAILS(VirtualFree(p, 1, MEM_RELEASE), FALSE, ERROR_INVALID_PARAMETER);
    end();

    begin("E [I]: MEM_DECOMMIT|MEM_RELEASE -> 87");
    CHECK_FAILS(VirtualFree(p, 0, MEM_DECOMMIT | MEM_RELEASE), FALSE, ERROR_INVALID_PARAMETER);
    end();

    begin("63: MEM_RELEASE not at the allocation base -> 487");
    CHECK_FAILS(VirtualFree(p + 0x1000, 0, MEM_RELEASE), FALSE, ERROR_INVALID_ADDRESS);
    end();

    begin("70: VirtualFreeEx(NULL handle) -> 6");
    CHECK_FAILS(VirtualFreeEx(NULL, p, 0, MEM_RELEASE), FALSE, ERROR_INVALID_HANDLE);
    end();

    begin("59: VirtualFree(p, 0, MEM_RELEASE) -> TRUE");
    CHECK(VirtualFree(p, 0, MEM_RELEASE));
    end();

    begin("79: free memory: AB NULL, AP 0, State MEM_FREE, Protect PAGE_NOACCESS, Type 0");
    CHECK_MBI(p, p, NULL, 0, ANY, MEM_FREE, PAGE_NOACCESS, 0);
    end();

    begin("E: releasing it again -> 487");
    CHECK_FAILS(VirtualFree(p, 0, MEM_RELEASE), FALSE, ERROR_INVALID_ADDRESS);
    end();
}

/* ---------------------------------------------------------------------------------------- */
/* C. Rounding, alignment and conflicts                                                      */
/* ---------------------------------------------------------------------------------------- */

static void section_c(void)
{
    char *g, *a;

    begin("28: reserve at an unaligned address rounds the base down to 64K");
    g = free_address();
    a = VirtualAlloc(g + 0x1234, 0x2000, MEM_RESERVE, PAGE_READWRITE);
    CHECK_PTR(a, g);
    if (a) {
        /* [g, round_up(g + 0x1234 + 0x2000, P)) = [g, g + 0x4000) */
        CHECK_MBI(g, g, g, PAGE_READWRITE, 0x4000, MEM_RESERVE, 0, MEM_PRIVATE);
        CHECK(VirtualFree(a, 0, MEM_RELEASE));
    }
    end();

    begin("29: commit (base+0x1FFF, 2) commits the two pages it touches");
    a = VirtualAlloc(NULL, G, MEM_RESERVE, PAGE_READWRITE);
    CHECK(a != NULL);
    if (a) {
        CHECK_PTR(VirtualAlloc(a + 0x1FFF, 2, MEM_COMMIT, PAGE_READWRITE), a + 0x1000);
        CHECK_MBI(a, a, a, PAGE_READWRITE, 0x1000, MEM_RESERVE, 0, MEM_PRIVATE);
        CHECK_MBI(a + 0x1000, a + 0x1000, a, PAGE_READWRITE, 0x2000, MEM_COMMIT, PAGE_READWRITE,
                  MEM_PRIVATE);
        CHECK_MBI(a + 0x3000, a + 0x3000, a, PAGE_READWRITE, 0xD000, MEM_RESERVE, 0,
                  MEM_PRIVATE);
    }
    end();

    begin("33: a commit running past the reservation's end -> 487");
    if (a) {
        CHECK_FAILS(VirtualAlloc(a + 0xF000, 0x2000, MEM_COMMIT, PAGE_READWRITE), NULL,
                    ERROR_INVALID_ADDRESS);
        CHECK_MBI(a + 0xF000, ANY, a, ANY, 0x1000, MEM_RESERVE, 0, MEM_PRIVATE); /* unchanged */
        CHECK(VirtualFree(a, 0, MEM_RELEASE));
    }
    end();

    begin("31: an address below 0x10000 -> 87");
    CHECK_FAILS(VirtualAlloc((void *)0x1000, 0x1000, MEM_RESERVE, PAGE_READWRITE), NULL,
                ERROR_INVALID_PARAMETER);
    end();

    begin("31: a range that wraps around -> 87");
    CHECK_FAILS(VirtualAlloc((void *)(ULONG_PTR)-0x10000, 0x20000, MEM_RESERVE, PAGE_READWRITE),
                NULL, ERROR_INVALID_PARAMETER);
    end();

    begin("32: commit of free memory at an explicit address -> 487");
    CHECK_FAILS(VirtualAlloc(free_address(), 0x1000, MEM_COMMIT, PAGE_READWRITE), NULL,
                ERROR_INVALID_ADDRESS);
    end();

    begin("granule: a reservation inside another's 64K granule -> 487");
    a = VirtualAlloc(NULL, P, MEM_RESERVE, PAGE_READWRITE);
    CHECK(a != NULL);
    if (a) {
        CHECK_FAILS(VirtualAlloc(a + 0x1000, P, MEM_RESERVE, PAGE_READWRITE), NULL,
                    ERROR_INVALID_ADDRESS);
        CHECK(VirtualFree(a, 0, MEM_RELEASE));
    }
    end();
}

/* ---------------------------------------------------------------------------------------- */
/* D. VirtualProtect / VirtualProtectFromApp                                                 */
/* ---------------------------------------------------------------------------------------- */

static void section_d(void)
{
    size_t i;
    char *b;
    DWORD old;
    ULONG uold;

    begin("41: VirtualProtect from NOACCESS to each valid protection");
    b = VirtualAlloc(NULL, P, MEM_COMMIT, PAGE_NOACCESS);
    CHECK(b != NULL);
    if (b) {
        for (i = 0; i < COUNT(valid_protections); i++) {
            DWORD x = valid_protections[i];
            old = 0;
            CHECK(VirtualProtect(b, P, x, &old));
            CHECK_EQ(old, PAGE_NOACCESS);
            CHECK_MBI(b, b, b, PAGE_NOACCESS, P, MEM_COMMIT, x, MEM_PRIVATE);
            CHECK(VirtualProtect(b, P, PAGE_NOACCESS, &old));
        }
        VirtualFree(b, 0, MEM_RELEASE);
    }
    end();

    begin("45: VirtualProtect on free memory fails, old = PAGE_NOACCESS");
    old = 0xdeadbeef;
    CHECK(!VirtualProtect(free_address(), P, PAGE_READONLY, &old));
    CHECK_EQ(old, PAGE_NOACCESS);
    end();

    b = VirtualAlloc(NULL, P, MEM_COMMIT, PAGE_READWRITE);

    begin("47: VirtualProtectFromApp(READONLY) -> TRUE, old = READWRITE");
    CHECK(b != NULL);
    uold = 0;
    CHECK(VirtualProtectFromApp(b, 0x1000, PAGE_READONLY, &uold));
    CHECK_EQ(uold, PAGE_READWRITE);
    end();

    begin("48: VirtualProtectFromApp past the allocation fails, old = NOACCESS");
    uold = 0xdeadbeef;
    CHECK(!VirtualProtectFromApp(b, 0x100000, PAGE_READWRITE, &uold));
    CHECK_EQ(uold, PAGE_NOACCESS);
    end();

    begin("49: VirtualProtectFromApp with a NULL old-protection pointer fails (998)");
    CHECK_FAILS(VirtualProtectFromApp(b, 0x1000, PAGE_EXECUTE_READ, NULL), FALSE, ERROR_NOACCESS);
    end();

    begin("50: VirtualProtectFromApp(PAGE_GUARD alone) fails");
    CHECK(!VirtualProtectFromApp(b, 0x1000, PAGE_GUARD, &uold));
    end();

    begin("51: VirtualProtectFromApp(PAGE_EXECUTE_READWRITE) -> TRUE, old = READONLY");
    uold = 0;
    CHECK(VirtualProtectFromApp(b, 0x1000, PAGE_EXECUTE_READWRITE, &uold));
    CHECK_EQ(uold, PAGE_READONLY);
    end();

    begin("D: VirtualProtect with a NULL old-protection pointer -> 998, nothing changes");
    CHECK_FAILS(VirtualProtect(b, 0x1000, PAGE_READONLY, NULL), FALSE, ERROR_NOACCESS);
    CHECK_MBI(b, b, b, ANY, ANY, MEM_COMMIT, PAGE_EXECUTE_READWRITE, ANY);
    end();

    begin("D: VirtualProtectEx(NULL handle) -> 6");
    CHECK_FAILS(VirtualProtectEx(NULL, b, 0x1000, PAGE_READONLY, &old), FALSE,
                ERROR_INVALID_HANDLE);
    end();

    if (b)
        VirtualFree(b, 0, MEM_RELEASE);
}

/* ---------------------------------------------------------------------------------------- */
/* E. decommit; F. DiscardVirtualMemory; G. VirtualQuery edge cases                          */
/* ---------------------------------------------------------------------------------------- */

static void sections_efg(void)
{
    char *a;
    MEMORY_BASIC_INFORMATION mbi;
    SYSTEM_INFO si;

    a = VirtualAlloc(NULL, G, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);

    begin("E: decommit keeps the range reserved; recommitted pages read as zero");
    CHECK(a != NULL);
    if (a) {
        memset(a, 0x77, 0x3000);
        CHECK(VirtualFree(a + 0x1000, 0x1000, MEM_DECOMMIT));
        CHECK_MBI(a + 0x1000, a + 0x1000, a, PAGE_READWRITE, 0x1000, MEM_RESERVE, 0,
                  MEM_PRIVATE);
        CHECK_PTR(VirtualAlloc(a + 0x1000, 0x1000, MEM_COMMIT, PAGE_READWRITE), a + 0x1000);
        CHECK_EQ(a[0x1000], 0);
        CHECK_EQ(a[0x1fff], 0);
        CHECK_EQ((BYTE)a[0x0fff], 0x77);
        CHECK_EQ((BYTE)a[0x2000], 0x77);
    }
    end();

    begin("82: RegionSize runs from the queried page while State and Protect stay equal");
    if (a) {
        DWORD old;
        CHECK(VirtualProtect(a + 0x2000, 0x1000, PAGE_READONLY, &old));
        CHECK(VirtualFree(a + 0x3000, 0xD000, MEM_DECOMMIT));
        CHECK_MBI(a, a, a, PAGE_READWRITE, 0x2000, MEM_COMMIT, PAGE_READWRITE, MEM_PRIVATE);
        CHECK_MBI(a + 0x1800, a + 0x1000, a, PAGE_READWRITE, 0x1000, MEM_COMMIT, PAGE_READWRITE,
                  MEM_PRIVATE);
        CHECK_MBI(a + 0x2000, a + 0x2000, a, PAGE_READWRITE, 0x1000, MEM_COMMIT, PAGE_READONLY,
                  MEM_PRIVATE);
        CHECK_MBI(a + 0x3000, a + 0x3000, a, PAGE_READWRITE, 0xD000, MEM_RESERVE, 0,
                  MEM_PRIVATE);
    }
    end();

    begin("78: DiscardVirtualMemory returns ERROR_SUCCESS (0); pages stay committed");
    if (a) {
        CHECK_EQ(DiscardVirtualMemory(a, 0x2000), ERROR_SUCCESS);
        CHECK_MBI(a, a, a, PAGE_READWRITE, 0x2000, MEM_COMMIT, PAGE_READWRITE, MEM_PRIVATE);
    }
    end();

    begin("G: VirtualQuery with a short buffer -> 0, ERROR_BAD_LENGTH (24)");
    CHECK_FAILS(VirtualQuery(a, &mbi, sizeof mbi - 1), 0, ERROR_BAD_LENGTH);
    end();

    begin("G: VirtualQuery with a NULL buffer -> 0, ERROR_NOACCESS (998)");
    CHECK_FAILS(VirtualQuery(a, NULL, sizeof mbi), 0, ERROR_NOACCESS);
    end();

    begin("G: VirtualQuery above lpMaximumApplicationAddress -> 0, 87");
    GetSystemInfo(&si);
    CHECK_FAILS(VirtualQuery((char *)si.lpMaximumApplicationAddress + 1, &mbi, sizeof mbi), 0,
                ERROR_INVALID_PARAMETER);
    end();

    begin("G: VirtualQueryEx(NULL handle) -> 6");
    CHECK_FAILS(VirtualQueryEx(NULL, a, &mbi, sizeof mbi), 0, ERROR_INVALID_HANDLE);
    end();

    begin("G: VirtualQuery of this program's code: committed MEM_IMAGE");
    CHECK_MBI((const void *)&sections_efg, ANY, ANY, ANY, ANY, MEM_COMMIT, ANY, MEM_IMAGE);
    end();

    if (a)
        VirtualFree(a, 0, MEM_RELEASE);
}

/* ---------------------------------------------------------------------------------------- */
/* J. VirtualLock / VirtualUnlock; K. PAGE_NOCACHE                                           */
/* ---------------------------------------------------------------------------------------- */

static void sections_jk(void)
{
    char *a, *r;

    a = VirtualAlloc(NULL, 2 * P, MEM_COMMIT, PAGE_READWRITE);

    begin("117: VirtualLock then VirtualUnlock -> TRUE, TRUE");
    CHECK(a != NULL);
    CHECK(VirtualLock(a, P));
    CHECK(VirtualUnlock(a, P));
    end();

    begin("118: VirtualUnlock of pages not locked -> 158");
    CHECK_FAILS(VirtualUnlock(a, P), FALSE, ERROR_NOT_LOCKED);
    end();

    begin("120: no lock count: one VirtualUnlock undoes two VirtualLock calls");
    CHECK(VirtualLock(a, 2 * P));
    CHECK(VirtualLock(a, 2 * P));
    CHECK(VirtualUnlock(a, 2 * P));
    CHECK_FAILS(VirtualUnlock(a, 2 * P), FALSE, ERROR_NOT_LOCKED);
    end();

    begin("119: VirtualLock needs committed, accessible pages");
    r = VirtualAlloc(NULL, G, MEM_RESERVE, PAGE_READWRITE);
    CHECK(r != NULL);
    CHECK(!VirtualLock(r, P));
    CHECK(VirtualAlloc(r, P, MEM_COMMIT, PAGE_NOACCESS) == r);
    CHECK(!VirtualLock(r, P));
    VirtualFree(r, 0, MEM_RELEASE);
    end();

    begin("J: VirtualUnlockEx(NULL handle) -> 6");
    CHECK_FAILS(VirtualUnlockEx(NULL, a, P), FALSE, ERROR_INVALID_HANDLE);
    end();

    if (a)
        VirtualFree(a, 0, MEM_RELEASE);

    begin("121: PAGE_READWRITE|PAGE_NOCACHE shows 0x204 in AllocationProtect and Protect");
    a = VirtualAlloc(NULL, 0x2000, MEM_COMMIT, PAGE_READWRITE | PAGE_NOCACHE);
    CHECK(a != NULL);
    if (a) {
        CHECK_MBI(a, a, a, 0x204, 0x2000, MEM_COMMIT, 0x204, MEM_PRIVATE);
        a[0x1fff] = 1;
        VirtualFree(a, 0, MEM_RELEASE);
    }
    end();
}

/* ---------------------------------------------------------------------------------------- */
/* H (argument checks only), N: NULL output pointers, system information, prefetch          */
/* ---------------------------------------------------------------------------------------- */

static void sections_hn(void)
{
    char *b = VirtualAlloc(NULL, G, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    PVOID results[64];
    ULONG_PTR count;
    DWORD gran;
    SYSTEM_INFO si;
    WIN32_MEMORY_RANGE_ENTRY range;

    begin("99: GetWriteWatch argument checks (87 before 998, zero count before NULL array)");
    count = 0;
    CHECK_FAILS(GetWriteWatch(0, b, G, results, &count, &gran), (UINT)-1,
                ERROR_INVALID_PARAMETER); /* (a) */
    count = 64;
    CHECK_FAILS(GetWriteWatch(0, b, G, results, NULL, &gran), (UINT)-1, ERROR_NOACCESS); /* (b) */
    count = 64;
    CHECK_FAILS(GetWriteWatch(0, b, G, results, &count, NULL), (UINT)-1, ERROR_NOACCESS); /* (c) */
    count = 64;
    CHECK_FAILS(GetWriteWatch(0, b, G, NULL, &count, &gran), (UINT)-1, ERROR_NOACCESS); /* (d) */
    count = 0;
    CHECK_FAILS(GetWriteWatch(0, b, G, NULL, &count, &gran), (UINT)-1,
                ERROR_INVALID_PARAMETER); /* (e) */
    count = 64;
    CHECK_FAILS(GetWriteWatch(0xdeadbeef, b, G, results, &count, &gran), (UINT)-1,
                ERROR_INVALID_PARAMETER); /* (f) */
    count = 64;
    CHECK_FAILS(GetWriteWatch(0, b, 0, results, &count, &gran), (UINT)-1,
                ERROR_INVALID_PARAMETER); /* (g) */
    CHECK_FAILS(ResetWriteWatch(b, 0), (UINT)-1, ERROR_INVALID_PARAMETER); /* (j) */
    end();

    begin("99: GetWriteWatch on a region without MEM_WRITE_WATCH -> 87");
    count = 64;
    CHECK_FAILS(GetWriteWatch(0, b, G, results, &count, &gran), (UINT)-1,
                ERROR_INVALID_PARAMETER);
    CHECK_FAILS(ResetWriteWatch(b, G), (UINT)-1, ERROR_INVALID_PARAMETER); /* (k) */
    end();

    if (b)
        VirtualFree(b, 0, MEM_RELEASE);

    begin("144: PrefetchVirtualMemory: no entries -> FALSE, one entry -> TRUE");
    CHECK(!PrefetchVirtualMemory(GetCurrentProcess(), 0, NULL, 0));
    range.VirtualAddress = (PVOID)&range;
    range.NumberOfBytes = sizeof range;
    CHECK(PrefetchVirtualMemory(GetCurrentProcess(), 1, &range, 0));
    end();

    begin("145: GetSystemInfo: 4096-byte pages, 64K granularity, user space from 0x10000");
    memset(&si, 0, sizeof si);
    GetSystemInfo(&si);
    CHECK_EQ(si.dwPageSize, 4096);
    CHECK_EQ(si.dwAllocationGranularity, 65536);
    CHECK_PTR(si.lpMinimumApplicationAddress, 0x10000);
    CHECK((ULONG_PTR)si.lpMaximumApplicationAddress > 0x7FFE0000u);
    CHECK(si.dwNumberOfProcessors >= 1);
    CHECK(si.dwActiveProcessorMask != 0);
#if defined(__x86_64__)
    CHECK_EQ(si.wProcessorArchitecture, PROCESSOR_ARCHITECTURE_AMD64);
    CHECK_EQ(si.dwProcessorType, PROCESSOR_AMD_X8664);
#endif
    end();

    begin("145: GetNativeSystemInfo is GetSystemInfo");
    {
        SYSTEM_INFO n;
        memset(&n, 0, sizeof n);
        GetNativeSystemInfo(&n);
        CHECK_EQ(n.dwPageSize, si.dwPageSize);
        CHECK_PTR(n.lpMaximumApplicationAddress, si.lpMaximumApplicationAddress);
    }
    end();

    begin("127: VirtualAlloc2 extended parameters: bad type, a type twice, NULL array -> 87");
    {
        MEM_ADDRESS_REQUIREMENTS req;
        MEM_EXTENDED_PARAMETER params[2];
        memset(&req, 0, sizeof req);
        memset(params, 0, sizeof params);
        params[0].Type = MemExtendedParameterInvalidType;
        params[0].Pointer = &req;
        CHECK_FAILS(VirtualAlloc2(NULL, NULL, G, MEM_RESERVE, PAGE_READWRITE, params, 1), NULL,
                    ERROR_INVALID_PARAMETER);
        params[0].Type = MemExtendedParameterMax;
        CHECK_FAILS(VirtualAlloc2(NULL, NULL, G, MEM_RESERVE, PAGE_READWRITE, params, 1), NULL,
                    ERROR_INVALID_PARAMETER);
        params[0].Type = MemExtendedParameterAddressRequirements;
        params[1].Type = MemExtendedParameterAddressRequirements;
        params[1].Pointer = &req;
        CHECK_FAILS(VirtualAlloc2(NULL, NULL, G, MEM_RESERVE, PAGE_READWRITE, params, 2), NULL,
                    ERROR_INVALID_PARAMETER);
        CHECK_FAILS(VirtualAlloc2(NULL, NULL, G, MEM_RESERVE, PAGE_READWRITE, NULL, 1), NULL,
                    ERROR_INVALID_PARAMETER);
    }
    end();

    begin("NULL output pointers give 998, never a crash");
    {
        char *c = VirtualAlloc(NULL, P, MEM_COMMIT, PAGE_READWRITE);
        CHECK_FAILS(VirtualProtectEx(GetCurrentProcess(), c, P, PAGE_READONLY, NULL), FALSE,
                    ERROR_NOACCESS);
        CHECK_FAILS(VirtualQueryEx(GetCurrentProcess(), c, NULL, sizeof(MEMORY_BASIC_INFORMATION)),
                    0, ERROR_NOACCESS);
        CHECK_FAILS(AllocateUserPhysicalPages(GetCurrentProcess(), NULL, NULL), FALSE,
                    ERROR_NOACCESS);
        GetSystemInfo(NULL); /* Windows would fault; virtmem ignores it */
        GetNativeSystemInfo(NULL);
        VirtualFree(c, 0, MEM_RELEASE);
    }
    end();

    begin("N: GetCurrentProcess() is (HANDLE)-1; FlushInstructionCache -> TRUE");
    CHECK_PTR(GetCurrentProcess(), CURRENT_PROCESS);
    CHECK(FlushInstructionCache(GetCurrentProcess(), (LPCVOID)&sections_hn, 16));
    CHECK_FAILS(FlushInstructionCache(NULL, (LPCVOID)&sections_hn, 16), FALSE,
                ERROR_INVALID_HANDLE);
    end();
}

int main(void)
{
    section_a();
    reservation_walk();
    section_c();
    section_d();
    sections_efg();
    sections_jk();
    sections_hn();

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
