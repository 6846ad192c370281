"""comms: personalized collections communications from one portfolio snapshot."""

__version__ = "0.1.0"
