"""The admin CLI's one kind of failure: a message that says what to do, and an exit status.
`hookflow_cli.main` prints it on stderr, alone, with no traceback."""

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit statuses a script can tell apart (2 is the usage error of the CLI library)."""

    OK = 0
    ERROR = 1
    NOT_FOUND = 3
    AUTH = 4
    UNREACHABLE = 5
    INVALID = 6


class CliError(Exception):
    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
