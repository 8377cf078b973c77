/*
 * GetLastError() is per thread, as on Windows, across POSIX threads: each thread sees only the
 * errors of its own calls, a new thread starts with 0, and a successful call leaves the value
 * untouched. The threads run in lock step (a barrier between rounds), so every thread's value
 * is set and read while the others are setting theirs.
 *
 * Prints "N passed, M failed" (checks) and exits 1 on any failure.
 *
 *     cargo build --release -p virtmem
 *     cc -std=gnu11 -Wall -Iinclude examples/c/lasterror_threads.c \
 *        target/release/libvirtmem.a -lpthread -ldl -lm -o lasterror_threads
 */
#include <windows.h>
#include <pthread.h>
#include <stdio.h>

#define THREADS 8
#define ROUNDS 200

static pthread_barrier_t barrier;
static pthread_mutex_t report = PTHREAD_MUTEX_INITIALIZER;
static int passed, failed;

static void check(int ok, int thread, int round, const char *what, DWORD got, DWORD want)
{
    pthread_mutex_lock(&report);
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL thread %d round %d: %s: GetLastError() = %u, expected %u\n", thread, round,
               what, (unsigned)got, (unsigned)want);
    }
    pthread_mutex_unlock(&report);
}

/* A call that fails with a different error code depending on the thread. */
static DWORD fail_somehow(int id, char *free_page)
{
    switch (id % 3) {
    case 0:
        VirtualAlloc(NULL, 0, MEM_RESERVE, PAGE_READWRITE);
        return ERROR_INVALID_PARAMETER;
    case 1:
        VirtualFree(free_page, 0, MEM_RELEASE);
        return ERROR_INVALID_ADDRESS;
    default:
        VirtualAllocEx(NULL, NULL, 0x1000, MEM_COMMIT, PAGE_READWRITE);
        return ERROR_INVALID_HANDLE;
    }
}

static void *worker(void *arg)
{
    int id = (int)(ULONG_PTR)arg;
    int round;
    DWORD got, want;
    char *free_page;

    got = GetLastError();
    check(got == 0, id, -1, "a new thread starts with 0", got, 0);

    free_page = VirtualAlloc(NULL, 0x10000, MEM_RESERVE, PAGE_NOACCESS);
    VirtualFree(free_page, 0, MEM_RELEASE);

    for (round = 0; round < ROUNDS; round++) {
        /* 1. Everyone sets a value of its own, then everyone reads it back. */
        want = (DWORD)(id + 1) * 100000u + (DWORD)round;
        SetLastError(want);
        pthread_barrier_wait(&barrier);
        got = GetLastError();
        check(got == want, id, round, "SetLastError", got, want);

        /* 2. Everyone makes a failing call, with codes that differ between threads. */
        want = fail_somehow(id + round, free_page);
        pthread_barrier_wait(&barrier);
        got = GetLastError();
        check(got == want, id, round, "failing call", got, want);

        /* 3. A successful call in this thread does not change it, whatever the others do. */
        if ((id + round) % 2 == 0) {
            char *p = VirtualAlloc(NULL, 0x1000, MEM_COMMIT, PAGE_READWRITE);
            if (p)
                VirtualFree(p, 0, MEM_RELEASE);
        } else {
            SetLastError(0xC0DE0000u + (DWORD)id);
            want = 0xC0DE0000u + (DWORD)id;
        }
        pthread_barrier_wait(&barrier);
        got = GetLastError();
        check(got == want, id, round, "after a successful call", got, want);
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

int main(void)
{
    pthread_t threads[THREADS];
    int i;
    DWORD got;

    SetLastError(4242);
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (i = 0; i < THREADS; i++)
        if (pthread_create(&threads[i], NULL, worker, (void *)(ULONG_PTR)i) != 0) {
            printf("pthread_create failed\n");
            return 1;
        }
    for (i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);

    got = GetLastError();
    check(got == 4242, -1, -1, "the main thread's value survives the threads", got, 4242);

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
