"""mailsync services: fetcher, dedup, activity_writer (sender to come), and their runtime."""
