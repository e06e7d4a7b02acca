"""Statistics for the mayor and the POC wall: flows over a time range (`flows`), the
backlog now (`backlog`) and maps (`maps`)."""
