"""Copy to the clipboard, in one place: OSC 52 through Textual, and a notification.

OSC 52 asks the terminal to set the system clipboard, so a copy works over SSH and
inside tmux (with ``set-clipboard on``); terminals that ignore it (macOS Terminal) leave
the clipboard as it was, which is why the notification names what was copied rather
than promising it arrived.
"""

from __future__ import annotations

from textual.app import App


def copy_text(app: App[object] | App[None], text: str, what: str = "snippet") -> None:
    """Put ``text`` on the clipboard (``App.copy_to_clipboard`` writes the OSC 52
    sequence) and tell the user, e.g. "copied the SQL (3 lines)"."""
    app.copy_to_clipboard(text)
    lines = text.count("\n") + 1 if text else 0
    app.notify(f"copied {what} ({lines} line{'s' if lines != 1 else ''})", timeout=3)


__all__ = ["copy_text"]
