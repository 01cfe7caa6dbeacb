// The version line of `ferry --version`. Scripts/release.sh builds with FERRY_COMMIT set
// (and FERRY_VERSION when it is given one); Package.swift turns them into these defines
// for this one file, so a release rebuilds only this target and relinks.
#include "CFerryLaunch.h"

#ifndef FERRY_VERSION
#define FERRY_VERSION "0.1.0"
#endif
#ifndef FERRY_COMMIT
#define FERRY_COMMIT ""
#endif

const char *ferry_build_version(void) { return FERRY_VERSION; }

const char *ferry_build_commit(void) { return FERRY_COMMIT; }
