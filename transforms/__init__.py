"""Pure transformations into and out of the canonical vitals model.

Nothing in this package does I/O: no sockets, no SQL, no SOAP libraries. A test enforces it.
"""
