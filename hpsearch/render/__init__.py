"""Everything people see: terminal tables and progress, the report's CSV/Markdown/HTML/JSON files, every plot."""
