"""A stand-in Mesos master and Marathon speaking their real HTTP APIs (see server.py)."""

from simulator.model import Model
from simulator.server import Simulator, load_model

__all__ = ["Model", "Simulator", "load_model"]
