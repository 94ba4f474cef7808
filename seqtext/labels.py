"""A classifier's label names, in id order: what every checkpoint saves beside its weights (labels.json).

Its own module, with nothing heavy imported, so that loading and serving a model never imports ``datasets``
or pandas (seqtext/data.py reads data; this only names labels).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from seqtext.errors import DataError


@dataclass(frozen=True)
class LabelMap:
    """Label names in id order. Built from the training split and saved with every model. ``numbered``:
    the names were given (``data.label_names``) for data labelled 0, 1, 2, ...: label "1" reads as names[1]."""

    names: tuple[str, ...]
    numbered: bool = False

    def __post_init__(self):
        object.__setattr__(self, "_ids", {name: i for i, name in enumerate(self.names)})
        if len(self._ids) != len(self.names):
            raise DataError(f"label names must be unique: {list(self.names)}")

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> LabelMap:
        """Sorted distinct labels; numerically when every label is an integer ("2" before "10")."""
        distinct = set(labels)
        numeric = all(re.fullmatch(r"-?\d+", name) for name in distinct)
        return cls(tuple(sorted(distinct, key=int if numeric else None)))

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: str) -> bool:
        return self._find(name) is not None

    def id(self, name: str) -> int:
        found = self._find(name)
        if found is None:
            raise KeyError(name)
        return found

    def _find(self, name: str) -> int | None:
        if name in self._ids:
            return self._ids[name]
        if self.numbered and re.fullmatch(r"\d+", name) and int(name) < len(self.names):
            return int(name)
        return None

    def save(self, path: str | Path) -> None:
        saved = {"names": list(self.names), **({"numbered": True} if self.numbered else {})}
        Path(path).write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path, text: str | None = None) -> LabelMap:
        """The label map saved at ``path``. ``text`` is that file's content when the caller has read it
        already: a checkpoint reads its files itself, within limits (seqtext/checkpoint.py)."""
        try:
            saved = json.loads(text if text is not None else Path(path).read_text(encoding="utf-8"))
            names, numbered = saved["names"], saved.get("numbered", False)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
            raise DataError(f"{path}: not a label file ({err.__class__.__name__}: {err})") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DataError(f"{path}: 'names' must be a list of strings")
        if not isinstance(numbered, bool):
            raise DataError(f"{path}: 'numbered' must be true or false")
        return cls(tuple(names), numbered)
