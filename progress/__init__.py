"""Progress, submissions, points and achievements (issue 8; nothing here yet)."""
