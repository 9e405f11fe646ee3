"""Export: the finished job's .out files become per-user records in the route's destination."""
