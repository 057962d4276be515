/*
 * sysio.c — the file-system calls behind the fault seam (sysio.h).
 *
 * Role: check the call's fault site, make the call, tell the observer.
 * Everything beyond the system call itself runs only while a test armed the
 * seam (fault_armed), so release code pays one relaxed load per call.
 *
 * Invariants: an injected failure does nothing and sets errno; the observer
 * runs after a call succeeded, with the call's own arguments.
 */
#include "sysio.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* A numbered site (fault.h), for asserts only. */
static bool site_ok(fault_site site)
{
    return site >= 0 && site < FAULT_SITE_COUNT;
}

static _Atomic(sysio_observer_fn) observer;
static _Atomic(void *) observer_ctx;

void sysio_observe(sysio_observer_fn fn, void *ctx)
{
    atomic_store_explicit(&observer_ctx, ctx, memory_order_relaxed);
    /* release: pairs with notify's acquire (the context is seen whole). */
    atomic_store_explicit(&observer, fn, memory_order_release);
    if (fn)
        atomic_store_explicit(&fault_armed, true, memory_order_release);
}

static bool armed(void)
{
    /* relaxed: as fault_check (fault.h). */
    return __builtin_expect(atomic_load_explicit(&fault_armed, memory_order_relaxed), 0);
}

static void notify(const sysio_event *ev)
{
    assert(ev != NULL && site_ok(ev->site));
    /* acquire: pairs with sysio_observe. */
    sysio_observer_fn fn = atomic_load_explicit(&observer, memory_order_acquire);
    if (fn)
        fn(atomic_load_explicit(&observer_ctx, memory_order_relaxed), ev);
}

