"""Agents: the students (plain, tool-using, your own agent), the teacher, their DSPy signatures and
adapter, and the cost ledger their LM calls record into (the LM clients live in ``tutelage.backends``)."""

from tutelage.agents.adapter import PlainChatAdapter
from tutelage.agents.agent import AgentStudent
from tutelage.agents.base import STUDENT_FORMATS, StudentProtocol, load_student
from tutelage.agents.build import build_student
from tutelage.agents.interface import Agent, Lessons, agent_base_url, agent_lm
from tutelage.agents.ledger import Ledger
from tutelage.agents.react import ReActStudent
from tutelage.agents.student import StudentProgram, make_solver
from tutelage.agents.teacher import Diagnosis, Teacher, lessons_from, parse_reply

__all__ = [
    "STUDENT_FORMATS",
    "Agent",
    "AgentStudent",
    "Diagnosis",
    "Ledger",
    "Lessons",
    "PlainChatAdapter",
    "ReActStudent",
    "StudentProgram",
    "StudentProtocol",
    "Teacher",
    "agent_base_url",
    "agent_lm",
    "build_student",
    "lessons_from",
    "load_student",
    "make_solver",
    "parse_reply",
]
