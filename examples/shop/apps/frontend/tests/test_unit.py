"""Unit tests of the frontend service (standard library only)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import app  # noqa: E402


class FrontendTest(unittest.TestCase):
    def test_money(self) -> None:
        self.assertEqual(app.money(1205, "EUR"), "12.05 EUR")
        self.assertEqual(app.money("x", "EUR"), "?")

    def test_esc(self) -> None:
        self.assertEqual(app.esc("<b>"), "&lt;b&gt;")


if __name__ == "__main__":
    unittest.main()
