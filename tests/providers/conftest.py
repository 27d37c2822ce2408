"""Both built-in emulators, each in a real uvicorn of its own (the MTurk sandbox's and the Prolific one's)."""

from tests.prolific.conftest import prolific
from tests.sandbox.conftest import clock, server

__all__ = ["clock", "prolific", "server"]
