def count_words(text):
    """Return {word: count} for the lowercased words of text."""
    counts = {}
    for word in text.lower().split():
        counts[word] = counts.get(word, 0) + 1
    return counts
