"""qcc's version, in a module of its own so that any module can read it without importing
the `qcc` package's facade (which imports the API, and with it most of qcc)."""

__version__ = "0.1.0"
