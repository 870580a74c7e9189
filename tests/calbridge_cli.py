"""Running the installed ``calbridge`` console script in a subprocess, as a person would."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple
from unittest import mock


class CliResult(NamedTuple):
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


Cli = Callable[..., CliResult]

CALBRIDGE = shutil.which("calbridge", path=str(Path(sys.executable).parent)) or "calbridge"


def make_cli(data_dir: Path, database_url: str | None) -> Cli:
    """Run the installed ``calbridge`` console script in a subprocess against one database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE_")}
    env |= {"CALBRIDGE_DATA_DIR": str(data_dir), "COLUMNS": "200", "NO_COLOR": "1"}
    if database_url is not None:
        env["CALBRIDGE_DATABASE_URL"] = database_url

    def run(*args: str, input: str | None = None, timeout: float = 60) -> CliResult:
        done = subprocess.run(
            [CALBRIDGE, *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    return run


def make_inprocess_cli(
    data_dir: Path, database_url: str | None, extra_env: dict[str, str] | None = None
) -> Cli:
    """Like :func:`make_cli`, but calls ``calbridge.cli.main.main`` in this process.

    Same argument parsing, error reporting and exit codes, without a process start-up (~1 s);
    for integration tests. tests/e2e runs the real console script instead. ``extra_env`` adds
    variables (``TTY_COMPATIBLE=1`` makes rich print as on a terminal).
    """
    from calbridge.cli.main import main

    env = {"CALBRIDGE_DATA_DIR": str(data_dir), "COLUMNS": "200", "NO_COLOR": "1"}
    env |= extra_env or {}
    if database_url is not None:
        env["CALBRIDGE_DATABASE_URL"] = database_url

    def run(*args: str, input: str | None = None, timeout: float = 60) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        cleared = {k: "" for k in os.environ if k.startswith("CALBRIDGE_")}
        with (
            mock.patch.dict(os.environ, cleared | env),
            mock.patch.object(sys, "argv", ["calbridge", *args]),
            mock.patch.object(sys, "stdin", io.StringIO(input or "")),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            for key in cleared.keys() - env.keys():
                del os.environ[key]
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


def sync_one(cli: Cli) -> dict[str, object]:
    """``calbridge sync --json`` with one calendar linked: its report (any exit code; never a
    traceback)."""
    done = cli("sync", "--json")
    assert "Traceback" not in done.err, done.err
    [report] = json.loads(done.out)
    return dict(report)
