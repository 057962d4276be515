/*
 * sysio.h — the file-system calls of the journal, snapshots and recovery.
 *
 * Role: one thin wrapper per system call, each named by a fault site
 * (fault.h), so a test can fail any one of them on its Nth call (I/O error
 * and ENOSPC loops), and can watch every write, sync, create, rename and
 * removal that succeeded (the power-loss model in tests/ records them and
 * later rolls back what no sync covered).
 *
 * Invariants: a wrapper behaves exactly as its system call (same return,
 * same errno) unless its site fails, when it returns -1 with that errno and
 * has done nothing; the observer sees only calls that succeeded, after they
 * did, and never while no test armed the seam.
 */
#ifndef INVCORE_SYSIO_H
#define INVCORE_SYSIO_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "fault.h"

typedef enum {
    SYSIO_CREATE, /* a file was created (open/openat with O_CREAT) */
    SYSIO_WRITE, /* bytes written at off (iov, iovcnt) */
    SYSIO_SYNC, /* fdatasync or fsync of fd (a directory too) */
    SYSIO_TRUNCATE, /* fd cut to len */
    SYSIO_RENAME, /* path -> path2 */
    SYSIO_UNLINK, /* path removed */
    SYSIO_MKDIR, /* directory path created */
} sysio_op;

typedef struct {
    sysio_op op;
    fault_site site;
    int fd; /* CREATE, WRITE, SYNC, TRUNCATE; -1 otherwise */
    int dirfd; /* for *at calls: the directory of path; AT_FDCWD otherwise */
    const char *path; /* CREATE, RENAME (from), UNLINK, MKDIR */
    const char *path2; /* RENAME (to) */
    const struct iovec *iov; /* WRITE */
    int iovcnt;
    off_t off; /* WRITE: where */
    uint64_t len; /* WRITE: bytes written; TRUNCATE: the new size */
} sysio_event;

typedef void (*sysio_observer_fn)(void *ctx, const sysio_event *ev);

int sysio_open(fault_site site, const char *path, int flags, mode_t mode);
int sysio_openat(fault_site site, int dirfd, const char *name, int flags, mode_t mode);
ssize_t sysio_pwritev(fault_site site, int fd, const struct iovec *iov, int iovcnt, off_t off);
ssize_t sysio_pwrite(fault_site site, int fd, const void *buf, size_t len, off_t off);
/* write(2) at the file offset (which it advances). */
ssize_t sysio_write(fault_site site, int fd, const void *buf, size_t len);
ssize_t sysio_pread(fault_site site, int fd, void *buf, size_t len, off_t off);
int sysio_fdatasync(fault_site site, int fd);
int sysio_fsync(fault_site site, int fd);
int sysio_ftruncate(fault_site site, int fd, off_t len);
int sysio_rename(fault_site site, const char *from, const char *to);
int sysio_renameat(fault_site site, int fromdir, const char *from, int todir, const char *to);
int sysio_unlink(fault_site site, const char *path);
int sysio_unlinkat(fault_site site, int dirfd, const char *name, int flags);
int sysio_mkdir(fault_site site, const char *path, mode_t mode);

/* Test side: watch every successful call from now on (NULL stops). */
void sysio_observe(sysio_observer_fn fn, void *ctx);

#endif
