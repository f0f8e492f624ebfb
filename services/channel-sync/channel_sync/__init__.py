"""Channel-sync: backorder, quantity-on-order and ETA feeds for Wayfair, Overstock and
Magento, built from the recalculator's SkuPositionChanged events and its own projection of
purchase orders and containers. See docs/channel-sync.md."""
