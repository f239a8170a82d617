def greet(name):
    """Return a greeting for name, e.g. "Hello, Ada!"."""
    return f"Hello, {name}!"
