"""The identity of user code: what a registered feature or strategy from outside btlab hashes to.

SPEC §9: a feature or strategy registered from user code carries a hash of its code, which joins
the config hash, so editing the code never returns a stale cached or stored run. Built-ins
(anything defined in the btlab package) carry none: their code is the engine version's.

`UserCode(roots)` hashes its roots (the registered function or class, and what they were
registered with) and, recursively, what they reach in their own module: the functions and
classes their code names (global names, closure cells, a class's members and same-module bases)
and the plain constants it reads (numbers, strings, tuples of them). A function counts by its
bytecode and constants, and by its source text where `inspect.getsource` finds it (a module
file, an IPython cell); code typed into a plain REPL or `exec`'d from a string has no source,
so there it counts by its bytecode alone. A pydantic model counts by its fields as well. Code
in OTHER modules (your own libraries, numpy) is not followed: it counts by name only.

The digest is recomputed whenever asked for (a notebook may redefine a helper without
re-registering the strategy that calls it); each function's text is read once per code object,
so a file edited on disk but not re-imported does not change the digest of the code running.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import warnings
import weakref
from collections.abc import Iterator, MutableMapping
from typing import Any, TypeVar

from .hashing import canonical_json, sha256_hex

__all__ = ["RegistrationWarning", "UserCode", "is_builtin", "register", "user_code"]

T = TypeVar("T")


class RegistrationWarning(UserWarning):
    """A registration from user code replaced an entry of the same name with different code
    (a notebook cell run again after an edit): later runs use the new code."""


def is_builtin(module: str | None) -> bool:
    """Whether `module` (an object's `__module__`) is btlab itself."""
    return module is not None and (module == "btlab" or module.startswith("btlab."))


#: Each function's text, read once per code object (see the module docstring).
_TEXTS: weakref.WeakKeyDictionary[types.CodeType, str] = weakref.WeakKeyDictionary()
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_SIMPLE = (int, float, complex, str, bytes, bool, type(None))


def _constant(value: Any) -> str | None:
    """The text of a plain constant (numbers, strings, tuples and frozensets of them), else None."""
    if isinstance(value, _SIMPLE):
        return repr(value)
    if isinstance(value, tuple | frozenset):
        items = [_constant(v) for v in value]
        if any(i is None for i in items):
            return None
        texts = [i for i in items if i is not None]
        if isinstance(value, frozenset):  # set order follows string hashing, which varies
            texts.sort()
        return f"{type(value).__name__}({', '.join(texts)})"
    return None


def _code_text(code: types.CodeType) -> str:
    """A code object as text: bytecode, constants (nested code too), names; no line numbers."""
    consts = [
        _code_text(c) if isinstance(c, types.CodeType) else (_constant(c) or type(c).__name__)
        for c in code.co_consts
    ]
    return canonical_json(
        [code.co_name, code.co_code.hex(), consts, code.co_names, code.co_varnames,
         code.co_freevars, code.co_argcount, code.co_kwonlyargcount, code.co_flags]
    )  # fmt: skip


def _function_text(fn: types.FunctionType) -> str:
    code = fn.__code__
    text = _TEXTS.get(code)
    if text is None:
        try:
            source = inspect.getsource(fn)
        except Exception:  # no source (a REPL, an exec'd string), or none inspect can cut out
            source = ""
        text = _code_text(code) + "\n" + source
        _TEXTS[code] = text
    return text


def _names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def _function_of(value: Any) -> types.FunctionType | None:
    """The plain function behind a class member (a method, classmethod, staticmethod)."""
    inner = getattr(value, "__func__", value)  # classmethod / staticmethod / bound method
    return inner if isinstance(inner, types.FunctionType) else None


class _Walk:
    """The objects reachable from the roots in their own modules, each described once."""

    def __init__(self) -> None:
        self.parts: list[Any] = []
        self._seen: set[int] = set()

    def add(self, obj: Any) -> None:
        if id(obj) in self._seen:
            return
        self._seen.add(id(obj))
        if isinstance(obj, type):
            self._class(obj)
        elif isinstance(obj, types.FunctionType):
            self.parts.append(["def", obj.__qualname__, _function_text(obj), self._refs(obj)])
        else:
            text = _constant(obj)
            self.parts.append(["value", text if text is not None else _ADDRESS.sub("", repr(obj))])

    def _follow(self, value: Any, module: str) -> bool:
        """Walk `value` if it is a function or class of `module`; True if it was one."""
        if isinstance(value, type | types.FunctionType) and value.__module__ == module:
            self.add(value)
            return True
        return False

    def _refs(self, fn: types.FunctionType) -> list[str]:
        """Follow what `fn` names in its module; the plain constants it reads, as text."""
        constants: list[str] = []
        module = fn.__module__
        for name in dict.fromkeys(_names(fn.__code__)):
            if name not in fn.__globals__:
                continue
            value = fn.__globals__[name]
            if not self._follow(value, module) and (text := _constant(value)) is not None:
                constants.append(f"{name}={text}")
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if not self._follow(value, module) and (text := _constant(value)) is not None:
                constants.append(f"{name}={text}")
        return constants

    def _class(self, cls: type) -> None:
        module = cls.__module__
        bases = []
        for base in cls.__bases__:
            self._follow(base, module)
            bases.append(base.__qualname__ if base.__module__ == module else
                         f"{base.__module__}.{base.__qualname__}")  # fmt: skip
        members: list[Any] = []
        fields = getattr(cls, "__pydantic_fields__", None)
        if isinstance(fields, dict):  # a pydantic model: its fields, constraints and defaults
            members += [[n, _ADDRESS.sub("", repr(info))] for n, info in fields.items()]
        for key, value in vars(cls).items():
            fn = _function_of(value)
            # Python's and pydantic's own entries (`__module__`, `__hash__`...) are not the
            # class's code; its own dunder methods (`__init__`, `__call__`) are
            if key == "_abc_impl" or (
                key.startswith("__") and (fn is None or fn.__module__ != module)
            ):
                continue
            if fn is not None:
                members.append([key, type(value).__name__, _function_text(fn), self._refs(fn)])
            elif isinstance(value, type):
                self._follow(value, module)
                members.append([key, f"class {value.__module__}.{value.__qualname__}"])
            else:
                text = _constant(value)
                members.append([key, text if text is not None else _ADDRESS.sub("", repr(value))])
        self.parts.append(["class", cls.__qualname__, bases, members])


class UserCode:
    """The code a registry entry from user code runs: its roots and what they reach."""

    def __init__(self, *roots: Any) -> None:
        self.roots = roots

    def digest(self) -> str:
        """sha256 of the code as it is now (see the module docstring)."""
        walk = _Walk()
        for root in self.roots:
            walk.add(root)
        return sha256_hex(canonical_json(walk.parts).encode())


def user_code(origin: Any, *roots: Any) -> UserCode | None:
    """The code of an entry registered by `origin` (a function or class) with `roots`; None
    where `origin` is part of btlab (a built-in)."""
    if is_builtin(getattr(origin, "__module__", None)):
        return None
    return UserCode(origin, *roots)


def _user_stacklevel() -> int:
    """The `stacklevel` of the first caller outside btlab, as seen from `register`."""
    frame: types.FrameType | None = sys._getframe(2)
    level = 2
    while frame is not None and is_builtin(frame.f_globals.get("__name__")):
        frame, level = frame.f_back, level + 1  # a frame of btlab's: look further up
    return level


def register(
    kind: str,
    name: str,
    entry: T,
    code: UserCode | None,
    registry: MutableMapping[str, T],
    codes: MutableMapping[str, UserCode],
) -> None:
    """Put `entry` in `registry` as `name` (`codes` holds the user code of the entries).

    A name free: registered. A built-in's name: a ValueError. A user entry's name: replaced,
    silently where the code is the same, else with a RegistrationWarning (a notebook re-running
    an edited cell), which points at the user's line that registered it.
    """
    if name in registry:
        held = codes.get(name)
        if held is None or code is None:
            raise ValueError(
                f"{kind} {name!r} is already registered"
                + (" (a built-in): register yours under another name" if held is None else "")
            )
        if held.digest() != code.digest():
            warnings.warn(
                RegistrationWarning(
                    f"{kind} {name!r} registered again with different code: it replaces the "
                    "earlier one (runs of the earlier code keep their own config hash)"
                ),
                stacklevel=_user_stacklevel(),
            )
    registry[name] = entry
    if code is None:
        codes.pop(name, None)
    else:
        codes[name] = code
