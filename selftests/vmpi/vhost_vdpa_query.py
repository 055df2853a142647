#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Ask a /dev/vhost-vdpa-N what QEMU's vhost-vdpa-device-pci asks it: the
device id, the queue size limit, the device features and the configuration
space. Prints `key value` lines."""
import fcntl
import struct
import sys

VHOST = 0xAF


def ior(nr, size):
    return (2 << 30) | (size << 16) | (VHOST << 8) | nr


def query(fd, nr, fmt):
    size = struct.calcsize(fmt)
    buf = bytearray(size)
    fcntl.ioctl(fd, ior(nr, size), buf, True)
    return buf


with open(sys.argv[1], "rb+", buffering=0) as f:
    fd = f.fileno()
    print("device_id", struct.unpack("<I", query(fd, 0x70, "<I"))[0])
    print("vring_num_max", struct.unpack("<H", query(fd, 0x76, "<H"))[0])
    print("features", hex(struct.unpack("<Q", query(fd, 0x00, "<Q"))[0]))
    size = struct.unpack("<I", query(fd, 0x79, "<I"))[0]
    print("config_size", size)
    # struct vhost_vdpa_config { __u32 off; __u32 len; __u8 buf[]; }
    cfg = bytearray(struct.pack("<II", 0, size) + bytes(size))
    fcntl.ioctl(fd, ior(0x73, 8), cfg, True)
    num_channels, reserved, max_sdu, min_rx_buf = struct.unpack_from("<HHII", cfg, 8)
    print("num_channels", num_channels)
    print("max_sdu", max_sdu)
    print("min_rx_buf", min_rx_buf)
    if size >= 16:
        # VMPI_F_GRANT's part (docs/vmpi-protocol.md section 5).
        print("max_grants", struct.unpack_from("<H", cfg, 8 + 12)[0])
