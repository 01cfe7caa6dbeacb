// Signals as bytes on a pipe, and a child spawned with a clean signal state, for
// `ferry serve`. Both are in C because a signal handler may only call async-signal-safe
// functions, and Swift code gives no such promise.
#define _GNU_SOURCE
#include "CFerryShims.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <unistd.h>

static volatile int signal_pipe_write = -1;

// Runs on whichever thread the kernel picked: write(2) is async-signal-safe, errno is kept,
// and a full pipe (a flood of signals nobody reads yet) drops the byte rather than blocking.
static void signal_pipe_handler(int number, siginfo_t *info, void *context) {
    (void)context;
    int saved = errno;
    unsigned char message[2] = {(unsigned char)number, (unsigned char)(info != NULL && info->si_code == SI_KERNEL)};
    if (signal_pipe_write >= 0) (void)write(signal_pipe_write, message, sizeof message);
    errno = saved;
}

int ferry_signal_pipe(const int *signals, int count) {
    if (signal_pipe_write >= 0) return -EBUSY;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return -errno;
    signal_pipe_write = fds[1];
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = signal_pipe_handler;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&action.sa_mask);
    sigset_t unblock;
    sigemptyset(&unblock);
    for (int i = 0; i < count; i++) {
        if (sigaction(signals[i], &action, NULL) != 0) return -errno;
        sigaddset(&unblock, signals[i]);
    }
    // A mask inherited from the parent must not hold them back: this thread at least takes them.
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
    return fds[0];
}

int ferry_spawn_clean(pid_t *pid, const char *path, char *const argv[], char *const envp[]) {
    posix_spawnattr_t attributes;
    int error = posix_spawnattr_init(&attributes);
    if (error != 0) return -error;
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawn_file_actions_t actions;
    error = posix_spawn_file_actions_init(&actions);
    if (error == 0) error = posix_spawnattr_setsigdefault(&attributes, &all);
    if (error == 0) error = posix_spawnattr_setsigmask(&attributes, &none);
    if (error == 0) error = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    // Only stdin, stdout and stderr go to the command, whatever ferry holds open.
    if (error == 0) error = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif
    if (error == 0) error = posix_spawn(pid, path, &actions, &attributes, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    return -error;
}
