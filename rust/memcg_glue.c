// SPDX-License-Identifier: GPL-2.0
/*
 * C half of rust/memcg.rs: see rust/memcg_glue.h.
 *
 * Why C: mem_cgroup_put() and set_active_memcg() are static inlines, and
 * current->mm a macro's field, which 6.12's Rust cannot reach.
 */
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>

#include "memcg_glue.h"

struct mem_cgroup *rvio_memcg_current(void)
{
	if (!current->mm)
		return NULL;
	return get_mem_cgroup_from_mm(current->mm);
}

void rvio_memcg_put(struct mem_cgroup *memcg)
{
	mem_cgroup_put(memcg);
}

void *rvio_memcg_kvmalloc(struct mem_cgroup *memcg, size_t size)
{
	struct mem_cgroup *old = set_active_memcg(memcg);
	void *p;

	/* NORETRY: a charge beyond the cgroup's limit fails after one
	 * reclaim attempt instead of invoking the cgroup's OOM killer on the
	 * reader's behalf (a peer would pick the victim). */
	p = kvmalloc(size, GFP_KERNEL_ACCOUNT | __GFP_NORETRY | __GFP_NOWARN);
	set_active_memcg(old);
	return p;
}
