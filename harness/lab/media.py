"""Boot and data media of a board, written by the host before power-on.

On a real board a medium is a USB stick or an SD card that the host reaches
through labgrid's `USBStorageDriver` (behind a `USBSDMuxDriver` that switches
the card between host and board). On the QEMU board (`harness.lab.qemu_board`)
it is a file the QEMU process opens as a drive: the `DiskImageFile` resource
and its `DiskImageDriver`, registered with labgrid here so that an env file
names them like any other resource and driver (`imports: [harness.lab.media]`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.resource.common import Resource
from labgrid.step import step

from harness.errors import UserError


@target_factory.reg_resource
@attr.s(eq=False)
class DiskImageFile(Resource):  # type: ignore[misc]
    """A medium that is a file: the drive a QEMU board boots from or keeps its data on.
    `format`: raw (what a USB stick holds byte for byte) or qcow2."""

    path = attr.ib(validator=attr.validators.instance_of(str))
    format = attr.ib(default="raw", validator=attr.validators.in_(["raw", "qcow2"]))


@target_factory.reg_driver
@attr.s(eq=False)
class DiskImageDriver(Driver):  # type: ignore[misc]
    """Writes an image onto a DiskImageFile, as USBStorageDriver.write_image
    writes one onto a USB stick: the medium then holds exactly the image."""

    bindings = {"medium": "DiskImageFile"}  # noqa: RUF012 (labgrid's attrs class field)

    def on_activate(self) -> None:
        pass

    def on_deactivate(self) -> None:
        pass

    @Driver.check_active  # type: ignore[misc]
    @step(args=["filename"])  # type: ignore[misc]
    def write_image(self, filename: str, **_: Any) -> None:
        medium: DiskImageFile = self.medium
        write_file_medium(Path(filename), Path(medium.path), medium.format)


def image_format(path: Path) -> str:
    """qcow2 or raw, from the file's magic."""
    with path.open("rb") as f:
        return "qcow2" if f.read(4) == b"QFI\xfb" else "raw"


def write_file_medium(image: Path, medium: Path, medium_format: str) -> None:
    """The medium file holds `image`'s bytes, in the medium's format."""
    if not image.is_file():
        raise UserError(f"image {image}: no such file")
    if shutil.which("qemu-img") is None:
        raise UserError("qemu-img not found: install qemu-utils")
    medium.parent.mkdir(parents=True, exist_ok=True)
    tmp = medium.with_name(medium.name + ".writing")
    tmp.unlink(missing_ok=True)  # what a killed write left, or a link: never written through
    done = subprocess.run(
        [
            "qemu-img",
            "convert",
            "-f",
            image_format(image),
            "-O",
            medium_format,
            str(image),
            str(tmp),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {image} to {medium}: {done.stderr.strip()[-300:]}")
    tmp.replace(medium)


def raw_image(image: Path, work_dir: Path) -> Path:
    """The image as raw bytes, what a USB stick or an SD card takes (a qcow2 data
    disk is converted once, sparse, into `work_dir`)."""
    if image_format(image) == "raw":
        return image
    raw = work_dir / (image.stem + ".raw")
    if not raw.exists() or raw.stat().st_mtime < image.stat().st_mtime:
        write_file_medium(image, raw, "raw")
    return raw


def bmap_for(raw: Path) -> Path | None:
    """A block map of a sparse raw image (bmaptool), so that writing an 8 GiB
    blank data disk writes its few used blocks; None without bmaptool."""
    if shutil.which("bmaptool") is None:
        return None
    bmap = Path(f"{raw}.bmap")
    if not bmap.exists() or bmap.stat().st_mtime < raw.stat().st_mtime:
        subprocess.run(["bmaptool", "create", "-o", str(bmap), str(raw)], check=True)
    return bmap


def write_medium(driver: Any, image: Path, work_dir: Path) -> None:
    """Write `image` (raw or qcow2) with a board's storage driver: a
    DiskImageDriver takes it as it is; labgrid's USBStorageDriver takes raw
    bytes, through bmaptool when there is a block map."""
    if isinstance(driver, DiskImageDriver):
        driver.write_image(str(image))
        return
    from labgrid.driver.usbstoragedriver import Mode

    raw = raw_image(image, work_dir)
    mode = Mode.BMAPTOOL if bmap_for(raw) else Mode.DD
    driver.write_image(str(raw), mode=mode)
