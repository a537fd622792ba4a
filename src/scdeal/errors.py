"""User-facing errors: raised for bad input, printed without a traceback by the command line."""

__all__ = ["EXIT_DATA_ERROR", "InputError", "InputErrors"]

# sysexits EX_DATAERR, the exit status of a step whose input is wrong (not its code): Nextflow (conf/base.config)
# and the local runner stop only the pairs that read that input, where any other failure stops the run
EXIT_DATA_ERROR = 65


class InputError(Exception):
    """A problem with the user's input that the user can fix; the message says where and how."""


class InputErrors(InputError):
    """Several input problems found at once (validation reports them all together)."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(f"  - {p}" for p in self.problems))

    def __str__(self) -> str:
        n = len(self.problems)
        return f"{n} problem{'s' if n != 1 else ''} found in the input:\n" + super().__str__()
