"""A labgrid console driver (SerialDriver on a USB-serial adapter or a
network serial port) as the byte stream the harness's Console and GuestShell
read in a thread: labgrid's public read() is a logged step, and labgrid's step
stack belongs to the main thread, so the reader thread uses the driver's raw
read underneath it."""

from __future__ import annotations

import threading
from typing import Any

from pexpect import TIMEOUT
from serial import SerialException

POLL_SECONDS = 0.2  # how long one read waits: bounds how fast close() is noticed


class SerialStream:
    """recv/sendall/shutdown/close over a labgrid ConsoleProtocol driver.
    recv() returns b"" (end of stream) once closed, or when the line goes away
    (a network serial port whose far end closed)."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self._closed = threading.Event()
        self._write_lock = threading.Lock()

    def recv(self, size: int, /) -> bytes:
        while not self._closed.is_set():
            try:
                data = bytes(self.driver._read(size=1, timeout=POLL_SECONDS, max_size=size))
                return data + self._drain(size - len(data))
            except TIMEOUT:
                continue
            except (SerialException, OSError, TypeError, AttributeError):
                break  # the port closed under us
        return b""

    def _drain(self, size: int) -> bytes:
        """What else has arrived, without waiting (a network port reports one
        byte waiting however many there are)."""
        port = getattr(self.driver, "serial", None)
        if port is None or size <= 0:
            return b""
        port.timeout = 0
        return bytes(port.read(size))

    def sendall(self, data: bytes, /) -> None:
        if self._closed.is_set():
            raise OSError("the serial line is closed")
        with self._write_lock:
            try:
                self.driver._write(data)
            except (SerialException, AttributeError) as err:
                raise OSError(f"serial line: {err}") from None

    def shutdown(self, how: int, /) -> None:
        self._closed.set()

    def close(self) -> None:
        self._closed.set()


class SharedLine:
    """One serial line read by two parties: the console log and the test
    shell, where a board has a single UART (kubesolo.testshell=ttyS0). One
    thread reads the line; each reader made by `reader()` gets every byte
    from its making on, and writes go to the line."""

    def __init__(self, line: Any) -> None:
        self._line = line
        self._readers: list[_Reader] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._pump, name="shared-line", daemon=True).start()

    def reader(self) -> _Reader:
        with self._lock:
            reader = _Reader(self)
            self._readers.append(reader)
            return reader

    def _pump(self) -> None:
        while chunk := self._line.recv(1 << 16):
            with self._lock:
                for reader in self._readers:
                    reader.put(chunk)
        with self._lock:
            for reader in self._readers:
                reader.put(b"")

    def sendall(self, data: bytes, /) -> None:
        self._line.sendall(data)

    def close(self) -> None:
        self._line.close()


class _Reader:
    """One party's end of a SharedLine (the ByteStream the Console or the
    GuestShell reads). Closing one party's end closes the line: both parties
    are done with a board that powers off."""

    def __init__(self, line: SharedLine) -> None:
        self._line = line
        self._chunks: list[bytes] = []
        self._ended = False
        self._cond = threading.Condition()

    def put(self, chunk: bytes) -> None:
        with self._cond:
            if chunk:
                self._chunks.append(chunk)
            else:
                self._ended = True
            self._cond.notify_all()

    def recv(self, size: int, /) -> bytes:
        with self._cond:
            self._cond.wait_for(lambda: self._chunks or self._ended)
            if not self._chunks:
                return b""
            data = b"".join(self._chunks)
            self._chunks = [data[size:]] if len(data) > size else []
            return data[:size]

    def sendall(self, data: bytes, /) -> None:
        self._line.sendall(data)

    def shutdown(self, how: int, /) -> None:
        self._line.close()
        self.put(b"")

    def close(self) -> None:
        self.shutdown(0)
