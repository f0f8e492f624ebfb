"""Marketplace feeds (Wayfair, Overstock, Magento) built on backorder positions."""
