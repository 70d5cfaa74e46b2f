/* fileio.h - reading small whole files (configuration, databases, /proc). */
#ifndef MXB_FILEIO_H
#define MXB_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Read all of `path` into buf (len bytes, NUL-terminated), allocating
 * nothing: for files read over and over such as /proc/stat.  Returns the
 * number of bytes read, or -1 with errno (EFBIG when it does not fit).
 */
long file_read_buf(const char *path, char *buf, size_t len);

/*
 * Read all of the regular file `path`, at most `max` bytes, into a new
 * NUL-terminated buffer (free with free()); *len gets its length.  Returns
 * NULL with errno: EFBIG when larger than max, EINVAL when not a regular file
 * (a FIFO or device would block or never end).
 */
char *file_read_all(const char *path, size_t max, size_t *len);

/* Write all of buf to fd, retrying short writes and EINTR; 0 or -1 (errno). */
int file_write_all(int fd, const void *buf, size_t len);

/*
 * Replace `path` durably and atomically with data[0..len): write
 * "<path>.tmp" with `mode`, fsync it, rename it over path, fsync the
 * folder.  Readers see the old file or the new one, never a part, and after
 * a crash the new one is there once this returned 0.  -1 with errno (the
 * temporary file is removed).
 */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

#endif
