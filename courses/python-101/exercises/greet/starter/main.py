def greet(name):
    """Return a greeting for name, e.g. "Hello, Ada!"."""
    # Your code here.
    return ""
