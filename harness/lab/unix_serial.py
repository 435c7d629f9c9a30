"""A serial line that is a Unix socket, for labgrid: the `UnixSerialPort`
resource (a socket path) and its `UnixSerialDriver`, labgrid's SerialDriver
over pyserial's plain-socket port with an AF_UNIX connection. The QEMU board
puts its UARTs there, in a directory only its user may enter, so that no
other local user can type at its console or its test shell, take its line
first, or offer a fake board on its port (docs/architecture.md "Shared
hosts"). Registered with labgrid: `imports: [harness.lab.unix_serial]`."""

from __future__ import annotations

import socket

import attr
from labgrid.driver import SerialDriver
from labgrid.factory import target_factory
from labgrid.resource.common import Resource
from serial import SerialException
from serial.urlhandler.protocol_socket import POLL_TIMEOUT
from serial.urlhandler.protocol_socket import Serial as SocketSerial


class UnixSocketSerial(SocketSerial):  # type: ignore[misc]
    """pyserial's plain-socket port, connected to a Unix socket path."""

    def open(self) -> None:
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        if self.is_open:  # type: ignore[has-type]
            raise SerialException("Port is already open.")
        self.logger = None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(POLL_TIMEOUT)
        try:
            sock.connect(self.portstr)
        except OSError as err:
            sock.close()
            raise SerialException(f"Could not open port {self.portstr}: {err}") from None
        sock.setblocking(False)
        self._socket = sock
        self._reconfigure_port()
        self.is_open = True


@target_factory.reg_resource
@attr.s(eq=False)
class UnixSerialPort(Resource):  # type: ignore[misc]
    """A UART reached through a Unix socket at `path`."""

    path = attr.ib(validator=attr.validators.instance_of(str))
    speed = attr.ib(default=115200, validator=attr.validators.instance_of(int))


@target_factory.reg_driver
@attr.s(eq=False)
class UnixSerialDriver(SerialDriver):  # type: ignore[misc]
    """labgrid's SerialDriver on a UnixSerialPort."""

    bindings = {"port": "UnixSerialPort"}  # noqa: RUF012 (labgrid's attrs class field)

    def __attrs_post_init__(self) -> None:
        super(SerialDriver, self).__attrs_post_init__()  # SerialDriver's own picks a port type
        self.serial = UnixSocketSerial()
        self.status = 0

    def on_activate(self) -> None:
        self.serial.port = self.port.path
        self.open()

    def get_export_vars(self) -> dict[str, str]:
        return {"path": self.port.path, "speed": str(self.port.speed)}
