/* Stand-in for the Apple SDK's TargetConditionals.h, just enough for ring's
   include/ring-core/base.h, so that `cargo check` and `cargo clippy` can run for the Apple
   targets on Linux (.ci/run). The objects this compiles are never linked into anything:
   macOS binaries are built on macOS (.github/workflows/release.yml). */
#pragma once
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_TV 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_SIMULATOR 0
