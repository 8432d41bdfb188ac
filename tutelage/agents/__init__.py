"""Agents: the students (plain and tool-using), the teacher, their DSPy signatures and adapter, the LM
clients and the cost ledger they record into."""

from tutelage.agents.adapter import PlainChatAdapter
from tutelage.agents.build import build_student
from tutelage.agents.ledger import Ledger
from tutelage.agents.lm import Endpoints, build_lm, check_endpoint, open_endpoints
from tutelage.agents.local import LocalServer, embedded_model_path
from tutelage.agents.react import ReActStudent
from tutelage.agents.student import StudentProgram, make_solver
from tutelage.agents.teacher import Diagnosis, Teacher, lessons_from, parse_reply

__all__ = [
    "Diagnosis",
    "Endpoints",
    "Ledger",
    "LocalServer",
    "PlainChatAdapter",
    "ReActStudent",
    "StudentProgram",
    "Teacher",
    "build_lm",
    "build_student",
    "check_endpoint",
    "embedded_model_path",
    "lessons_from",
    "make_solver",
    "open_endpoints",
    "parse_reply",
]
