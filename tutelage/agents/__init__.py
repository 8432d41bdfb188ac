"""Agents: the student, the teacher, their DSPy signatures and adapter, and the LM clients."""

from tutelage.agents.adapter import PlainChatAdapter
from tutelage.agents.lm import Endpoints, build_lm, check_endpoint, open_endpoints
from tutelage.agents.local import LocalServer, embedded_model_path
from tutelage.agents.student import StudentProgram, make_solver
from tutelage.agents.teacher import Diagnosis, Teacher, lessons_from, parse_reply

__all__ = [
    "Diagnosis",
    "Endpoints",
    "LocalServer",
    "PlainChatAdapter",
    "StudentProgram",
    "Teacher",
    "build_lm",
    "check_endpoint",
    "embedded_model_path",
    "lessons_from",
    "make_solver",
    "open_endpoints",
    "parse_reply",
]
