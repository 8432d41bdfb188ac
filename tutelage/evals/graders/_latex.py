"""LaTeX answers of MATH: the last ``\\boxed{}`` of a solution and the Hendrycks et al. normalisation."""

from __future__ import annotations

import re

__all__ = ["last_boxed", "strip_answer"]

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_TEXT = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox)\{([^{}]*)\}")


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` or ``\\fbox{...}`` (balanced braces), else None.

    ``\\boxed 5`` (no braces) gives ``5``, as in the MATH reference code.
    """
    start = max(text.rfind(cmd) for cmd in _BOX_COMMANDS)
    if start < 0:
        return None
    rest = text[start:]
    rest = rest[len("\\fbox") :] if rest.startswith("\\fbox") else rest[len("\\boxed") :]
    if rest.startswith(" "):
        return rest.strip().split("$")[0].strip() or None
    if not rest.startswith("{"):
        return None
    depth = 0
    for i, ch in enumerate(rest):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return rest[1:i]
    return None


def _fix_fracs(text: str) -> str:
    r"""``\frac12`` -> ``\frac{1}{2}``, ``\frac1{72}`` -> ``\frac{1}{72}``."""
    head, *parts = text.split("\\frac")
    out = head
    for part in parts:
        out += "\\frac"
        if part.startswith("{") or len(part) < 2:
            out += part
            continue
        a, b, post = part[0], part[1], part[2:]
        out += "{" + a + "}" + (b + post if b == "{" else "{" + b + "}" + post)
    return out


def _fix_a_slash_b(text: str) -> str:
    r"""``3/4`` -> ``\frac{3}{4}`` when both sides are integers."""
    match = re.fullmatch(r"(-?\d+)/(\d+)", text)
    return f"\\frac{{{match.group(1)}}}{{{match.group(2)}}}" if match else text


def _fix_sqrt(text: str) -> str:
    r"""``\sqrt3`` -> ``\sqrt{3}``."""
    return re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", text)


def strip_answer(text: str) -> str:
    """The MATH reference normalisation (Hendrycks et al. 2021, ``is_equiv``), made total.

    Drops line breaks, ``\\!``, ``\\left``/``\\right``, degrees, dollars, percent signs, spaces and a
    trailing ``\\text{ unit}``; ``dfrac``/``tfrac`` become ``frac``; ``.5`` becomes ``0.5`` and ``0.5``
    becomes ``\\frac{1}{2}``; a short ``x =`` prefix is dropped; ``\\text{...}`` keeps its words.
    """
    s = text.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "")
    s = s.replace("\\$", "").replace("$", "")
    if "\\text{ " in s:  # the reference drops a unit written on the right as "\text{ cm}"
        s = s.split("\\text{ ")[0]
    s = s.replace("\\%", "").replace("%", "")
    s = _TEXT.sub(r"\1", s)
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s.startswith("."):
        s = "0" + s
    sides = s.split("=")
    if len(sides) == 2 and len(sides[0].strip()) <= 2:
        s = sides[1]
    s = _fix_sqrt(s).replace(" ", "")
    s = _fix_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _fix_a_slash_b(s)
