from main import count_words


def test_counts_case_insensitively():
    assert count_words("the cat and The hat") == {"the": 2, "cat": 1, "and": 1, "hat": 1}


def test_empty_text():
    assert count_words("   ") == {}
