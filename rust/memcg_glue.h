/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C half of rust/memcg.rs: a counted reference to a memory cgroup, and
 * allocations charged to it (as sockets charge their receive queues to
 * the cgroup of the task that made them).
 */
#ifndef RVIO_MEMCG_GLUE_H
#define RVIO_MEMCG_GLUE_H

#include <linux/types.h>

struct mem_cgroup;

/* A reference to the memory cgroup of the current task, or NULL (a
 * kernel thread, or no memory cgroups). Process context. */
struct mem_cgroup *rvio_memcg_current(void);
/* Drops a reference rvio_memcg_current() returned. */
void rvio_memcg_put(struct mem_cgroup *memcg);
/* kvmalloc(@size) charged to @memcg (which must stay referenced), or
 * NULL: no memory, or @memcg at its limit after one reclaim attempt (no
 * OOM kill: the caller drops what the memory was for). Task context. */
void *rvio_memcg_kvmalloc(struct mem_cgroup *memcg, size_t size);

#endif /* RVIO_MEMCG_GLUE_H */
