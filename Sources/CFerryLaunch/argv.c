// The Swift runtime on Linux reads a process's arguments from /proc/self/cmdline
// (stdlib/public/stubs/CommandLine.cpp) unless the entry point overrides them. A ferry
// started where /proc is not mounted (an early rescue shell, an initramfs, a bare chroot)
// would see no arguments at all, print the top-level help and exit 0 (issue 17).
//
// glibc calls every ELF constructor with (argc, argv, envp), the vector the kernel put on
// the initial stack, in static and dynamic executables alike (csu/libc-start.c, call_init;
// elf/dl-init.c). This constructor keeps them and hands them to the runtime's override
// hook before any Swift code reads CommandLine, so no /proc is needed. The hook is weak:
// a runtime without it leaves the override undone, and FerryMain then fails with one
// clear line when the arguments it sees disagree with the kernel's count.
#include "CFerryLaunch.h"

#include <stddef.h>

// SWIFT_RUNTIME_STDLIB_INTERFACE in the Swift runtime: exported, stable since Swift 5.
extern void _swift_stdlib_overrideUnsafeArgvArgc(char **argv, int argc) __attribute__((weak));

static int launch_argc = -1;
static char **launch_argv = NULL;

__attribute__((constructor)) static void ferry_capture_arguments(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc <= 0 || argv == NULL) { return; }
    launch_argc = argc;
    launch_argv = argv;
    if (_swift_stdlib_overrideUnsafeArgvArgc != NULL) {
        _swift_stdlib_overrideUnsafeArgvArgc(argv, argc);
    }
}

int ferry_launch_argc(void) { return launch_argc; }

char *const *ferry_launch_argv(void) { return launch_argv; }
