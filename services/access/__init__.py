"""People and machines of the HTTP API: users, API tokens, roles and what each role may do."""
