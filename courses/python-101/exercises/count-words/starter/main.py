def count_words(text):
    """Return {word: count} for the lowercased words of text."""
    counts = {}
    return counts
