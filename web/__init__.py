"""The browser client and its built bundle (issue 4; nothing here yet)."""
