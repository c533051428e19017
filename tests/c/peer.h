/* What the C peers of the test suites share: opening and mapping a file, as any qshm user
 * of a file segment does. */
#ifndef QSHM_TEST_PEER_H
#define QSHM_TEST_PEER_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* Opens the file at `path` read-write, holds a shared flock on it while mapped (every qshm
 * user does: the last one to detach removes a file flagged remove-on-last-detach), and maps
 * all of it. Returns the mapping; its descriptor in *fd and its size in *len. Exits with
 * status 2, said on stderr, when any step fails. */
static void *peer_map_file(const char *path, int *fd, size_t *len)
{
    struct stat st;
    *fd = open(path, O_RDWR | O_CLOEXEC);
    if (*fd < 0 || flock(*fd, LOCK_SH) != 0 || fstat(*fd, &st) != 0) {
        perror(path);
        exit(2);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    if (map == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    *len = (size_t)st.st_size;
    return map;
}

#endif
