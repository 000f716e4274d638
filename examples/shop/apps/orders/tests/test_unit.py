"""Unit tests of the orders service (standard library only)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import app  # noqa: E402


class OrdersTest(unittest.TestCase):
    def test_positive_int_accepts_the_range(self) -> None:
        self.assertEqual(app.positive_int(3, "quantity", 100), 3)

    def test_positive_int_refuses_bools_zero_and_too_many(self) -> None:
        for value in (True, 0, 101, "2"):
            with self.assertRaises(app.HTTPError):
                app.positive_int(value, "quantity", 100)


if __name__ == "__main__":
    unittest.main()
