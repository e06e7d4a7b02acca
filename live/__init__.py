"""The live feed: the event-log reader, shared subscription executions, and the
graphql-transport-ws handler that delivers them."""
