/*
 * shared_message.c: two processes exchange a message through a named section, the way
 * Microsoft's "Creating Named Shared Memory" sample does, with virtmem on Linux.
 *
 * The parent creates a 64 KiB pagefile-backed section named Local\virtmem-example-<pid>
 * (CreateFileMappingA, SEC_COMMIT), maps it and writes a message. Then it starts a second
 * process: itself again, with the arguments `child <name>`. On Windows that is
 * CreateProcess(argv[0], "shared_message child <name>", ...); on Linux the program uses
 * posix_spawn of /proc/self/exe, which is the same thing: a new process that shares nothing with
 * its parent but the section's name. The child opens the section by name (OpenFileMappingA),
 * maps it, checks the message and writes a reply. The parent waits for the child (waitpid, where
 * Windows would use WaitForSingleObject on the process handle) and checks the reply.
 *
 * Prints what both processes do and exits 0 when the message and the reply went through.
 * Exits 77 (and says PENDING) when this build of virtmem cannot share named sections between
 * processes: CreateFileMappingA with a name fails with ERROR_NOT_SUPPORTED, or the child cannot
 * find the name (ERROR_FILE_NOT_FOUND).
 *
 *     cc -std=gnu11 -Wall -Iinclude examples/c/shared_message.c target/release/libvirtmem.a \
 *        -lpthread -ldl -lm -o shared_message && ./shared_message
 */
#include <windows.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECTION_SIZE (64 * 1024)
#define EXIT_PENDING 77 /* named sections across processes are not in this build */

/* What the two processes share, at the start of the section. */
typedef struct {
    DWORD writer_pid;
    char message[256];
    DWORD reader_pid;
    char reply[256];
} MAILBOX;

static const char MESSAGE[] = "Message from the first process.";
static const char REPLY[] = "Reply from the second process.";

extern char **environ;

static int child(const char *name)
{
    HANDLE section;
    MAILBOX *box;

    printf("[child %ld] opening %s\n", (long)getpid(), name);
    fflush(stdout);
    section = OpenFileMappingA(FILE_MAP_ALL_ACCESS, FALSE, name);
    if (section == NULL) {
        DWORD err = GetLastError();
        printf("[child] OpenFileMappingA failed, error %lu\n", (unsigned long)err);
        return err == ERROR_FILE_NOT_FOUND ? EXIT_PENDING : 1;
    }
    box = MapViewOfFile(section, FILE_MAP_ALL_ACCESS, 0, 0, SECTION_SIZE);
    if (box == NULL) {
        printf("[child] MapViewOfFile failed, error %lu\n", (unsigned long)GetLastError());
        CloseHandle(section);
        return 1;
    }
    printf("[child] mapped the section at %p; process %lu wrote: \"%s\"\n", (void *)box,
           (unsigned long)box->writer_pid, box->message);
    if (box->writer_pid != (DWORD)getppid() || strcmp(box->message, MESSAGE) != 0) {
        printf("[child] that is not the parent's message\n");
        UnmapViewOfFile(box);
        CloseHandle(section);
        return 1;
    }
    box->reader_pid = (DWORD)getpid();
    strcpy(box->reply, REPLY);
    printf("[child] replied: \"%s\"\n", box->reply);
    fflush(stdout);
    UnmapViewOfFile(box);
    CloseHandle(section);
    return 0;
}

static int parent(const char *self)
{
    char name[64];
    HANDLE section;
    MAILBOX *box;
    pid_t pid;
    int status, result = 1;
    char *args[4];

    snprintf(name, sizeof name, "Local\\virtmem-example-%ld", (long)getpid());
    section = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_COMMIT, 0,
                                 SECTION_SIZE, name);
    if (section == NULL) {
        DWORD err = GetLastError();
        printf("[parent] CreateFileMappingA(%s) failed, error %lu\n", name, (unsigned long)err);
        if (err == ERROR_NOT_SUPPORTED) {
            printf("PENDING: named sections are not in this build of virtmem\n");
            return EXIT_PENDING;
        }
        return 1;
    }
    if (GetLastError() == ERROR_ALREADY_EXISTS) {
        printf("[parent] %s already exists: not ours\n", name);
        CloseHandle(section);
        return 1;
    }
    box = MapViewOfFile(section, FILE_MAP_ALL_ACCESS, 0, 0, SECTION_SIZE);
    if (box == NULL) {
        printf("[parent] MapViewOfFile failed, error %lu\n", (unsigned long)GetLastError());
        CloseHandle(section);
        return 1;
    }
    box->writer_pid = (DWORD)getpid();
    strcpy(box->message, MESSAGE);
    printf("[parent %ld] created %s (64 KiB), mapped at %p, wrote: \"%s\"\n", (long)getpid(),
           name, (void *)box, box->message);
    fflush(stdout);

    /* CreateProcess(self, "child <name>") */
    args[0] = (char *)self;
    args[1] = "child";
    args[2] = name;
    args[3] = NULL;
    if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ) != 0) {
        printf("[parent] cannot start the second process\n");
        goto out;
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        printf("[parent] the child did not exit normally\n");
        goto out;
    }
    if (WEXITSTATUS(status) == EXIT_PENDING) {
        printf("PENDING: the child could not open the section by name: named sections across "
               "processes are not in this build of virtmem\n");
        result = EXIT_PENDING;
        goto out;
    }
    if (WEXITSTATUS(status) != 0) {
        printf("[parent] the child failed (exit status %d)\n", WEXITSTATUS(status));
        goto out;
    }
    printf("[parent] process %lu replied: \"%s\"\n", (unsigned long)box->reader_pid, box->reply);
    if (box->reader_pid != (DWORD)pid || strcmp(box->reply, REPLY) != 0) {
        printf("[parent] that is not the child's reply\n");
        goto out;
    }
    printf("shared_message: ok\n");
    result = 0;

out:
    UnmapViewOfFile(box);
    CloseHandle(section);
    return result;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "child") == 0)
        return child(argv[2]);
    return parent(argv[0]);
}
