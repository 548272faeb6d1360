"""Problems found while validating: every one a line, as ``PATH: message``; warnings apart."""

from __future__ import annotations

from mailintake.errors import ConfigError


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.warnings: list[str] = []

    def add(self, path: str, message: str) -> None:
        line = f"{path}: {message}"
        if line not in self.items:
            self.items.append(line)

    def warn(self, path: str, message: str) -> None:
        """Something that does not make the document invalid, but that users should know."""
        line = f"{path}: {message}"
        if line not in self.warnings:
            self.warnings.append(line)

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


class ProblemsAt(Problems):
    """Problems whose paths are relative to an item's label."""

    def __init__(self, parent: Problems, label: str) -> None:
        super().__init__()
        self._parent = parent
        self._label = label

    def add(self, path: str, message: str) -> None:
        self._parent.add(f"{self._label}.{path}" if path else self._label, message)

    def warn(self, path: str, message: str) -> None:
        self._parent.warn(f"{self._label}.{path}" if path else self._label, message)
