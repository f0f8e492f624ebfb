"""Where feed rows go: each channel's HTTP API (Wayfair GraphQL, Overstock's inventory
feed, Magento 2's REST stock items) or the file sink, behind one `Sink` interface."""
