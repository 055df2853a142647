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
	struct mem_cgroup *memcg;

	if (!current->mm)
		return NULL;
	memcg = get_mem_cgroup_from_mm(current->mm);
	/* The root cgroup (no parent; root_mem_cgroup is not exported) is
	 * charged nothing: as no cgroup. */
	if (memcg && !parent_mem_cgroup(memcg)) {
		mem_cgroup_put(memcg);
		return NULL;
	}
	return memcg;
}

void rvio_memcg_put(struct mem_cgroup *memcg)
{
	mem_cgroup_put(memcg);
}

void *rvio_memcg_kvmalloc(struct mem_cgroup *memcg, size_t size)
{
	struct mem_cgroup *old = set_active_memcg(memcg);
	void *p;
#ifdef CONFIG_MEMCG
	/* The caller is a device's work, shared by every reader of the
	 * device: a charge over a reader's memory.high must not make it
	 * reclaim and sleep for that reader (try_charge_memcg() does so
	 * once the task's count over high passes a batch). memory.max still
	 * holds. */
	unsigned int over_high = current->memcg_nr_pages_over_high;

	current->memcg_nr_pages_over_high = 0;
#endif

	/* NORETRY: a charge beyond the cgroup's limit fails after one
	 * reclaim attempt instead of invoking the cgroup's OOM killer on the
	 * reader's behalf (a peer would pick the victim). */
	p = kvmalloc(size, GFP_KERNEL_ACCOUNT | __GFP_NORETRY | __GFP_NOWARN);
#ifdef CONFIG_MEMCG
	current->memcg_nr_pages_over_high = over_high;
#endif
	set_active_memcg(old);
	return p;
}
