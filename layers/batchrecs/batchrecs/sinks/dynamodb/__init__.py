"""DynamoDB: one item per user (or item, or user and segment) in the recommendations table."""
