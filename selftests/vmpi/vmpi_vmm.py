#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""VMPI's host side served through vhost_vdpa to vmpi-vmm, a VMM and VMPI
guest driver in userspace (vmpi/vmm/), with host applications on the host
side's /dev/vmpiN: the link, flows by name both ways with SDUs of 0 to
65535 bytes echoed byte for byte, a remap in one batch during traffic, a
device reset and the VMM killed during traffic, memory maps shaped like
real guests' (4 KiB pages, in and out of a batch, beyond vhost_vdpa's
entries), and the real-guest failure: a map refused for RLIMIT_MEMLOCK.
Prints `ok - ...` / `not ok - ...` lines; exits 1 on any failure.

usage: vmpi_vmm.py HOST_DEV VHOST_DEV VMPI_VMM"""
import errno
import os
import queue
import random
import re
import resource
import signal
import subprocess
import sys
import threading
import time

from vmpi_uapi import accept, alloc, errno_of, recv, register

host_path, vhost_path, vmm_bin = sys.argv[1], sys.argv[2], sys.argv[3]
limits = len(sys.argv) > 4 and sys.argv[4] == "limits"
failed = 0
SIZES = [0, 1, 2, 3, 4, 5, 59, 60, 61, 64, 1000, 4091, 4092, 4093, 4096, 4097,
         8188, 8192, 12345, 16384, 32768, 65530, 65531, 65532, 65533, 65534, 65535]


def result(ok, what):
    global failed
    print(("ok - " if ok else "not ok - ") + what, flush=True)
    if not ok:
        failed += 1


def klog_mark():
    with open("/dev/kmsg", "w") as k:
        k.write("vmpi_vmm.py: mark %f\n" % time.time())


def klog_since_mark():
    out = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
    return out[out.rfind("vmpi_vmm.py: mark"):]


class Vmm:
    """A vmpi-vmm run: its output lines in a queue, commands on its stdin."""

    def __init__(self, *args, memlock=None):
        def limits():
            if memlock is not None:
                resource.setrlimit(resource.RLIMIT_MEMLOCK, (memlock, memlock))

        self.p = subprocess.Popen([vmm_bin, "run", vhost_path, *args], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  preexec_fn=limits)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            print("# vmm: " + line.rstrip(), flush=True)
            self.lines.put(line.rstrip())
        self.lines.put(None)

    def wait(self, pattern, timeout=30):
        """The first new line matching pattern, or None."""
        end = time.time() + timeout
        while time.time() < end:
            try:
                line = self.lines.get(timeout=max(0.01, end - time.time()))
            except queue.Empty:
                break
            if line is None:
                self.lines.put(None)
                break
            self.seen.append(line)
            if re.search(pattern, line):
                return line
        return None

    def cmd(self, c):
        self.p.stdin.write(c + "\n")
        self.p.stdin.flush()

    def end(self, timeout=30):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


class HostEcho:
    """Host application "host-echo": accepts flows and echoes every SDU."""

    def __init__(self):
        self.reg = os.open(host_path, os.O_RDWR)
        register(self.reg, "host-echo")
        self.stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop:
            fd = os.open(host_path, os.O_RDWR)
            try:
                accept(fd, "host-echo")
            except OSError:
                os.close(fd)
                time.sleep(0.2)
                continue
            threading.Thread(target=self._echo, args=(fd,), daemon=True).start()

    @staticmethod
    def _echo(fd):
        try:
            while True:
                os.write(fd, recv(fd, 600))
        except (OSError, TimeoutError):
            os.close(fd)


def flow_to_vmm(timeout=20):
    fd = os.open(host_path, os.O_RDWR)
    end = time.time() + timeout
    while True:
        try:
            alloc(fd, "vmm-echo", "host-client", 5000)
            return fd
        except OSError as e:
            if time.time() > end or e.errno not in (errno.ENOTCONN, errno.ETIMEDOUT):
                os.close(fd)
                raise


def echoed(fd, sizes, seed):
    """Sends SDUs of sizes on fd, each checked as it comes back; the
    number that came back byte for byte."""
    rnd = random.Random(seed)
    good = 0
    for n in sizes:
        sdu = rnd.randbytes(n)
        os.write(fd, sdu)
        back = recv(fd, 30)
        if back != sdu:
            print("# %d bytes sent, %d came back%s" % (n, len(back), "" if len(back) != n else " changed"))
            return good
        good += 1
    return good


def stream(fd, stop, counts):
    """Echo traffic on fd until stop is set or the flow fails: counts
    SDUs and records the error."""
    rnd = random.Random(7)
    try:
        while not stop.is_set():
            sdu = rnd.randbytes(rnd.choice([0, 100, 4096, 20000, 65535]))
            os.write(fd, sdu)
            if recv(fd, 30) != sdu:
                counts["bad"] += 1
            counts["ok"] += 1
    except (OSError, TimeoutError) as e:
        counts["err"] = e


def streamed(counts, n, timeout=10):
    """Waits until the stream has echoed n more SDUs (about half a second
    here), or ended, or timeout s passed (a slow VM)."""
    want, end = counts["ok"] + n, time.time() + timeout
    while counts["ok"] < want and "err" not in counts and time.time() < end:
        time.sleep(0.05)


def link_state():
    for d in os.listdir("/sys/class/misc"):
        p = "/sys/class/misc/%s" % d
        if d.startswith("vmpi") and "/dev/" + d == host_path:
            return open(p + "/link").read().strip()
    return "?"


def served(updates, sizes, seed, *args, memlock=None):
    """A VMM run with args whose map of `updates` messages is accepted
    whole, whose link comes up, and whose guest echoes SDUs of sizes on a
    flow from the host; whether all of that held."""
    vmm = Vmm("--serve", "vmm-echo", *args, memlock=memlock)
    m = vmm.wait("^map:", 180)
    up = vmm.wait("^link up", 60)
    ok = m is not None and m.startswith("map: %d updates, 0 refused" % updates) and up is not None
    if ok:
        fd = flow_to_vmm()
        ok = echoed(fd, sizes, seed) == len(sizes)
        os.close(fd)
    vmm.end()
    return ok

echo = HostEcho()
def phase1():
    """The VMM, its flows, resets and maps, under vhost_vdpa's defaults."""
    # A VMM that serves "vmm-echo" and sends its own SDUs to "host-echo".
    sizes = ",".join(str(n) for n in SIZES)
    vmm = Vmm("--serve", "vmm-echo", "--to", "host-echo", "--sizes", sizes)
    result(vmm.wait("^link up") is not None and link_state() == "up",
           "vmpi-vmm drives the device through vhost_vdpa in QEMU's order and the link comes up (HELLO both ways)")
    line = vmm.wait("^client:", 120)
    result(line is not None and line.startswith("client: %d SDUs echoed byte for byte, 0 bad" % len(SIZES)),
           "a flow from the VMM's guest to the host's application by name: SDUs of 0 to 65535 bytes echoed byte for byte")

    fd = flow_to_vmm()
    result(echoed(fd, SIZES + [random.randrange(65536) for _ in range(20)], 1) == len(SIZES) + 20,
           "a flow from a host application to the VMM's guest by name: SDUs of 0 to 65535 bytes echoed byte for byte")
    result(errno_of(lambda: alloc(os.open(host_path, os.O_RDWR), "nobody", "", 5000)) == errno.ENOENT,
           "a flow to a name the VMM's guest does not serve is refused (ENOENT)")

    # Remap in one batch during traffic: the device never sees the gap.
    stop, counts = threading.Event(), {"ok": 0, "bad": 0}
    t = threading.Thread(target=stream, args=(fd, stop, counts))
    t.start()
    streamed(counts, 100)
    before = counts["ok"]
    vmm.cmd("remap")
    line = vmm.wait("^remap:")
    # Traffic after the remap, not only during it.
    streamed(counts, 200)
    stop.set()
    t.join(60)
    result(line is not None and line.endswith(" 0 refused") and "err" not in counts and counts["bad"] == 0 and
           counts["ok"] > before, "the whole map invalidated and mapped again in one batch during traffic: "
           "no SDU lost or changed (%d before, %d after)" % (before, counts["ok"]))

    # A device reset by the guest during traffic.
    stop, counts = threading.Event(), {"ok": 0, "bad": 0}
    t = threading.Thread(target=stream, args=(fd, stop, counts))
    t.start()
    streamed(counts, 100)
    vmm.cmd("reset")
    up = vmm.wait("^link up", 60)
    t.join(60)
    err = counts.get("err")
    # A read of the ended flow says ECONNRESET, a write EPIPE (as a socket's).
    ENDED = (errno.ECONNRESET, errno.EPIPE)
    ok = up is not None and isinstance(err, OSError) and err.errno in ENDED
    os.close(fd)
    fd = flow_to_vmm()
    result(ok and echoed(fd, [0, 65535, 4097], 2) == 3,
           "a device reset during traffic: the host's flow ends (%s), the link comes back, new flows work"
           % (err and os.strerror(err.errno)))

    # The VMM killed during traffic.
    stop, counts = threading.Event(), {"ok": 0, "bad": 0}
    t = threading.Thread(target=stream, args=(fd, stop, counts))
    t.start()
    streamed(counts, 100)
    vmm.p.kill()
    vmm.end()
    t.join(60)
    err = counts.get("err")
    killed_ok = isinstance(err, OSError) and err.errno in ENDED
    os.close(fd)
    vmm = Vmm("--serve", "vmm-echo")
    up = vmm.wait("^link up", 60)
    fd = flow_to_vmm()
    result(killed_ok and up is not None and echoed(fd, [65535, 1], 3) == 2,
           "the VMM killed during traffic: the host's flow ends (%s); "
           "the device serves the next opener" % (err and os.strerror(err.errno)))
    os.close(fd)
    vmm.end()

    # Memory maps shaped like real guests'.
    # (Without a batch the device rebuilds its copy of the map at every message:
    # fewer entries keep that quick.)
    for ram, n, args, what in (("6M", 1536, (), "in one batch"), ("3M", 768, ("--no-batch",), "one message at a time")):
        ok = served(n, [65535, 0, 4096, 30000], 4, "--ram", ram, "--map", "pages", *args)
        result(ok, "a map of %d scattered 4 KiB entries sent %s: link up, SDUs echoed" % (n, what))

    # Beyond vhost_vdpa's entries: refused (EFAULT), and the device serves the next opener.
    vmm = Vmm("--ram", "12M", "--map", "pages")
    m = vmm.wait("^map:")
    rc = vmm.end()
    vmm = Vmm("--serve", "vmm-echo")
    up = vmm.wait("^link up", 60)
    result(m is not None and m.startswith("map: 3072 updates, 1024 refused") and "Bad address" in m and rc == 1 and
           up is not None,
           "a map of 3072 entries: vhost_vdpa refuses those beyond its 2048 (EFAULT), vmpi-vmm says so and stops, "
           "the device serves the next opener")
    vmm.end()

    # The real guest's failure: QEMU under the default RLIMIT_MEMLOCK (8 MiB) maps
    # a larger guest, vhost_vdpa refuses to pin it, QEMU starts the device anyway.
    klog_mark()
    vmm = Vmm("--ram", "64M", "--like-qemu", "--serve", "vmm-echo", memlock=8 << 20)
    m = vmm.wait("^map:")
    # (A link comes up within a second of the map here: 3 s to see none.)
    up = vmm.wait("^link up", 3)
    # (The device's warning comes 500 ms into the stall; later on a slow VM.)
    end = time.time() + 10
    while "are not in the memory map (0 entries)" not in klog_since_mark() and time.time() < end:
        time.sleep(0.5)
    vmm.end()
    log = klog_since_mark()
    result(m is not None and m.startswith("map: 1 updates, 1 refused") and up is None and
           "are not in the memory map (0 entries)" in log,
           "64 MiB of guest RAM under an 8 MiB RLIMIT_MEMLOCK (QEMU's nested failure): the map is refused, no link, "
           "and the device names the cause in the kernel log")
    print("# " + "\n# ".join(l for l in log.splitlines() if "vmpi0" in l or "vringh" in l))


