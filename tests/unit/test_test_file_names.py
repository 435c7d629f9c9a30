"""The test directories are not packages, so pytest imports each test file by
its base name: two files with the same name break the whole run's collection
("import file mismatch"). This keeps them unique."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_files_share_a_name():
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
