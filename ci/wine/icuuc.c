/* A stand-in for Windows' icuuc.dll (the ICU that Windows 10 ships), which Wine 8
 * does not have and Qt 6's Qt6Core.dll imports.
 *
 * Qt6Core imports only ICU's converter API (ucnv_*), used by QStringConverter for
 * codecs other than the built-in UTF-8/16/32 and Latin-1. QSharedMemory and
 * QSystemSemaphore never call it. Here no ICU converter exists: ucnv_open fails
 * with U_FILE_ACCESS_ERROR (what ICU answers for an unknown converter),
 * ucnv_countAvailable is 0, and everything else does nothing and returns 0/NULL.
 *
 * ci/wine.sh reads the names Qt6Core.dll imports from icuuc.dll
 * (x86_64-w64-mingw32-objdump -p) and writes the .def file: a name defined here is
 * exported as itself, any other name (a newer Qt importing more) is exported as
 * icuuc_stub_zero, which returns 0 and touches nothing.
 */
#include <stddef.h>
#include <stdint.h>

typedef int32_t UErrorCode; /* ICU: <= 0 success, > 0 failure */
#define U_FILE_ACCESS_ERROR 4
#define U_UNSUPPORTED_ERROR 16

static void fail(UErrorCode *err, UErrorCode code)
{
    if (err != NULL && *err <= 0)
        *err = code;
}

void *icuuc_stub_zero(void) { return NULL; }

void *ucnv_open(const char *name, UErrorCode *err)
{
    (void)name;
    fail(err, U_FILE_ACCESS_ERROR);
    return NULL;
}

void ucnv_close(void *cnv) { (void)cnv; }
void ucnv_reset(void *cnv) { (void)cnv; }
int8_t ucnv_getMaxCharSize(const void *cnv) { (void)cnv; return 1; }

const char *ucnv_getName(const void *cnv, UErrorCode *err)
{
    (void)cnv;
    fail(err, U_UNSUPPORTED_ERROR);
    return NULL;
}

void ucnv_getToUCallBack(const void *cnv, void **action, const void **context)
{
    (void)cnv;
    if (action != NULL) *action = NULL;
    if (context != NULL) *context = NULL;
}

void ucnv_getFromUCallBack(const void *cnv, void **action, const void **context)
{
    (void)cnv;
    if (action != NULL) *action = NULL;
    if (context != NULL) *context = NULL;
}

void ucnv_setToUCallBack(void *cnv, void *action, const void *context, void **old_action,
                         const void **old_context, UErrorCode *err)
{
    (void)cnv; (void)action; (void)context;
    if (old_action != NULL) *old_action = NULL;
    if (old_context != NULL) *old_context = NULL;
    fail(err, U_UNSUPPORTED_ERROR);
}

void ucnv_setFromUCallBack(void *cnv, void *action, const void *context, void **old_action,
                           const void **old_context, UErrorCode *err)
{
    (void)cnv; (void)action; (void)context;
    if (old_action != NULL) *old_action = NULL;
    if (old_context != NULL) *old_context = NULL;
    fail(err, U_UNSUPPORTED_ERROR);
}

void UCNV_TO_U_CALLBACK_SUBSTITUTE(const void *context, void *args, const char *units,
                                   int32_t length, int32_t reason, UErrorCode *err)
{
    (void)context; (void)args; (void)units; (void)length; (void)reason; (void)err;
}

void UCNV_FROM_U_CALLBACK_SUBSTITUTE(const void *context, void *args, const uint16_t *units,
                                     int32_t length, int32_t code_point, int32_t reason,
                                     UErrorCode *err)
{
    (void)context; (void)args; (void)units; (void)length; (void)code_point; (void)reason;
    (void)err;
}

void ucnv_cbToUWriteUChars(void *args, const uint16_t *source, int32_t length,
                           int32_t offset_index, UErrorCode *err)
{
    (void)args; (void)source; (void)length; (void)offset_index;
    fail(err, U_UNSUPPORTED_ERROR);
}

void ucnv_cbFromUWriteUChars(void *args, const uint16_t **source, const uint16_t *source_limit,
                             int32_t offset_index, UErrorCode *err)
{
    (void)args; (void)source; (void)source_limit; (void)offset_index;
    fail(err, U_UNSUPPORTED_ERROR);
}

void ucnv_toUnicode(void *cnv, uint16_t **target, const uint16_t *target_limit,
                    const char **source, const char *source_limit, int32_t *offsets,
                    int8_t flush, UErrorCode *err)
{
    (void)cnv; (void)target; (void)target_limit; (void)source; (void)source_limit;
    (void)offsets; (void)flush;
    fail(err, U_UNSUPPORTED_ERROR);
}

void ucnv_fromUnicode(void *cnv, char **target, const char *target_limit,
                      const uint16_t **source, const uint16_t *source_limit, int32_t *offsets,
                      int8_t flush, UErrorCode *err)
{
    (void)cnv; (void)target; (void)target_limit; (void)source; (void)source_limit;
    (void)offsets; (void)flush;
    fail(err, U_UNSUPPORTED_ERROR);
}

int32_t ucnv_toUCountPending(const void *cnv, UErrorCode *err)
{
    (void)cnv; (void)err;
    return 0;
}

int32_t ucnv_fromUCountPending(const void *cnv, UErrorCode *err)
{
    (void)cnv; (void)err;
    return 0;
}

const char *ucnv_getStandardName(const char *name, const char *standard, UErrorCode *err)
{
    (void)name; (void)standard;
    fail(err, U_UNSUPPORTED_ERROR);
    return NULL;
}

const char *ucnv_getAvailableName(int32_t n) { (void)n; return NULL; }
int32_t ucnv_countAvailable(void) { return 0; }
