"""The labgrid env files of fixtures/labgrid, with their media and UART
sockets in a test's own directory, so that a board runs beside any other."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "labgrid"


def board_env_file(tmp_path: Path, name: str) -> Path:
    text = (FIXTURES / f"{name}.yaml").read_text()
    text = text.replace("$BASE/qemu-board-power", str(FIXTURES / "qemu-board-power"))
    text = text.replace(f"$BASE/../../artifacts/{name}", str(tmp_path / "board"))
    env_file = tmp_path / "board.yaml"
    env_file.write_text(text)
    return env_file
