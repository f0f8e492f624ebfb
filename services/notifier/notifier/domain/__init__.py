"""The notifier's rules, without I/O: which changes notify, the customer projection, the
templates and their placeholders, and the message built from them. Time and ids come from
the events; the runtimes around this package do the reading, writing and sending."""
