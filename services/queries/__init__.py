"""The read side: the SQL that reads the projections, one module per subject, each function
taking the API's ``fetch`` (rows as dicts). The HTTP routers (and so the console, which reads
through them) call these; they keep only what HTTP adds (parameters, pages, models)."""
