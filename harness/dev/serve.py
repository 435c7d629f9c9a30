"""The dev VM's server process: `python -m harness.dev.serve NAME`, started by
`kubesolo-harness dev` (docs/architecture.md "Developer tools")."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

from harness.artefact import Image
from harness.dev.server import DevServer
from harness.dev.session import Session
from harness.dev.watch import watch


def main(name: str) -> int:
    session = Session(name)
    session.pid_file.write_text(str(os.getpid()))
    try:
        settings = session.settings()
        server = DevServer(session, Image(Path(settings.image)))
        server.serve(watch if settings.watch else None)
    except Exception as err:  # the command shows it as one line, then removes the session
        session.error_file.write_text(f"{err}\n")
        traceback.print_exc()
        return 1
    session.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
