"""``Field``: the app's text input. It leaves `?` to the app's help key unless the user is writing text in it."""

from __future__ import annotations

from textual.widgets import Input


class Field(Input):
    """An ``Input`` where `?` opens the help when the field is empty or holds a number (a `?` is never part of a
    number), and is typed as a character while the user writes text. Number fields carry the ``-numeric``
    class (or ``type="integer"/"number"``)."""

    def writing_text(self) -> bool:
        return bool(self.value) and self.type == "text" and not self.has_class("-numeric")

    def check_consume_key(self, key: str, character: str | None) -> bool:
        # Not consuming `?` keeps the app's help binding active while this field has focus.
        if character == "?" and not self.writing_text():
            return False
        return super().check_consume_key(key, character)
