/* Status codes and the caller-provided error record. */
#include <stdio.h>
#include <string.h>

#include "partita/base.h"

static const char *const status_text[] = {
#define PT__STATUS_TEXT(name, text) text,
    PT_STATUS_TABLE(PT__STATUS_TEXT)
#undef PT__STATUS_TEXT
};

static const char *const status_names[] = {
#define PT__STATUS_NAME(name, text) #name,
    PT_STATUS_TABLE(PT__STATUS_NAME)
#undef PT__STATUS_NAME
};

const char *pt_status_str(pt_status s) {
    if ((unsigned)s >= PT_STATUS_COUNT) return "unknown status";
    return status_text[s];
}

const char *pt_status_name(pt_status s) {
    if ((unsigned)s >= PT_STATUS_COUNT) return "PT_UNKNOWN";
    return status_names[s];
}

void pt_error_clear(pt_error *err) {
    if (!err) return;
    err->code = PT_OK;
    err->msg[0] = '\0';
}

pt_status pt_error_setv(pt_error *err, pt_status code, const char *fmt, va_list ap) {
    if (!err) return code;
    err->code = code;
    if (fmt) {
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    } else {
        snprintf(err->msg, sizeof err->msg, "%s", pt_status_str(code));
    }
    return code;
}

pt_status pt_error_set(pt_error *err, pt_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    pt_error_setv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

pt_status pt_error_prefix(pt_error *err, const char *fmt, ...) {
    if (!err) return PT_OK;
    char prefix[PT_ERROR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[PT_ERROR_MSG_SIZE];
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    /* Truncation is acceptable: the message stays NUL-terminated. */
    size_t n = strlen(prefix);
    if (n > sizeof err->msg - 3) n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    err->msg[n] = ':';
    err->msg[n + 1] = ' ';
    size_t room = sizeof err->msg - n - 3, olen = strlen(old);
    if (olen > room) olen = room;
    memcpy(err->msg + n + 2, old, olen);
    err->msg[n + 2 + olen] = '\0';
    return err->code;
}
