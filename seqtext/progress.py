"""Progress bars that show in a terminal and in a Jupyter notebook, and stay off in logs and pipes."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def in_notebook() -> bool:
    """True inside a Jupyter (IPython kernel) session, where stderr is not a terminal but bars still render."""
    shell = sys.modules.get("IPython")
    ipython = shell.get_ipython() if shell is not None and hasattr(shell, "get_ipython") else None
    return ipython is not None and hasattr(ipython, "kernel")


def progress_bar(total: int, initial: int = 0, show: bool | None = None, unit: str = "step") -> tqdm:
    """A tqdm bar on stderr; ``show`` None means: when stderr is a terminal or this is a notebook."""
    if show is None:
        show = sys.stderr.isatty() or in_notebook()
    return tqdm(total=total, initial=initial, disable=not show, file=sys.stderr, dynamic_ncols=True, unit=unit)
