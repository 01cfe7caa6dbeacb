// What the process knows about itself before Swift runs: the argument vector as the
// kernel handed it over, and the version and commit the release script built in.
#ifndef CFERRY_LAUNCH_H
#define CFERRY_LAUNCH_H

/// The argc that glibc passed to this library's constructor, or -1 when it never ran
/// (a libc that does not pass arguments to constructors).
int ferry_launch_argc(void);

/// The argv that glibc passed to this library's constructor (NULL when it never ran).
char *const *ferry_launch_argv(void);

/// "0.1.0", or the FERRY_VERSION the manifest was evaluated with.
const char *ferry_build_version(void);

/// The git commit the release script built ("" for a plain `swift build`).
const char *ferry_build_commit(void);

#endif