/* -1 with errno set when the site must fail this call. */
static int inject(fault_site site)
{
    assert(site_ok(site));
    int err = fault_check(site);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

static sysio_event event(sysio_op op, fault_site site, int fd)
{
    assert(site_ok(site) && (unsigned)op <= SYSIO_MKDIR);
    return (sysio_event){.op = op, .site = site, .fd = fd, .dirfd = AT_FDCWD};
}

int sysio_openat(fault_site site, int dirfd, const char *name, int flags, mode_t mode)
{
    assert(site_ok(site) && (dirfd >= 0 || dirfd == AT_FDCWD));
    assert(name);
    if (!armed())
        return openat(dirfd, name, flags, mode);
    if (inject(site) != 0)
        return -1;
    bool existed = !(flags & O_CREAT) || faccessat(dirfd, name, F_OK, 0) == 0;
    int fd = openat(dirfd, name, flags, mode);
    if (fd >= 0 && !existed) {
        sysio_event ev = event(SYSIO_CREATE, site, fd);
        ev.dirfd = dirfd;
        ev.path = name;
        notify(&ev);
    }
    return fd;
}

int sysio_open(fault_site site, const char *path, int flags, mode_t mode)
{
    assert(path != NULL && path[0] != '\0');
    return sysio_openat(site, AT_FDCWD, path, flags, mode);
}

static void notify_write(fault_site site, int fd, const struct iovec *iov, int iovcnt, off_t off,
                         ssize_t n)
{
    assert(iov != NULL && iovcnt > 0 && n > 0);
    sysio_event ev = event(SYSIO_WRITE, site, fd);
    ev.iov = iov;
    ev.iovcnt = iovcnt;
    ev.off = off;
    ev.len = (uint64_t)n;
    notify(&ev);
}

ssize_t sysio_pwritev(fault_site site, int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    assert(site_ok(site) && fd >= 0);
    assert(iov != NULL && iovcnt > 0 && off >= 0);
    if (!armed())
        return pwritev(fd, iov, iovcnt, off);
    if (inject(site) != 0)
        return -1;
    ssize_t n = pwritev(fd, iov, iovcnt, off);
    if (n > 0)
        notify_write(site, fd, iov, iovcnt, off, n);
    return n;
}

ssize_t sysio_pwrite(fault_site site, int fd, const void *buf, size_t len, off_t off)
{
    assert(buf != NULL || len == 0);
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return sysio_pwritev(site, fd, &iov, 1, off);
}

ssize_t sysio_write(fault_site site, int fd, const void *buf, size_t len)
{
    assert(site_ok(site) && fd >= 0);
    assert(buf != NULL || len == 0);
    if (!armed())
        return write(fd, buf, len);
    if (inject(site) != 0)
        return -1;
    off_t off = lseek(fd, 0, SEEK_CUR);
    ssize_t n = write(fd, buf, len);
    if (n > 0) {
        struct iovec iov = {.iov_base = (void *)buf, .iov_len = (size_t)n};
        notify_write(site, fd, &iov, 1, off, n);
    }
    return n;
}

ssize_t sysio_pread(fault_site site, int fd, void *buf, size_t len, off_t off)
{
    assert(site_ok(site) && fd >= 0);
    assert(buf != NULL && off >= 0);
    if (armed() && inject(site) != 0)
        return -1;
    return pread(fd, buf, len, off);
}

static int sync_with(fault_site site, int fd, int (*fn)(int))
{
    assert(site_ok(site) && fd >= 0);
    assert(fn != NULL);
    if (!armed())
        return fn(fd);
    if (inject(site) != 0)
        return -1;
    int rc = fn(fd);
    if (rc == 0) {
        sysio_event ev = event(SYSIO_SYNC, site, fd);
        notify(&ev);
    }
    return rc;
}

int sysio_fdatasync(fault_site site, int fd)
{
    assert(fd >= 0);
    return sync_with(site, fd, fdatasync);
}

int sysio_fsync(fault_site site, int fd)
{
    assert(fd >= 0);
    return sync_with(site, fd, fsync);
}

int sysio_ftruncate(fault_site site, int fd, off_t len)
{
    assert(site_ok(site) && fd >= 0);
    assert(len >= 0);
    if (!armed())
        return ftruncate(fd, len);
    if (inject(site) != 0)
        return -1;
    int rc = ftruncate(fd, len);
    if (rc == 0) {
        sysio_event ev = event(SYSIO_TRUNCATE, site, fd);
        ev.len = (uint64_t)len;
        notify(&ev);
    }
    return rc;
}

int sysio_renameat(fault_site site, int fromdir, const char *from, int todir, const char *to)
{
    assert(site_ok(site) && from != NULL && to != NULL);
    if (!armed())
        return renameat(fromdir, from, todir, to);
    if (inject(site) != 0)
        return -1;
    int rc = renameat(fromdir, from, todir, to);
    if (rc == 0) {
        sysio_event ev = event(SYSIO_RENAME, site, -1);
        ev.dirfd = fromdir;
        ev.path = from;
        ev.path2 = to;
        assert(fromdir == todir); /* the model knows one directory per rename */
        notify(&ev);
    }
    return rc;
}

int sysio_rename(fault_site site, const char *from, const char *to)
{
    assert(from != NULL && to != NULL);
    return sysio_renameat(site, AT_FDCWD, from, AT_FDCWD, to);
}

int sysio_unlinkat(fault_site site, int dirfd, const char *name, int flags)
{
    assert(site_ok(site) && name != NULL);
    assert(dirfd >= 0 || dirfd == AT_FDCWD);
    if (!armed())
        return unlinkat(dirfd, name, flags);
    if (inject(site) != 0)
        return -1;
    int rc = unlinkat(dirfd, name, flags);
    if (rc == 0) {
        sysio_event ev = event(SYSIO_UNLINK, site, -1);
        ev.dirfd = dirfd;
        ev.path = name;
        notify(&ev);
    }
    return rc;
}

int sysio_unlink(fault_site site, const char *path)
{
    assert(path != NULL && path[0] != '\0');
    return sysio_unlinkat(site, AT_FDCWD, path, 0);
}

int sysio_mkdir(fault_site site, const char *path, mode_t mode)
{
    assert(site_ok(site) && path != NULL);
    if (!armed())
        return mkdir(path, mode);
    if (inject(site) != 0)
        return -1;
    int rc = mkdir(path, mode);
    if (rc == 0) {
        sysio_event ev = event(SYSIO_MKDIR, site, -1);
        ev.path = path;
        notify(&ev);
    }
    return rc;
}
