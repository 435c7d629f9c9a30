"""Port reservations: exclusive across processes, free on 127.0.0.1."""

import multiprocessing
import socket

from harness.vm import ports


def hold_in_child(lock_dir, port, held, release):
    reservation = ports.try_reserve(port, lock_dir)
    held.set() if reservation else None
    release.wait(10)


def test_a_reserved_port_cannot_be_reserved_by_another_process(tmp_path):
    port = ports.free_port()
    held, release = multiprocessing.Event(), multiprocessing.Event()
    child = multiprocessing.Process(target=hold_in_child, args=(tmp_path, port, held, release))
    child.start()
    assert held.wait(10)
    assert ports.try_reserve(port, tmp_path) is None
    release.set()
    child.join()
    again = ports.try_reserve(port, tmp_path)
    assert again is not None
    again.release()


def test_many_reservations_are_distinct_and_bindable(tmp_path):
    reservations = [ports.reserve_port(tmp_path) for _ in range(40)]
    assert len({r.port for r in reservations}) == 40
    for r in reservations:
        with socket.socket() as s:
            s.bind(("127.0.0.1", r.port))
        r.release()
