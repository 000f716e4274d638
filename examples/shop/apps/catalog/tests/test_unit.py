"""Unit tests of the catalog service (standard library only)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import app  # noqa: E402


class CatalogTest(unittest.TestCase):
    def test_product_view_adds_the_currency(self) -> None:
        self.assertEqual(app.product_view({"id": 9})["currency"], app.CURRENCY)

    def test_products_have_unique_ids_and_positive_prices(self) -> None:
        self.assertEqual(len({p["id"] for p in app.PRODUCTS}), len(app.PRODUCTS))
        self.assertTrue(all(p["price_cents"] > 0 for p in app.PRODUCTS))


if __name__ == "__main__":
    unittest.main()
