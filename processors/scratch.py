"""The worker's scratch folder running out of space: a reason a job fails, never a crash of the worker."""

from __future__ import annotations

import errno

_FULL = {errno.ENOSPC, errno.EDQUOT}


def out_of_space(error: BaseException) -> bool:
    """Whether `error`, or any error it was raised from, is a full disk or an exceeded quota."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _FULL:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def reason(where: str) -> str:
    return f"the worker's scratch folder is full ({where}); free space there or submit the job again later"
