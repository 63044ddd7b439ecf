"""One registry mechanism for everything statrepro looks up by name: engine kinds, harnesses, benchmarks.

A registry maps names to one instance of each registered class. Its built-in classes and its plugins are
named the same way, as ``"module:Class"`` references; plugins come from the Python entry points of the
registry's group (as pytest and inspect_ai take theirs)::

    # a plugin's pyproject.toml
    [project.entry-points."statrepro.harnesses"]
    my-harness = "my_package.adapter:MyHarness"

Nothing is imported until the first lookup, so ``statrepro --help`` stays fast. The entry point's name must be
the class's ``name``, the name environment files use. A registry is a mutable mapping so that a test can stand
a double in for one name (``monkeypatch.setitem(HARNESSES, "lm-eval", Stub())``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Generic, TypeVar

from .errors import InputError, did_you_mean

T = TypeVar("T")


class Registry(MutableMapping[str, T], Generic[T]):
    """Name -> instance, filled on first use from ``builtins`` and the entry points of ``group``."""

    def __init__(self, what: str, *, group: str, key: str, builtins: tuple[str, ...], contract: str | None = None) -> None:
        self.what = what  # "engine kind": how errors name an entry
        self.group = group  # the entry-point group plugins register under
        self.key = key  # the environment-file key that takes these names, for errors
        self._builtins = builtins
        # "module:Class" of the Protocol a plugin implements: a plugin lacking one of its members is refused on
        # load, in one line, rather than failing with an AttributeError in the middle of a run.
        self._contract = contract
        self._entries: dict[str, T] | None = None

    def get_or_fail(self, name: str) -> T:
        """The entry registered as ``name``; an InputError naming the nearest one otherwise."""
        if name not in self:
            raise InputError(f"unknown {self.what} {name!r}{did_you_mean(name, self)}", key=self.key)
        return self[name]

    def _loaded(self) -> dict[str, T]:
        if self._entries is None:
            entries: dict[str, T] = {}
            for reference in self._builtins:
                instance = _instantiate(_resolve(reference))
                entries[instance.name] = instance
            for entry_point in _entry_points(self.group):
                try:
                    loaded = entry_point.load()
                except Exception as error:  # a broken plugin: say which, whatever it raised
                    raise InputError(
                        f"cannot load {self.what} plugin {entry_point.name!r} ({entry_point.value}, entry point group "
                        f"{self.group!r}): {type(error).__name__}: {error}"
                    ) from None
                instance = _instantiate(loaded)
                if getattr(instance, "name", None) != entry_point.name:
                    raise InputError(
                        f"{self.what} plugin {entry_point.value} is registered as {entry_point.name!r} but its name is "
                        f"{getattr(instance, 'name', None)!r} (entry point group {self.group!r})"
                    )
                if entry_point.name in entries:
                    raise InputError(
                        f"{self.what} plugin {entry_point.value} takes the name {entry_point.name!r}, which "
                        f"{type(entries[entry_point.name]).__module__} already has (entry point group {self.group!r})"
                    )
                missing = _missing_members(instance, self._contract)
                if missing:
                    raise InputError(
                        f"{self.what} plugin {entry_point.value} lacks {', '.join(missing)} of the contract "
                        f"{self._contract} (subclass it to take its defaults; entry point group {self.group!r})"
                    )
                entries[entry_point.name] = instance
            self._entries = entries
        return self._entries

    def __getitem__(self, name: str) -> T:
        return self._loaded()[name]

    def __setitem__(self, name: str, instance: T) -> None:
        self._loaded()[name] = instance

    def __delitem__(self, name: str) -> None:
        del self._loaded()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def __repr__(self) -> str:
        names = "not loaded yet" if self._entries is None else ", ".join(self._entries)
        return f"Registry({self.what!r}, group={self.group!r}: {names})"


def _resolve(reference: str):
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _missing_members(instance, contract: str | None) -> list[str]:
    """The public attributes and methods of the Protocol ``contract`` that ``instance`` lacks."""
    if contract is None:
        return []
    protocol = _resolve(contract)
    members = {name for name in (*vars(protocol), *getattr(protocol, "__annotations__", {})) if not name.startswith("_")}
    return sorted(name for name in members if not hasattr(instance, name))


def _instantiate(loaded):
    """An entry point names a class (or, equally, an instance of one); the registry holds one instance."""
    return loaded() if isinstance(loaded, type) else loaded


def _entry_points(group: str):
    from importlib.metadata import entry_points

    return entry_points(group=group)
