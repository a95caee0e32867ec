"""A source folder with one planted issue per probe, shared by the demo and CLI tests.

Secret-looking values are assembled at run time, so this file itself holds no secret-like literal.
"""

from __future__ import annotations

from pathlib import Path

FAKE_AWS_KEY = "AKIA" + "EXAMPLE7" * 2
FAKE_PASSWORD = "hunter2" + "hunter2"
LARGE_BYTES = 1_100_000

EXPECTED = [
    ("secrets", "aws-access-key", "app/config.py"),
    ("secrets", "password-assignment", "app/config.py"),
    ("syntax", "syntax-error", "app/broken.py"),
    ("dependencies", "unpinned", "requirements.txt"),
    ("dependencies", "range-only", "requirements.txt"),
    ("missing_tests", "no-test-file", "app/config.py"),
    ("todos", "work-marker", "app/worker.py"),
    ("large_files", "large-file", "data/big.log"),
    ("binary_files", "binary-file", "assets/logo.bin"),
]
"""(probe, kind, path) of every planted issue."""


def plant_folder(root: Path) -> Path:
    """Write the planted folder under ``root`` and return it."""
    files = {
        "app/__init__.py": "",
        "app/config.py": f'AWS_KEY = "{FAKE_AWS_KEY}"\npassword = "{FAKE_PASSWORD}"\nDEBUG = False\n',
        "app/broken.py": "def broken(:\n    return 1\n",
        "app/worker.py": "def work(job):\n    # TODO: retry failed jobs\n    return job\n",
        "tests/test_worker.py": "from app.worker import work\n\ndef test_work():\n    assert work(1) == 1\n",
        "requirements.txt": "requests\nrich==13.7.0\nflask>=2.0  # web\n-r other.txt\n",
        "README.md": "An app.\n",
        ".venv/lib/leak.py": f'KEY = "{FAKE_AWS_KEY}"\n',
        "node_modules/x/index.js": "// TODO: ignored\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "data").mkdir()
    (root / "data" / "big.log").write_text("log line\n" * (LARGE_BYTES // 9 + 1))
    (root / "assets").mkdir()
    (root / "assets" / "logo.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    return root
