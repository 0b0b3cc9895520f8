/* Wine 8 (Debian bookworm) has no bcryptprimitives.dll, whose ProcessPrng Rust's std (1.78+)
 * imports on Windows. scripts/wine-test builds this stand-in into its own Wine prefix only. */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    return BCryptGenRandom(NULL, data, (ULONG)len, BCRYPT_USE_SYSTEM_PREFERRED_RNG) == 0;
}
