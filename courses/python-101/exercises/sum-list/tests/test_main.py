from main import sum_list


def test_empty_list_is_zero():
    assert sum_list([]) == 0


def test_a_few_numbers():
    assert sum_list([1, 2, 3, 4]) == 10


def test_negative_numbers():
    assert sum_list([-5, 5, -1]) == -1
