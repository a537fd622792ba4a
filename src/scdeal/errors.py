"""User-facing errors: raised for bad input, printed without a traceback by the command line."""

__all__ = ["InputError", "InputErrors"]


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
