"""The operator and finance console: a page and its script, served at ``/`` by the API's HTTP
server. It holds no data of its own and no SQL: the script reads and changes everything through
``/api/v1``, with the user's session cookie, so the API's roles are the console's roles."""
