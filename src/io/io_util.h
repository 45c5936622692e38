/*
 * io_util.h - small file and text helpers of the io layer that the layers
 * above reuse rather than write again (the ml layer's libsvm reader and
 * atomic file writes).
 */
#ifndef PT_IO_UTIL_H
#define PT_IO_UTIL_H

/* strtod in the "C" locale, whatever the application's LC_NUMERIC: a
 * decimal point is always '.'. */
double pt__strtod_c(const char *s, char **end);

/* fsync of the directory holding `path`, so that a rename into it is
 * durable. Best effort: some filesystems refuse fsync on directories. */
void pt__fsync_parent_dir(const char *path);

#endif
