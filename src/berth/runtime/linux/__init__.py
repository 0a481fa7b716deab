"""Linux primitives the runtime needs, as thin ctypes wrappers (Python 3.11 lacks most of them)."""
