"""Submit: validate an uploaded file, stage its canonical copy, start (or queue, or reject) the job."""
