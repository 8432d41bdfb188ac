"""A DSPy adapter that speaks plain chat turns, the only format a 135M model follows.

Instruction (plus any ``strategies`` input) goes in the system message, each demo is a user turn
with its input and an assistant turn with its answer, and the reply is the answer itself. No field
markers, no JSON: measured on Banking77 with SmolLM2, DSPy's ChatAdapter markers give 0/60 while
plain chat turns with 8 retrieved gold examples give 42/60.
"""

from __future__ import annotations

from typing import Any

import dspy
from dspy.utils.exceptions import AdapterParseError

__all__ = ["SYSTEM_FIELDS", "PlainChatAdapter"]

# Input fields rendered into the system message rather than the user turn.
SYSTEM_FIELDS = ("strategies",)


def _user_content(signature: type[dspy.Signature], values: dict[str, Any]) -> str:
    names = [n for n in signature.input_fields if n not in SYSTEM_FIELDS and values.get(n) is not None]
    if len(names) == 1:
        return str(values[names[0]])
    return "\n".join(f"{n}: {values[n]}" for n in names)


def _assistant_content(signature: type[dspy.Signature], values: dict[str, Any]) -> str:
    return "\n".join(str(values[n]) for n in signature.output_fields if values.get(n) is not None)


class PlainChatAdapter(dspy.Adapter):
    """Format a signature as system + demo turns + user turn; parse the whole reply as the output.

    The signature must have exactly one output field.
    """

    def format(
        self,
        signature: type[dspy.Signature],
        demos: list[dict[str, Any]],
        inputs: dict[str, Any],
    ) -> list[dict[str, Any]]:
        system = signature.instructions.strip()
        strategies = inputs.get("strategies")
        if strategies:
            system += "\n\nUseful strategies:\n" + str(strategies).strip()
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for demo in demos:
            values = dict(demo)
            user, answer = _user_content(signature, values), _assistant_content(signature, values)
            if user and answer:
                messages.append({"role": "user", "content": user})
                messages.append({"role": "assistant", "content": answer})
        messages.append({"role": "user", "content": _user_content(signature, inputs)})
        return messages

    def parse(self, signature: type[dspy.Signature], completion: str) -> dict[str, Any]:
        outputs = list(signature.output_fields)
        if len(outputs) != 1:
            raise AdapterParseError(
                adapter_name=type(self).__name__,
                signature=signature,
                lm_response=completion,
                message="PlainChatAdapter needs a signature with exactly one output field",
            )
        text = completion.strip()
        if not text:
            raise AdapterParseError(
                adapter_name=type(self).__name__,
                signature=signature,
                lm_response=completion,
                message="the model returned an empty reply",
            )
        return {outputs[0]: text}
