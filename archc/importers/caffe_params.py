"""Typed access to a Caffe layer's fields (and its ``*_param`` sub-messages), each mistake located at its value."""

from __future__ import annotations

from archc.importers.problems import Refusal
from archc.importers.prototxt import Field, Message, Value


class LayerParams:
    """A ``layer { ... }`` message, or one of its ``*_param`` sub-messages (empty when absent: every default)."""

    def __init__(self, message: Message, name: str = "", owner: str = "") -> None:
        self.message = message
        found = message.field("name")
        self.name = name or (found.value.text if found is not None and isinstance(found.value, Value) else "")
        self.owner = owner  # the sub-message's name, for messages

    def sub(self, key: str) -> LayerParams:
        found = self.message.message(key)
        return LayerParams(found if found is not None else Message(line=self.message.line, col=self.message.col),
                           self.name, key)

    def where(self, key: str, value: str | None = None) -> tuple[int, int]:
        """Line and column of a field (the one holding ``value`` among repeated ones), else of the message."""
        for f in self.message.fields:
            if f.name == key and (value is None or (isinstance(f.value, Value) and f.value.text == value)):
                return (f.value.line, f.value.col) if isinstance(f.value, Value) else (f.line, f.col)
        return self.message.line, self.message.col

    def has(self, key: str) -> bool:
        return self.message.field(key) is not None

    def _scalar(self, key: str) -> Value | None:
        found = self.message.field(key)
        if found is None:
            return None
        if not isinstance(found.value, Value):
            raise Refusal("E602", f"{self._what(key)} is a message; a value is expected", found.line, found.col)
        return found.value

    def _what(self, key: str) -> str:
        return f"{self.owner}.{key}" if self.owner else key

    def text(self, key: str, default: str | None = None) -> str:
        value = self._scalar(key)
        if value is None:
            if default is None:
                raise Refusal("E602", f"layer {self.name!r} has no {self._what(key)}", self.message.line,
                              self.message.col)
            return default
        return value.text

    def strings(self, key: str) -> list[str]:
        out = []
        for f in self.message.fields:
            if f.name == key:
                out.append(self.text_of(f))
        return out

    def integer(self, key: str, default: int) -> int:
        value = self._scalar(key)
        return default if value is None else self.int_value(value)

    def integers(self, key: str) -> list[int]:
        return [self.int_of(f) for f in self.message.fields if f.name == key]

    def number(self, key: str, default: float) -> float:
        value = self._scalar(key)
        if value is None:
            return default
        try:
            if value.kind != "number":
                raise ValueError
            return float(value.text.rstrip("fF"))
        except ValueError:
            raise Refusal("E602", f"{self._what(key)}: expected a number, found {value.text!r}", value.line,
                          value.col) from None

    def numbers(self, key: str) -> list[float]:
        out = []
        for f in self.message.fields:
            if f.name == key:
                if not isinstance(f.value, Value) or f.value.kind != "number":
                    raise Refusal("E602", f"{self._what(key)}: expected a number", f.line, f.col)
                out.append(float(f.value.text.rstrip("fF")))
        return out

    def boolean(self, key: str, default: bool) -> bool:
        value = self._scalar(key)
        if value is None:
            return default
        if value.text in ("true", "True", "t", "1"):
            return True
        if value.text in ("false", "False", "f", "0"):
            return False
        raise Refusal("E602", f"{self._what(key)}: expected true or false, found {value.text!r}", value.line,
                      value.col)

    def enum(self, key: str, default: str, allowed: dict[str, str]) -> str:
        """An enum field by name (or its number, as protobuf accepts), mapped through ``allowed``; a known value
        archc cannot follow is E601, anything else E602."""
        value = self._scalar(key)
        if value is None:
            return allowed[default]
        if value.text in allowed:
            return allowed[value.text]
        raise Refusal("E601", f"{self._what(key)}: {value.text} is not supported (supported: "
                              f"{', '.join(k for k in allowed if not k.isdigit())})", value.line, value.col)

    def excluded_from_test(self) -> bool:
        """Whether the layer runs only in the training phase (``include { phase: TRAIN }``)."""
        for rule in self.message.all("include"):
            if isinstance(rule, Message):
                phase = rule.field("phase")
                if phase is not None and isinstance(phase.value, Value) and phase.value.text in ("TRAIN", "0"):
                    return True
        for rule in self.message.all("exclude"):
            if isinstance(rule, Message):
                phase = rule.field("phase")
                if phase is not None and isinstance(phase.value, Value) and phase.value.text in ("TEST", "1"):
                    return True
        return False

    @staticmethod
    def text_of(f: Field) -> str:
        if not isinstance(f.value, Value):
            raise Refusal("E602", f"{f.name} is a message; a value is expected", f.line, f.col)
        return f.value.text

    @staticmethod
    def int_of(f: Field) -> int:
        if not isinstance(f.value, Value):
            raise Refusal("E602", f"{f.name} is a message; an integer is expected", f.line, f.col)
        return LayerParams.int_value(f.value)

    @staticmethod
    def int_value(value: Value | Message) -> int:
        if isinstance(value, Value) and value.kind == "number":
            try:
                return int(value.text)
            except ValueError:
                pass
        line, col = value.line, value.col
        shown = value.text if isinstance(value, Value) else "a message"
        raise Refusal("E602", f"expected an integer, found {shown!r}", line, col)
