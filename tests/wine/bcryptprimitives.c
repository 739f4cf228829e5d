/* TEST-ONLY stand-in for Windows' bcryptprimitives.dll, for running the Windows build under
   Wine 8.0 in CI. Never shipped: the Wine tier (tests/suite/wine.rs) compiles it with mingw
   into its own scratch directory.

   Why it exists: Rust's std (since 1.78) gets its random numbers from ProcessPrng in
   bcryptprimitives.dll, which Windows 10 and later have and Wine added only in 8.13; Debian
   12's Wine 8.0 lacks it, so every Rust program dies at start there. This forwards to
   RtlGenRandom (advapi32!SystemFunction036), which Wine 8.0 implements. */
#include <windows.h>
#include <ntsecapi.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
