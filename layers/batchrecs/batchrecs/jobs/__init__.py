"""Jobs: one record per upload, from RECEIVED through Personalize's states to EXPORTED."""
