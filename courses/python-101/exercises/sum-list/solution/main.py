def sum_list(numbers):
    """Return the sum of numbers (without the built-in sum)."""
    total = 0
    for number in numbers:
        total += number
    return total
