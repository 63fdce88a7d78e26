"""What a build says of itself: its manifest as tables and facts (tables.py), the CLI summary
(summary.py), the HTML and Markdown report (page.py) and the browsable rows (browse.py,
browse_page.py)."""
