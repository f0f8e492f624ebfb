"""The pure core of channel-sync: the projection of what the feeds need, incoming supply
and its dates, and each channel's rows. No I/O, no clock: dates come from the events."""