if not limits:
    phase1()
    sys.exit(1 if failed else 0)

# Phase 2, vhost_vdpa loaded with max_iotlb_entries raised: a guest's RAM
# pinned in more physically contiguous runs than 2048 (64 MiB of RAM in a
# host whose memory is fragmented, or a 1 GiB guest) fits.
ok = served(1, [65535, 0, 17], 5, "--ram", "64M", memlock=resource.RLIM_INFINITY)
result(ok, "64 MiB of guest RAM with RLIMIT_MEMLOCK and vhost_vdpa's entries raised (what "
       "scripts/nested-vmpi-vm.sh now does): link up, SDUs echoed")

# The device's copy of a map of more than 2048 entries (it held 2048, and
# vhost_vdpa ignored its refusal at IOTLB_BATCH_END: no map at all).
ok = served(4096, [65535, 0, 4097], 6, "--ram", "16M", "--map", "pages", memlock=resource.RLIM_INFINITY)
result(ok, "a map of 4096 page-sized entries (vhost_vdpa's entries raised): the device holds it all, link up, "
       "SDUs echoed")


def mem_available():
    """MemAvailable in kB, the page cache dropped first."""
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


# The device holds a reference of its own to every page of a VMM's map
# until the VMM unmaps it (vhost_vdpa unpins a range before it tells the
# device): every page comes back once the VMM is gone. A VMM of 256 MiB:
# a reference kept would keep 256 MiB, twice the bound below.
before = mem_available()
ok = served(1, [65535, 17], 7, "--ram", "256M", memlock=resource.RLIM_INFINITY)
after = mem_available()
print(f"# MemAvailable {before} kB before, {after} kB after a VMM of 256 MiB")
result(ok and before - after < 128 * 1024,
       "the pages of a 256 MiB guest come back after its VMM (the device's page references dropped)")
echo.stop = True
sys.exit(1 if failed else 0)
