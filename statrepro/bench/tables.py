"""What the bench tables share."""

from __future__ import annotations

def mark(value: float, failing: bool, color: bool = True) -> str:
    """A figure to 3 decimals, flagged with '!' (red, with ``color``) when it fails its bound."""
    text = f"{value:.3f}"
    return (f"[red]{text}![/]" if color else f"{text}!") if failing else text
