/* A stand-in for Windows' bcryptprimitives.dll, which Wine 8 does not have.
 *
 * Rust's std (1.78 and later) imports ProcessPrng from bcryptprimitives.dll for
 * HashMap seeds and the like; without this DLL no Rust program for
 * x86_64-pc-windows-gnu starts under Wine 8. ProcessPrng forwards to
 * advapi32!SystemFunction036 (RtlGenRandom), which Wine implements.
 *
 * Built by ci/wine.sh with Debian's mingw gcc:
 *   x86_64-w64-mingw32-gcc -shared -O2 -s -o bcryptprimitives.dll bcryptprimitives.c -ladvapi32
 */
#include <windows.h>

/* advapi32's RtlGenRandom, exported as SystemFunction036. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}
