"""Kernel module metadata and the dependency closure the builder computes."""

import struct

import pytest

from harness import elf
from harness.build import kmod
from harness.build.kmod import ModuleInfo


def elf_with_sections(sections: dict[str, bytes]) -> bytes:
    """A minimal 64-bit little-endian ELF file holding the given sections."""
    names = b"\0" + b"".join(n.encode() + b"\0" for n in [*sections, ".shstrtab"])
    body = b"".join(sections.values()) + names
    shoff = 64 + len(body)
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x28, shoff)
    struct.pack_into("<HHH", header, 0x3A, 64, len(sections) + 2, len(sections) + 1)
    table = bytes(64)  # the null section
    offset, name_off = 64, 1
    for name, content in [*sections.items(), (".shstrtab", names)]:
        table += struct.pack("<IIQQQQ", name_off, 1, 0, 0, offset, len(content)).ljust(64, b"\0")
        offset += len(content)
        name_off += len(name) + 1
    return bytes(header) + body + table


def test_modinfo_is_read_from_the_elf_section():
    info = b"license=GPL\0depends=virtio,virtio_ring\0alias=virtio:d00000002v*\0"
    data = elf_with_sections({".text": b"\x90" * 8, ".modinfo": info})
    assert kmod.parse_modinfo(elf.section(data, ".modinfo")) == {
        "license": ["GPL"],
        "depends": ["virtio,virtio_ring"],
        "alias": ["virtio:d00000002v*"],
    }


def test_not_an_elf_file_is_refused():
    with pytest.raises(ValueError):
        elf.section(b"not elf", ".modinfo")


@pytest.mark.parametrize(
    ("filename", "name"),
    [
        ("kernel/net/bridge/br_netfilter.ko", "br_netfilter"),
        ("kernel/drivers/usb/common/usb-common.ko", "usb_common"),
        ("x.ko.xz", "x"),
    ],
)
def test_module_names_use_underscores(filename, name):
    assert kmod.module_name(filename) == name


MODULES = {
    "br_netfilter": ModuleInfo("br_netfilter", "k/br_netfilter.ko", depends=("bridge",)),
    "bridge": ModuleInfo("bridge", "k/bridge.ko", depends=("stp", "llc")),
    "stp": ModuleInfo("stp", "k/stp.ko", depends=("llc",)),
    "llc": ModuleInfo("llc", "k/llc.ko"),
    "ext4": ModuleInfo("ext4", "k/ext4.ko", depends=("jbd2",), softdeps=("crc32c",)),
    "jbd2": ModuleInfo("jbd2", "k/jbd2.ko"),
    "crc32c_generic": ModuleInfo("crc32c_generic", "k/crc32c_generic.ko", aliases=("crc32c",)),
    "virtio_net": ModuleInfo("virtio_net", "k/virtio_net.ko", aliases=("virtio:d00000001v*",)),
}


def test_closure_follows_dependencies_transitively():
    needed, missing = kmod.closure(["br_netfilter"], MODULES)
    assert needed == ["br_netfilter", "bridge", "llc", "stp"]
    assert missing == []


def test_softdeps_resolve_through_aliases():
    needed, _ = kmod.closure(["ext4"], MODULES)
    assert needed == ["crc32c_generic", "ext4", "jbd2"]


def test_builtin_and_missing_modules_are_told_apart():
    needed, missing = kmod.closure(
        ["overlay", "no_such_module"], MODULES, builtin=["kernel/fs/overlay.ko"]
    )
    assert needed == []
    assert missing == ["no_such_module"]


def test_modules_dep_lists_dependencies_deepest_last():
    text = kmod.modules_dep(["br_netfilter", "llc"], MODULES)
    lines = text.splitlines()
    assert lines[0].startswith("k/br_netfilter.ko: k/bridge.ko")
    assert set(lines[0].split(": ")[1].split()) == {"k/bridge.ko", "k/stp.ko", "k/llc.ko"}
    assert lines[1] == "k/llc.ko:"


def test_modules_alias_lines():
    assert kmod.modules_alias(["virtio_net"], MODULES) == "alias virtio:d00000001v* virtio_net\n"
